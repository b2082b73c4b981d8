"""WidthConverter on Verilator: values in order under idle gaps and backpressure; latency and
cycles per frame as modelled, for narrowing and widening."""

import numpy as np
import pytest
from amaranth.back import verilog

from rtl_templates.beats import frame_to_beats
from rtl_templates.width_converter import WidthConverter, WidthConverterParams
from sim.bench import VerilatorBench

H = W = 5
FRAMES = 3

CONFIGS = {
    "n4to2": WidthConverterParams(bits=8, simd_in=4, simd_out=2, channels=12, pixels=H * W),
    "w2to4": WidthConverterParams(bits=8, simd_in=2, simd_out=4, channels=12, pixels=H * W),
    "n4to1": WidthConverterParams(bits=6, simd_in=4, simd_out=1, channels=8, pixels=H * W),
    "w3to6": WidthConverterParams(bits=8, simd_in=3, simd_out=6, channels=6, pixels=H * W),
}
BENCH = VerilatorBench("width_converter_bench",
                       {name: WidthConverter(p) for name, p in CONFIGS.items()})


def _stimulus(name, rng=None):
    p, dut = CONFIGS[name], BENCH.configs[name]
    lo, hi = -(1 << (p.bits - 1)), 1 << (p.bits - 1)
    frames = [rng.integers(lo, hi, (H, W, p.channels)) if rng is not None
              else np.zeros((H, W, p.channels), dtype=np.int64) for _ in range(FRAMES)]
    beats_in = np.concatenate([frame_to_beats(f, p.simd_in) for f in frames])
    expected = np.concatenate([frame_to_beats(dut.behaviour(f), p.simd_out) for f in frames])
    return beats_in, expected


@pytest.mark.parametrize("name", CONFIGS)
def test_order_kept_under_gaps_and_backpressure(name):
    beats_in, expected = _stimulus(name, np.random.default_rng(11))
    result = BENCH.run(name, {"i": beats_in}, {"o": len(expected)}, seed=4)
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", CONFIGS)
def test_timing_matches_model(name):
    dut = BENCH.configs[name]
    beats_in, expected = _stimulus(name)
    result = BENCH.run(name, {"i": beats_in}, {"o": len(expected)}, idle=0, backpressure=0,
                       tag="timing")
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", len(expected) // FRAMES) == dut.cycles_per_frame()


def test_equal_widths_elaborate_as_a_register():
    dut = WidthConverter(WidthConverterParams(bits=8, simd_in=2, simd_out=2, channels=4,
                                              pixels=4))
    assert "module" in verilog.convert(dut)
    assert dut.latency() == 1 and dut.cycles_per_frame() == 8


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError, match="simd_in=4 and simd_out=6"):
        WidthConverterParams(bits=8, simd_in=4, simd_out=6, channels=12, pixels=1)
    with pytest.raises(ValueError, match="channels=6"):
        WidthConverterParams(bits=8, simd_in=4, simd_out=2, channels=6, pixels=1)
    with pytest.raises(ValueError, match="bits"):
        WidthConverterParams(bits=0, simd_in=4, simd_out=2, channels=4, pixels=1)
    with pytest.raises(TypeError):
        WidthConverter({"simd_in": 4})


def test_resources_count_logic():
    for p in CONFIGS.values():
        r = WidthConverter(p).resources("ecp5")
        assert r.lut > 0 and r.ff >= p.bits * max(p.simd_in, p.simd_out)
