"""Weights in URAM, written through the weight-load path (docs/streams.md, "Weight load").

MobileNet V1 (0.25, 32x32, 10 classes) on the ZCU104 with ``--uram-weights``: every weight
memory that would take block RAM is a URAM288 memory without initial contents, and the
co-simulation driver streams ``weights/weight_load.bin`` into the input before the frames,
as a host does. The run is bit-exact with the golden model under gaps and backpressure, and
the weights demonstrably come from the load: a changed load changes the outputs, and a load of
the wrong size is refused by the driver in one line. The ZCU104 project carries the load,
and its host program sends it after loading the overlay, before the frames.
"""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from boards.host import pynq_driver
from boards.host.frames import beats_to_bytes, bytes_to_beats
from boards.xilinx import write_project
from dataflows.golden import run_quantized
from hwgen.bitstream import design_from_build
from hwgen.build import BuildOptions, build
from hwgen.cli import main
from network_checks import check
from rtl_templates.beats import frame_to_beats
from sim.cache import cosim_cache_dir
from sim.cosim import CosimError, build_cosim, run_cosim
from sim.network_cosim import _cwd, cosimulate, weight_load

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


def test_the_outputs_come_from_the_loaded_weights(design):
    e = design.emitted[0]
    exe = build_cosim(e.verilog, cosim_cache_dir()).resolve()   # the cosimulation test's build
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


class _StreamOverlay:
    """``pynq.Overlay`` of the project: its DMA's input stream is one continuous stream into
    the project's own Verilator model, as on the board. The first ``load_beats`` beats sent
    after the overlay loads (the reset) are the weight load; each later frame runs the model
    from reset with that load before it, the state the board keeps."""

    def __init__(self, path):
        folder = Path(path).parent
        d = self.design = json.loads((folder / "design.json").read_text())
        exe = build_cosim(folder / "rtl" / "hwgen_top.v", cosim_cache_dir()).resolve()
        sent, pending = [], []

        class Channel:
            def __init__(self, receive):
                self.receive = receive

            def transfer(self, buffer):
                if self.receive:
                    pending.append(buffer)
                    return
                sent.append(bytes_to_beats(buffer.tobytes(), d["in_lanes"], d["in_bits"]))
                beats = np.concatenate(sent)
                if len(beats) <= d["load_beats"]:
                    return                                   # still the weight load
                with _cwd(folder):
                    run = run_cosim(exe, beats[d["load_beats"]:][None], in_bits=d["in_bits"],
                                    out_lanes=d["out_lanes"], out_bits=d["out_bits"],
                                    out_beats_per_frame=d["out_beats_per_frame"],
                                    load=beats[:d["load_beats"]], load_beats=d["load_beats"])
                del sent[1:]                                 # the next frame follows the load
                pending.pop()[:] = np.frombuffer(beats_to_bytes(run.outputs[0], d["out_bits"]),
                                                 dtype=np.uint8)

            def wait(self):
                pass

        self.axi_dma = types.SimpleNamespace(sendchannel=Channel(False),
                                             recvchannel=Channel(True))


def test_the_zynq_host_program_sends_the_weight_load_first(design, monkeypatch):
    output_shape = tuple(design.qmodel.model.output_shape)
    board_design = design_from_build(design, output_shape)
    project = write_project(board_design)
    board = board_design.board_dir
    assert {"weight_load.bin", "design.json", "pynq_driver.py"} <= {p.name for p in project.files}
    host = json.loads((board / "design.json").read_text())
    assert host["load_beats"] == design.emitted[0].load_beats
    assert (board / host["weight_load"]).read_bytes() == design.emitted[0].weight_load.read_bytes()
    fake = types.SimpleNamespace(Overlay=_StreamOverlay,
                                 allocate=lambda shape, dtype: np.zeros(shape, dtype))
    monkeypatch.setitem(sys.modules, "pynq", fake)
    q = design.qmodel
    rng = np.random.default_rng(9)
    images = [q.quantize_input(rng.standard_normal(tuple(q.model.input_shape))) for _ in range(2)]
    outputs = pynq_driver.Accelerator(board / "top.bit").run(images)
    for image, got in zip(images, outputs):
        want = run_quantized(q, image)
        assert np.array_equal(got, np.asarray(want).reshape(got.shape))
    # A weight load cut short is refused before anything is sent.
    (board / host["weight_load"]).write_bytes(b"\0" * 3)
    with pytest.raises(ValueError, match="the design's weight load is"):
        pynq_driver.Accelerator(board / "top.bit")
