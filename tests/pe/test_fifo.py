"""Fifo on Verilator: order kept under idle gaps and backpressure; latency as modelled."""

import numpy as np
import pytest

from rtl_templates.fifo import Fifo, FifoParams
from sim.bench import VerilatorBench

CONFIGS = {
    "d4": FifoParams(bits=8, lanes=2, depth=4, frame_beats=16),
    "d32": FifoParams(bits=5, lanes=3, depth=32, frame_beats=16),
}
BENCH = VerilatorBench("fifo_bench", {name: Fifo(p) for name, p in CONFIGS.items()})


@pytest.mark.parametrize("name", CONFIGS)
def test_fifo_keeps_order_under_gaps_and_backpressure(name):
    p = CONFIGS[name]
    rng = np.random.default_rng(3)
    lo, hi = -(1 << (p.bits - 1)), 1 << (p.bits - 1)
    beats = rng.integers(lo, hi, (200, p.lanes))
    result = BENCH.run(name, {"i": beats}, {"o": len(beats)})
    np.testing.assert_array_equal(result.beats["o"], BENCH.configs[name].behaviour(beats))


@pytest.mark.parametrize("name", CONFIGS)
def test_fifo_timing_matches_model(name):
    p, dut = CONFIGS[name], BENCH.configs[name]
    beats = np.zeros((4 * p.frame_beats, p.lanes), dtype=np.int64)
    result = BENCH.run(name, {"i": beats}, {"o": len(beats)}, idle=0, backpressure=0, tag="timing")
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", p.frame_beats) == dut.cycles_per_frame()


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError, match="depth"):
        FifoParams(bits=8, lanes=1, depth=1)
    with pytest.raises(TypeError):
        Fifo({"depth": 4})
