"""What every whole-network co-simulation test checks (tests/test_network_cosim*.py)."""

import json

MAX_CYCLE_ERROR_PCT = 2.0
#: The latency model (hwgen.latency) measured -3% to +31% on these networks.
MAX_LATENCY_ERROR_PCT = 50.0


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
