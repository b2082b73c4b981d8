"""SqueezeNet and MobileNet V1/V2, reduced, through ``hwgen build`` and Verilator
co-simulation: bit-exact with the golden model at full rate and under random input gaps and
output backpressure, and the measured cycles per frame within 2% of the cycle model, the
latency within 50% of its model (:mod:`network_checks`); the squeeze-excite and channel-shuffle
networks are in ``test_network_cosim_se_shuffle.py`` (a file per pytest-xdist worker). The
full-resolution SqueezeNet 1.0 on the VC707 design runs with ``make test-slow``.

Designs are folded for a low frame rate (far below what the boards allow) so each Verilator
model stays small enough to build in well under a minute; the folding, FIFO sizing and
emission paths are the same as at full speed.
"""

from __future__ import annotations

import warnings

import pytest

from hwgen.build import BuildOptions, build
from network_checks import build_and_cosimulate, check
from sim.network_cosim import cosimulate

warnings.filterwarnings("ignore", message=".*created but never used")

CASES = {  # model: (board, fps, options)
    "squeezenet": ("vc707", 1000.0, {"resolution": 32}),
    "squeezenet1_1": ("vc707", 1000.0, {"resolution": 32}),
    "mobilenet_v1": ("vc707", 1000.0, {"resolution": 32, "width": 0.25}),
    "mobilenet_v2": ("vc707", 1000.0, {"resolution": 32, "width": 0.35}),
}


@pytest.mark.parametrize("model", CASES)
def test_zoo_model_cosim(model, tmp_path):
    build_and_cosimulate(model, *CASES[model], tmp_path)


def test_simd_over_kernel_columns_cosim(tmp_path):
    """7x7/2, 3x3 and 5x5/2 convolutions folded fast enough that each reads several kernel
    columns per beat (SqueezeNet's conv1 does at full speed): the banked line buffers are
    bit-exact and on the cycle model inside a whole design, under backpressure too."""
    from dataflows.graph import Model
    from dataflows.layers import Activation, Conv2d, GlobalAvgPool
    from dataflows.onnx_export import export_onnx

    m = Model("kx_lanes", (24, 24, 3))
    for name, kernel, stride in (("conv1", 7, 2), ("conv2", 3, 1), ("conv3", 5, 2)):
        padding = 0 if name == "conv1" else kernel // 2
        m.add(name, Conv2d(4, kernel=kernel, stride=stride, padding=padding))
        m.add(f"relu_{name}", Activation("relu"))
    m.add("pool", GlobalAvgPool())
    export_onnx(m.init_weights(1), tmp_path / "kx_lanes.onnx")
    result = build(BuildOptions(model=str(tmp_path / "kx_lanes.onnx"), board="vc707",
                                fps=200_000.0, out_dir=tmp_path / "hw", calibration_images=2))
    convs = [s for s in result.report["stages"] if s["op"] == "conv"]
    # More taps per beat than input channels (3, 4, 4): several kernel columns per beat.
    assert [s["simd"] > cin for s, cin in zip(convs, (3, 4, 4))] == [True] * 3
    check(result, cosimulate(result, frames=3, seed=1))


@pytest.mark.slow
def test_squeezenet_full_resolution_vc707(tmp_path):
    result = build(BuildOptions(model="squeezenet", board="vc707", out_dir=tmp_path))
    check(result, cosimulate(result, frames=3, seed=0))
