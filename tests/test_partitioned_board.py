"""The board flow of a partitioned design (``hwgen bitstream`` on the PYNQ-Z2, three
partitions): one Vivado project per partition, each checked structurally in a real Tcl
interpreter, and the host program that loads them in turn, run against the partitions'
Verilator models through a PYNQ stand-in whose DMA moves the real bytes."""

from __future__ import annotations

import json
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from boards.host import pynq_partitions
from boards.host.frames import beats_to_bytes, bytes_to_beats, load_golden
from boards.xilinx.platforms import PLATFORMS, part_name
from boards.xilinx.tcl_check import GENERATED, record_tcl
from hwgen.cli import main
from sim.cache import cosim_cache_dir
from sim.cosim import build_cosim, run_cosim

# Fully folded (fps 5): three partitions, quick to measure each stage's logic depth.
DESIGN = ["mobilenet_v1", "--width", "0.5", "--resolution", "32", "--num-classes", "10",
          "--board", "pynq-z2", "--fps", "5"]
PARTS = 3


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("partitioned") / "hw"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["bitstream", *DESIGN, "--no-run", "--out", str(out)]) == 0
    return out


def test_each_partition_is_a_complete_zynq_project(built):
    board = built / "board"
    report = json.loads((built / "report.json").read_text())
    assert report["partitions"] == PARTS
    part = part_name(PLATFORMS["pynq-z2"](toolchain="Vivado"))
    for k in range(PARTS):
        folder = board / f"partition{k}"
        calls = record_tcl("build.tcl", folder)
        assert next(c.option("-part") for c in calls if c.command == "create_project") == part
        reads = [a for c in calls if c.command in ("add_files", "read_verilog", "source")
                 for a in c.positional if not a.startswith(GENERATED)]
        assert reads and all((folder / f).exists() for f in reads)
        assert [c.args[-1] for c in calls if c.command == "write_bitstream"] == ["top.bit"]
        # The partition's own Verilog and weights, as the build wrote them.
        assert (folder / "rtl" / "hwgen_top.v").read_bytes() == \
            (built / f"partition{k}" / "hwgen_top.v").read_bytes()
        assert {p.name for p in (folder / "weights").iterdir()} == \
            {p.name for p in (built / f"partition{k}" / "weights").iterdir()}
        design = json.loads((folder / "design.json").read_text())
        assert design["board"] == "pynq-z2" and design["clock_mhz"] == 200
    script = (board / "build_all.sh").read_text()
    assert [f"(cd partition{k} && vivado -mode batch -source build.tcl -log vivado.log)"
            for k in range(PARTS)] == [line for line in script.splitlines() if "(cd" in line]
    readme = (board / "README.md").read_text()
    assert "sh build_all.sh" in readme and "pynq_partitions.py --check golden/" in readme
    # Every partition's stages got their logic depth; the deepest is named if over the limit.
    assert all("logic_depth" in s for s in report["stages"])
    assert len(report["stages"]) == sum(len(p["stages"]) for p in report["partition_details"])


def test_the_plan_chains_partitions_as_the_compiler_does(built):
    plan = json.loads((built / "board" / "partitions.json").read_text())
    report = json.loads((built / "report.json").read_text())
    assert [p["folder"] for p in plan["partitions"]] == [f"partition{k}" for k in range(PARTS)]
    assert [p["sources"] for p in plan["partitions"]] == [[], [0], [1]]
    assert plan["output"] == [PARTS - 1] and plan["output_shape"] == [1, 1, 10]
    rc = report["reconfiguration"]
    assert plan["reconfiguration_seconds_model"] == rc["seconds_per_partition"] > 0


class _VerilatedOverlay:
    """``pynq.Overlay`` for one partition: its DMA streams the bytes it is sent through the
    partition's Verilator model (built from the project folder's own Verilog and weights)."""

    def __init__(self, path):
        folder = Path(path).parent
        self.design = json.loads((folder / "design.json").read_text())
        exe = build_cosim(folder / "rtl" / "hwgen_top.v", cosim_cache_dir()).resolve()
        pending = []
        d = self.design

        class Channel:
            def __init__(self, receive):
                self.receive = receive

            def transfer(self, buffer):
                if self.receive:
                    pending.append(buffer)
                    return
                beats = bytes_to_beats(buffer.tobytes(), d["in_lanes"], d["in_bits"])
                where = Path.cwd()
                try:
                    os.chdir(folder)                  # $readmemh paths are weights/<file>
                    run = run_cosim(exe, beats[None], in_bits=d["in_bits"],
                                    out_lanes=d["out_lanes"], out_bits=d["out_bits"],
                                    out_beats_per_frame=d["out_beats_per_frame"],
                                    max_cycles=10_000_000)   # a fully folded partition
                finally:
                    os.chdir(where)
                out = pending.pop()
                out[:] = np.frombuffer(beats_to_bytes(run.outputs[0], d["out_bits"]),
                                       dtype=np.uint8)

            def wait(self):
                pass

        self.axi_dma = types.SimpleNamespace(sendchannel=Channel(False),
                                             recvchannel=Channel(True))


def test_the_host_program_runs_the_partitions_bit_exactly(built, monkeypatch, capsys):
    board = built / "board"
    loaded = []

    def overlay(path):
        loaded.append(Path(path).parent.name)
        return _VerilatedOverlay(path)

    fake = types.SimpleNamespace(Overlay=overlay,
                                 allocate=lambda shape, dtype: np.zeros(shape, dtype))
    monkeypatch.setitem(sys.modules, "pynq", fake)
    pairs = load_golden(board / "golden")
    accelerator = pynq_partitions.PartitionedAccelerator(board)
    outputs = accelerator.run([x for x, _ in pairs])
    assert loaded == [f"partition{k}" for k in range(PARTS)]     # each bitstream once a batch
    assert len(accelerator.load_seconds) == PARTS and accelerator.fps > 0
    for got, (_, want) in zip(outputs, pairs):
        assert np.array_equal(got, want)
    # The command line, in batches of two: two loads per partition, no mismatch.
    loaded.clear()
    assert pynq_partitions.main(["--check", str(board / "golden"), "--batch", "2",
                                 "--board-dir", str(board)]) == 0
    assert loaded == [f"partition{k}" for k in range(PARTS)] * 2
    assert "0 mismatched" in capsys.readouterr().out


def test_chaining_concatenates_a_split_layers_parts():
    outputs = {0: [np.arange(6).reshape(1, 2, 3)], 1: [np.arange(6, 10).reshape(1, 2, 2)]}
    (frame,) = pynq_partitions.chain_input([None], outputs, [0, 1], (1, 2, 5))
    assert frame.tolist() == [[[0, 1, 2, 6, 7], [3, 4, 5, 8, 9]]]
    plan = {"output": [0, 1], "output_shape": [10]}
    (out,) = pynq_partitions.network_output(outputs, plan)
    assert out.tolist() == [0, 1, 2, 6, 7, 3, 4, 5, 8, 9]
