"""Weights in URAM, written through the weight-load path (docs/streams.md, "Weight load").

MobileNet V1 (0.25, 32x32, 10 classes) on the ZCU104 with ``--uram-weights``: every weight
memory that would take block RAM is a URAM288 memory without initial contents, and the
co-simulation driver streams ``weights/weight_load.bin`` into the input before the frames,
as a host does. The run is bit-exact with the golden model under gaps and backpressure, and
the weights demonstrably come from the load: a changed load changes the outputs, and a load of
the wrong size is refused by the driver in one line.
"""

import json

import numpy as np
import pytest

from hwgen.build import BuildOptions, build
from hwgen.cli import main
from network_checks import check
from sim.cosim import CosimError, build_cosim, run_cosim
from sim.network_cosim import _cwd, cosimulate, weight_load
from rtl_templates.beats import frame_to_beats

OPTIONS = {"width": 0.25, "resolution": 32, "num_classes": 10}


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    out = tmp_path_factory.mktemp("uram") / "mobilenet_v1-zcu104"
    result = build(BuildOptions(model="mobilenet_v1", board="zcu104", fps=5000, out_dir=out,
                                model_options=OPTIONS, calibration_images=2, uram_weights=True))
    return result


def test_weight_memories_go_to_uram_and_the_report_says_so(design):
    report = json.loads((design.out_dir / "report.json").read_text())
    stages = [s for s in report["stages"] if s["uram"]]
    assert stages and report["resources"]["used"]["uram"] == sum(s["uram"] for s in stages)
    assert report["resources"]["used"]["uram"] <= report["resources"]["available"]["uram"]
    assert {s["weights"] for s in stages} == {"uram"}
    # Nothing is left in block RAM that URAM could hold: the others are small or constants.
    assert {s["weights"] for s in report["stages"] if s["op"] in ("conv", "fc")} <= {
        "uram", "lut", "constants"}
    (top,) = report["top"]
    e = design.emitted[0]
    assert top["load_beats"] == e.load_beats > 0
    assert top["weight_load"] == "weights/weight_load.bin"
    assert e.weight_load.stat().st_size == e.load_beats * -(-e.in_lanes * e.in_bits // 8)
    assert e.verilog.read_text().count("hwgen_uram_block") >= len(stages)


def test_weights_loaded_into_uram_cosimulate_bit_exactly(design):
    check(design, cosimulate(design, frames=3, seed=1))


def test_the_outputs_come_from_the_loaded_weights(design, tmp_path):
    e = design.emitted[0]
    exe = build_cosim(e.verilog, tmp_path).resolve()   # the cosimulation test's build, cached
    q = design.qmodel
    rng = np.random.default_rng(5)
    image = q.quantize_input(rng.standard_normal(tuple(q.model.input_shape)))
    beats = frame_to_beats(image, e.in_lanes)[None]
    load = weight_load(e)
    shapes = dict(in_bits=e.in_bits, out_lanes=e.out_lanes, out_bits=e.out_bits,
                  out_beats_per_frame=e.out_beats_per_frame, load_beats=e.load_beats)
    with _cwd(e.verilog.parent):
        right = run_cosim(exe, beats, load=load, **shapes).outputs
        changed = load.copy()
        changed[len(load) // 2:] = 0                  # half the weights zeroed
        assert not np.array_equal(run_cosim(exe, beats, load=changed, **shapes).outputs, right)
        with pytest.raises(CosimError, match="weight load of the wrong size") as exc:
            run_cosim(exe, beats, load=load[:-1], **shapes)
    assert len(str(exc.value).splitlines()) == 1


def test_uram_weights_need_a_board_with_uram(tmp_path, capsys):
    code = main(["build", "mobilenet_v1", "--width", "0.25", "--resolution", "32",
                 "--board", "vc707", "--uram-weights", "--out", str(tmp_path / "x")])
    (err,) = capsys.readouterr().err.strip().splitlines()     # one line, nothing else
    assert code == 2
    assert "'vc707' has no URAM" in err and "zcu104" in err and "u250" in err
    assert not (tmp_path / "x").exists()
