"""Add, LutActivation and ChannelScale on Verilator: bit-exact under gaps and backpressure,
cycle and latency models exact."""

import numpy as np
import pytest

from dataflows import numerics as nm
from dataflows.reference import activation
from rtl_templates.beats import frame_to_beats
from rtl_templates.elementwise import (Add, AddParams, ChannelScale, ChannelScaleParams,
                                       LutActivation, LutParams)
from sim.bench import VerilatorBench

FRAMES = 3


def _add(simd, shape, ratios, bounds):
    ma, mb, shift = nm.add_multipliers(*ratios)
    h, w, c = shape
    return shape, Add(AddParams(bits=8, simd=simd, multiplier_a=ma, multiplier_b=mb, shift=shift,
                                lo=bounds[0], hi=bounds[1], frame_beats=h * w * c // simd))


def _lut(kind, s_in, s_out, shape, simd=2):
    table = nm.build_lut(lambda x: activation(kind, x), s_in, s_out, 8)
    h, w, c = shape
    return shape, LutActivation(LutParams(bits=8, simd=simd, table=table,
                                          frame_beats=h * w * c // simd))


def _scale(shape, simd, ratios):
    h, w, c = shape
    spec = nm.RequantSpec.from_ratios(ratios, *nm.qrange(8))
    return shape, ChannelScale(ChannelScaleParams(bits=8, simd=simd, channels=c, height=h,
                                                  width=w, requant=spec))


CONFIGS = {
    "add4": _add(4, (6, 6, 8), (0.7, 1.3), nm.qrange(8)),
    "add1": _add(1, (4, 4, 3), (0.45, 0.9), (0, 127)),
    "hswish": _lut("hard_swish", 0.05, 0.04, (6, 6, 4)),
    "sigmoid": _lut("sigmoid", 0.06, 1 / 127, (6, 6, 4)),
    "scale8": _scale((3, 3, 8), 4, 0.02 / 127 / 0.015),
    "scale6pc": _scale((3, 3, 6), 2, np.linspace(0.8, 1.6, 6) * 0.02 / 127 / 0.015),
}
BENCH = VerilatorBench("elementwise_bench", {name: dut for name, (_, dut) in CONFIGS.items()})


def _stimulus(name, rng, frames=FRAMES):
    """Input frames per stream, the beats to send, and the expected output beats."""
    shape, dut = CONFIGS[name]
    simd = dut.params.simd
    x = [rng.integers(-128, 128, shape) for _ in range(frames)]
    if isinstance(dut, Add):
        y = [rng.integers(-128, 128, shape) for _ in range(frames)]
        inputs = {"a": np.concatenate([frame_to_beats(f, simd) for f in x]),
                  "b": np.concatenate([frame_to_beats(f, simd) for f in y])}
        expected = [dut.behaviour(a, b) for a, b in zip(x, y)]
    elif isinstance(dut, ChannelScale):
        gates = [rng.integers(0, 128, (1, 1, shape[2])) for _ in range(frames)]
        inputs = {"a": np.concatenate([frame_to_beats(f, simd) for f in x]),
                  "b": np.concatenate([frame_to_beats(g, simd) for g in gates])}
        expected = [dut.behaviour(f, g) for f, g in zip(x, gates)]
    else:
        inputs = {"i": np.concatenate([frame_to_beats(f, simd) for f in x])}
        expected = [dut.behaviour(f) for f in x]
    return inputs, np.concatenate([frame_to_beats(e, simd) for e in expected])


@pytest.mark.parametrize("name", CONFIGS)
def test_bit_exact_under_gaps_and_backpressure(name):
    rng = np.random.default_rng(11)
    inputs, expected = _stimulus(name, rng)
    result = BENCH.run(name, inputs, {"o": len(expected)}, idle=0.3, backpressure=0.3)
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", CONFIGS)
def test_timing_matches_model(name):
    shape, dut = CONFIGS[name]
    inputs, expected = _stimulus(name, np.random.default_rng(5), frames=4)
    result = BENCH.run(name, inputs, {"o": len(expected)}, idle=0, backpressure=0, tag="timing")
    np.testing.assert_array_equal(result.beats["o"], expected)
    first = "i" if "i" in inputs else "a"
    beats_per_frame = len(expected) // 4
    assert result.latency(first, "o") == dut.latency()
    assert result.cycles_per_frame("o", beats_per_frame) == dut.cycles_per_frame()


def test_behaviour_is_the_golden_semantics():
    _, add = CONFIGS["add4"]
    a, b = np.full((1, 1, 4), 100), np.full((1, 1, 4), -50)
    p = add.params
    np.testing.assert_array_equal(add.behaviour(a, b),
                                  nm.add_requantize(a, b, p.multiplier_a, p.multiplier_b, p.shift,
                                                    p.lo, p.hi))
    _, lut = CONFIGS["sigmoid"]
    assert lut.behaviour(np.array([-128]))[0] == lut.params.table[0]


def test_resources_count_what_is_built():
    _, add = CONFIGS["add4"]
    assert add.resources().dsp == 8  # two constant multipliers per lane
    _, lut = CONFIGS["hswish"]
    r = lut.resources()
    assert r.bram18 == 0 and r.lut >= 2 * 8 * 4  # two 256x8 ROMs as LUT ROM
    _, scale = CONFIGS["scale8"]
    # two multipliers per lane; both gate banks in LUT RAM (a 64-deep LUT per bit)
    assert scale.resources().dsp == 8 and scale.resources().lut >= scale.params.simd * 8


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError, match="40000"):
        AddParams(bits=8, simd=1, multiplier_a=40000, multiplier_b=1, shift=3, lo=-128, hi=127)
    with pytest.raises(ValueError, match="0"):
        AddParams(bits=8, simd=1, multiplier_a=1, multiplier_b=1, shift=0, lo=-128, hi=127)
    with pytest.raises(ValueError, match="255"):
        LutParams(bits=8, simd=1, table=np.zeros(255))
    spec = nm.RequantSpec.from_ratios([0.1, 0.2], -128, 127)
    with pytest.raises(ValueError, match="RequantSpec"):
        ChannelScaleParams(bits=8, simd=2, channels=8, height=2, width=2, requant=spec)
    with pytest.raises(ValueError, match="7"):
        ChannelScaleParams(bits=8, simd=2, channels=7, height=2, width=2, requant=spec)
    with pytest.raises(TypeError):
        Add({"bits": 8})
