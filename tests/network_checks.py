"""What every whole-network co-simulation test checks (tests/test_network_cosim*.py)."""

import json

from hwgen.build import BuildOptions, build
from sim.network_cosim import cosimulate

MAX_CYCLE_ERROR_PCT = 2.0
#: The latency model (hwgen.latency) measured -3% to +31% on these networks.
MAX_LATENCY_ERROR_PCT = 50.0


def build_and_cosimulate(model: str, board: str, fps: float, options: dict, out_dir):
    """A reduced zoo model built for ``board`` at ``fps``, on chip, co-simulated and checked."""
    result = build(BuildOptions(model=model, board=board, fps=fps, out_dir=out_dir,
                                model_options=options, calibration_images=2))
    assert result.report["fits_on_chip"]
    check(result, cosimulate(result, frames=3, seed=1))


def check(result, report):
    assert report.bit_exact, f"first diverging stage: {report.first_diverging_stage}"
    assert report.backpressure_bit_exact
    assert abs(report.cycle_error_pct) <= MAX_CYCLE_ERROR_PCT, report
    assert abs(report.latency_error_pct) <= MAX_LATENCY_ERROR_PCT, report
    saved = json.loads((result.out_dir / "cosim.json").read_text())
    for key in ("bit_exact", "frames", "measured_cycles_per_frame", "estimated_cycles_per_frame",
                "cycle_error_pct", "measured_latency_cycles", "sim_seconds",
                "cycles_per_second"):
        assert key in saved
