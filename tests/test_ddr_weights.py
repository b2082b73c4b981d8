"""Weights read from DDR every frame (``--ddr-weights fc``; rtl_templates/axi4_reader.py).

MobileNet V1 (0.25, 32x32, 10 classes) on the PYNQ-Z2 with its three fully connected layers
(the pointwise convs on 1x1 maps and the classifier) streaming their weights from DDR, each
at a third of the board's 4.2 GB/s: the fastest design is then set by Conv2d_13_pointwise's
DDR traffic (65,536 bytes a frame at 7 bytes a cycle), not by its multipliers. The
co-simulation's memory model (the Verilator driver: a latency, a bandwidth cap per port) is
that bandwidth; the run is bit-exact under gaps and backpressure, with measured cycles per
frame equal to the DDR-bound model.
"""

import json
import math

import pytest

from hwgen.build import BuildOptions, build
from hwgen.cli import main
from hwgen.compile import DdrWeights
from network_checks import check
from sim.network_cosim import cosimulate

OPTIONS = {"width": 0.25, "resolution": 32, "num_classes": 10}
ARGS = ["mobilenet_v1", "--width", "0.25", "--resolution", "32", "--num-classes", "10",
        "--board", "pynq-z2", "--ddr-weights", "fc"]


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddr") / "mobilenet_v1-pynq-z2"
    return build(BuildOptions(model="mobilenet_v1", board="pynq-z2", out_dir=out,
                              model_options=OPTIONS, calibration_images=2,
                              ddr_weights=DdrWeights.FC))


def test_the_fully_connected_layers_stream_and_the_report_counts_their_traffic(design):
    r = json.loads((design.out_dir / "report.json").read_text())
    streamed = [s for s in r["stages"] if s.get("weights") == "ddr"]
    assert [s["name"] for s in streamed] == ["Conv2d_12_pointwise", "Conv2d_13_pointwise",
                                             "Logits"]
    assert r["bandwidth"]["ddr_weight_bytes_per_frame"] == sum(s["ddr_bytes_per_frame"]
                                                               for s in streamed)
    assert r["bandwidth"]["ddr_mbps"] == pytest.approx(
        r["bandwidth"]["ddr_weight_bytes_per_frame"] * r["fps"] / 1e6, rel=1e-3)
    assert r["bandwidth"]["ddr_mbps"] <= r["bandwidth"]["board_ddr_mbps"]
    # The pace is the DDR traffic's: 65,536 bytes at 7 bytes a cycle.
    assert r["cycles_per_frame"] == math.ceil(65_536 / (4.2e9 / 3 / 200e6)) == 9_363
    (top,) = r["top"]
    e = design.emitted[0]
    assert top["ddr_regions"] == ["weights/ddr0.bin", "weights/ddr1.bin", "weights/ddr2.bin"]
    # One pass a frame for a layer on a 1x1 map: the region is the frame's traffic.
    assert [f.stat().st_size for f in e.ddr_regions] == [s["ddr_bytes_per_frame"] for s in streamed]
    text = e.verilog.read_text()
    assert "m_axi_ddr2_araddr" in text and "ddr0_base" in text


def test_a_design_streaming_its_weights_cosimulates_at_its_ddr_bound(design):
    check(design, cosimulate(design, frames=3, seed=1))


def test_a_pace_beyond_the_boards_ddr_names_the_layer_and_its_traffic(tmp_path, capsys):
    assert main(["estimate", *ARGS, "--fps", "200000", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "out of reach" in err and "'Conv2d_13_pointwise'" in err
    assert "weights from DDR: 65,536 bytes a frame at 7.0 bytes a cycle" in err


def test_a_design_too_large_for_one_bitstream_streams_its_least_reused_weights():
    """MobileNet V1 (0.5, 32x32) needs three partitions on the PYNQ-Z2 with every weight on
    chip; by default its layers that read each weight once a frame stream from DDR instead,
    the fewest it takes, and it runs in one bitstream."""
    from boards import get_board
    from hwgen.compile import compile_model, low_reuse_stages
    from hwgen.lower import lower
    from test_fps import quantized

    q = quantized("mobilenet_v1", width=0.5, resolution=32, num_classes=10)
    board = get_board("pynq-z2")
    assert len(compile_model(q, board, ddr_weights=DdrWeights.OFF)) == 3
    (part,) = compile_model(q, board)
    streamed = [s.name for s in part.hw.stages() if s.weight_style.value == "ddr"]
    order = low_reuse_stages(lower(q))
    assert streamed and streamed == order[:len(streamed)]
    assert all(part.hw.stage(n).ddr_bytes_per_cycle == board.ddr_bytes_per_cycle / len(streamed)
               for n in streamed)
