"""MobileNet V3, ShuffleNet V1/V2 and EfficientNet-B0, reduced, through ``hwgen build`` and
Verilator co-simulation, checked as in ``test_network_cosim.py`` (:mod:`network_checks`).

EfficientNet-B0 is folded faster than the rest: its sixteen squeeze-excite blocks each hold a
frame, so its latency is ~25 frames and at 1000 fps the simulation alone would take minutes; at
16,000 fps its squeeze-excite bypasses need more than two frames (the case that once cost it
65% of its throughput). It has no width option, hence the U250.
"""

from __future__ import annotations

import warnings

import pytest

from network_checks import build_and_cosimulate

warnings.filterwarnings("ignore", message=".*created but never used")

CASES = {  # model: (board, fps, options)
    "mobilenet_v3_small": ("vc707", 1000.0, {"resolution": 32, "width": 0.5}),
    "mobilenet_v3_large": ("vc707", 1000.0, {"resolution": 32, "width": 0.35}),
    "shufflenet_v1": ("vc707", 1000.0, {"resolution": 32, "width": 0.25}),
    "shufflenet_v2": ("vc707", 1000.0, {"resolution": 32, "width": 0.5}),
    "efficientnet_b0": ("u250", 16000.0, {"resolution": 32}),
}


@pytest.mark.parametrize("model", CASES)
def test_zoo_model_cosim(model, tmp_path):
    build_and_cosimulate(model, *CASES[model], tmp_path)
