"""Every zoo model, reduced, through ``hwgen build`` and Verilator co-simulation: bit-exact with
the golden model at full rate and under random input gaps and output backpressure, and the
measured cycles per frame within 2% of the cycle model. The full-resolution SqueezeNet 1.0 on
the VC707 design runs with ``make test-slow``.

The default suite co-simulates SqueezeNet 1.0 and 1.1 (Fire modules), MobileNet V1
(depthwise-separable) and V2 (inverted residuals); MobileNet V3 (SE, h-swish tables),
ShuffleNet V1/V2 (grouped convs, shuffles, splits) and EfficientNet-B0 have 120-220 stages
each and take 2-6 minutes each to verilate on 2 cores, so they run with ``make test-slow``
(all measured bit-exact with 0.00% cycle error; see the closing notes).

Designs are folded for 1000 frames per second (far below what the boards allow) so each
Verilator model stays small enough to build in well under a minute; the folding, FIFO sizing
and emission paths are the same as at full speed.
"""

from __future__ import annotations

import json
import warnings

import pytest

from hwgen.build import BuildOptions, build
from sim.network_cosim import cosimulate

warnings.filterwarnings("ignore", message=".*created but never used")

CASES = {  # model: (board, options); efficientnet_b0 has no width option and needs a U250
    "squeezenet": ("vc707", {"resolution": 32}),
    "squeezenet1_1": ("vc707", {"resolution": 32}),
    "mobilenet_v1": ("vc707", {"resolution": 32, "width": 0.25}),
    "mobilenet_v2": ("vc707", {"resolution": 32, "width": 0.35}),
    "mobilenet_v3_small": ("vc707", {"resolution": 32, "width": 0.5}),
    "mobilenet_v3_large": ("vc707", {"resolution": 32, "width": 0.35}),
    "shufflenet_v1": ("vc707", {"resolution": 32, "width": 0.25}),
    "shufflenet_v2": ("vc707", {"resolution": 32, "width": 0.5}),
    "efficientnet_b0": ("u250", {"resolution": 32}),
}
MAX_CYCLE_ERROR_PCT = 2.0


def check(result, report):
    assert report.bit_exact, f"first diverging stage: {report.first_diverging_stage}"
    assert report.backpressure_bit_exact
    assert abs(report.cycle_error_pct) <= MAX_CYCLE_ERROR_PCT, report
    saved = json.loads((result.out_dir / "cosim.json").read_text())
    for key in ("bit_exact", "frames", "measured_cycles_per_frame", "estimated_cycles_per_frame",
                "cycle_error_pct", "measured_latency_cycles", "sim_seconds",
                "cycles_per_second"):
        assert key in saved


SLOW = {"mobilenet_v3_small", "mobilenet_v3_large", "shufflenet_v1", "shufflenet_v2",
        "efficientnet_b0"}


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m
                                   for m in CASES])
def test_zoo_model_cosim(model, tmp_path):
    board, options = CASES[model]
    result = build(BuildOptions(model=model, board=board, fps=1000.0, out_dir=tmp_path,
                                model_options=options, calibration_images=2))
    assert result.report["fits_on_chip"]
    check(result, cosimulate(result, frames=3, seed=1))


@pytest.mark.slow
def test_squeezenet_full_resolution_vc707(tmp_path):
    result = build(BuildOptions(model="squeezenet", board="vc707", out_dir=tmp_path))
    check(result, cosimulate(result, frames=3, seed=0))
