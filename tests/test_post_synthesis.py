"""Post-synthesis simulation: the small ECP5 design's ``synth_ecp5`` netlist (LUT4, CCU2C,
TRELLIS_FF, DP16KD with the weights in INITVAL, MULT18X18D), with the cells' simulation
models, streamed through the Verilator co-simulation driver at full rate and under idle and
backpressure: the outputs are the golden model's, and the cycles the RTL's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from boards.host.frames import frame_to_beats
from hwgen.cli import main as hwgen_main
from sim.cache import cosim_cache_dir
from sim.cosim import build_cosim, run_cosim
from sim.post_synth import ecp5_cell_models, ecp5_netlist

from ecp5_design import SMALL   # tests/ is on sys.path (rootdir conftest), as network_checks


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    out = tmp_path_factory.mktemp("post-synth") / "hw"
    assert hwgen_main(["bitstream", *SMALL, "--out", str(out), "--no-run"]) == 0
    return out


def _run(exe, design, frames, **stalls):
    shape = json.loads((design / "board" / "design.json").read_text())
    images = [np.load(design / "board" / "golden" / f"input_{k}.npy") for k in range(frames)]
    beats = np.stack([frame_to_beats(x, shape["in_lanes"]) for x in images])
    return run_cosim(exe, beats, in_bits=shape["in_bits"], out_lanes=shape["out_lanes"],
                     out_bits=shape["out_bits"], out_beats_per_frame=shape["out_beats_per_frame"],
                     max_cycles=4_000_000, **stalls)


def test_synthesized_netlist_is_bit_exact(design):
    cache = cosim_cache_dir()
    netlist = ecp5_netlist(design / "hwgen_top.v", cache / "netlists")
    text = netlist.read_text()
    assert "DP16KD" in text and "MULT18X18D" in text and "$readmemh" not in text
    # The multipliers are the registered MULT18X18Ds of rtl_templates/multiplier.py.
    assert '.REG_OUTPUT_CLK("CLK0")' in text and '.REG_INPUTA_CLK("CLK0")' in text
    exe = build_cosim([netlist, *ecp5_cell_models(cache / "netlists")], cache)
    report = json.loads((design / "report.json").read_text())
    frames = 3
    want = [np.load(design / "board" / "golden" / f"output_{k}.npy").reshape(-1)
            for k in range(frames)]
    clean = _run(exe, design, frames)
    assert all(np.array_equal(clean.outputs[k].reshape(-1), want[k]) for k in range(frames))
    # The netlist keeps the RTL's cycles: the cycle model holds for it as it does for the RTL.
    assert abs(clean.cycles_per_frame() - report["cycles_per_frame"]) \
        <= 0.02 * report["cycles_per_frame"]
    rough = _run(exe, design, frames, idle=0.2, backpressure=0.3, seed=3)
    assert all(np.array_equal(rough.outputs[k].reshape(-1), want[k]) for k in range(frames))
