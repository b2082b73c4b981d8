"""DepthwiseUnit on Verilator: channel-major window beats from rtl_templates.beats, bit-exact with
the numpy behaviour under idle gaps and backpressure; latency and cycles per frame as modelled."""

import numpy as np
import pytest

from dataflows import numerics as nm
from dataflows import tensor_ops as ops
from rtl_templates.beats import WindowOrder, window_beats
from rtl_templates.depthwise_unit import DepthwiseParams, DepthwiseUnit
from sim.bench import VerilatorBench


def make_params(seed, *, channels, kernel, pe, pixels, in_bits=8, wbits=8, out_bits=8, relu=False):
    rng = np.random.default_rng(seed)
    taps = kernel * kernel
    wlo, whi = nm.qrange(wbits, narrow=True)
    weights = rng.integers(wlo, whi + 1, (channels, taps))
    bound = min(nm.bias_bound(in_bits, wbits, taps), 3000)
    bias = rng.integers(-bound, bound + 1, channels)
    lo, hi = nm.qrange(out_bits)
    spec = nm.RequantSpec.from_ratios(rng.uniform(1 / 200, 1 / 50, channels) * 4, 0 if relu else lo, hi)
    return DepthwiseParams(in_bits=in_bits, out_bits=out_bits, weights=weights, bias=bias,
                           requant=spec, wbits=wbits,
                           acc_bits=nm.accumulator_bits(in_bits, wbits, taps), kernel=kernel,
                           pe=pe, pixels=pixels)


def out_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


# name: (image (H, W, C), kernel, stride, padding, pe, relu)
GEOMETRY = {
    "k3s1": ((6, 6, 4), 3, 1, 1, 2, False),
    "k3s2": ((7, 7, 8), 3, 2, 0, 4, True),
    "k5": ((6, 6, 2), 5, 1, 2, 1, False),
    # 32 channels x 9 taps on one lane: a 288-word ROM in logic, read as two banks
    # (rtl_templates.rom.banked_rom_read), the second one 32 words.
    "banked": ((4, 4, 32), 3, 1, 1, 1, False),
}
CONFIGS = {
    name: make_params(n, channels=shape[2], kernel=k, pe=pe,
                      pixels=out_size(shape[0], k, s, pad) * out_size(shape[1], k, s, pad), relu=relu)
    for n, (name, (shape, k, s, pad, pe, relu)) in enumerate(GEOMETRY.items())
}
BENCH = VerilatorBench("depthwise_bench", {name: DepthwiseUnit(p) for name, p in CONFIGS.items()})


def frames_and_beats(name, frames, rng):
    shape, k, s, pad, pe, _ = GEOMETRY[name]
    lo, hi = nm.qrange(CONFIGS[name].in_bits)
    images = [rng.integers(lo, hi + 1, shape) for _ in range(frames)]
    beats = np.concatenate([window_beats(x, (k, k), (s, s), (pad,) * 4, pe, WindowOrder.CHANNEL_MAJOR)
                            for x in images])
    return images, beats


@pytest.mark.parametrize("name", CONFIGS)
def test_depthwise_matches_behaviour_under_gaps_and_backpressure(name):
    dut, p = BENCH.configs[name], CONFIGS[name]
    images, beats = frames_and_beats(name, 2, np.random.default_rng(7))
    expected = dut.behaviour(beats)
    # The behaviour agrees with a depthwise conv of the whole frame (the golden conv kernel).
    shape, k, s, pad, _, _ = GEOMETRY[name]
    w = p.weights.reshape(p.channels, k, k, 1).astype(np.float64)
    for f, x in enumerate(images):
        acc = ops.exact_int(ops.conv2d(x.astype(np.float64), w, (s, s), (pad,) * 4, p.channels))
        frame_out = p.requant.apply(acc + p.bias).reshape(-1, p.pe)
        n = len(frame_out)
        np.testing.assert_array_equal(expected[f * n:(f + 1) * n], frame_out)
    result = BENCH.run(name, {"i": beats}, {"o": len(expected)})
    np.testing.assert_array_equal(result.beats["o"], expected)


def test_depthwise_holds_data_under_heavy_backpressure():
    dut = BENCH.configs["k3s2"]
    _, beats = frames_and_beats("k3s2", 2, np.random.default_rng(21))
    expected = dut.behaviour(beats)
    result = BENCH.run("k3s2", {"i": beats}, {"o": len(expected)}, idle=0.1, backpressure=0.8,
                       seed=4, tag="stall")
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", CONFIGS)
def test_depthwise_timing_matches_model(name):
    p, dut = CONFIGS[name], BENCH.configs[name]
    _, beats = frames_and_beats(name, 3, np.random.default_rng(5))
    n_out = 3 * p.pixels * p.groups
    result = BENCH.run(name, {"i": beats}, {"o": n_out}, idle=0, backpressure=0, tag="timing")
    np.testing.assert_array_equal(result.beats["o"], dut.behaviour(beats))
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", p.pixels * p.groups) == dut.cycles_per_frame()
    assert dut.cycles_per_frame() == p.pixels * p.groups * p.kernel ** 2


def test_resource_model():
    res = BENCH.configs["k3s2"].resources()
    assert res.dsp == 4 + 4   # 4 lanes of 8x8 products, 4 requant multipliers (21 x 16 bits)
    assert res.lut > 0 and res.ff > 0


def test_invalid_params_are_rejected():
    good = dict(in_bits=8, out_bits=8, weights=np.ones((4, 9), dtype=np.int64),
                bias=np.zeros(4, dtype=np.int64),
                requant=nm.RequantSpec.from_ratios([0.01], -128, 127), wbits=8,
                acc_bits=nm.accumulator_bits(8, 8, 9), kernel=3, pe=2, pixels=4)
    DepthwiseParams(**good)
    with pytest.raises(ValueError, match="pe must divide C=4, not 3"):
        DepthwiseParams(**{**good, "pe": 3})
    with pytest.raises(ValueError, match=r"\(C, 25\)"):
        DepthwiseParams(**{**good, "kernel": 5})
    with pytest.raises(ValueError, match="-128"):
        DepthwiseParams(**{**good, "weights": np.full((4, 9), -128)})
    with pytest.raises(ValueError, match="acc_bits"):
        DepthwiseParams(**{**good, "acc_bits": 12})
    with pytest.raises(ValueError, match="kernel"):
        DepthwiseParams(**{**good, "kernel": 0})
    with pytest.raises(TypeError):
        DepthwiseUnit(good)


@pytest.mark.synth
def test_depthwise_synthesis_matches_resource_model():
    """128 channels, pe=2: two 576 x 8-bit weight ROMs, one RAMB18 each; 2 + 2 DSPs."""
    from sim.synth import synthesize
    dut = DepthwiseUnit(make_params(9, channels=128, kernel=3, pe=2, pixels=4))
    model, cells = dut.resources("7series"), synthesize(dut, "depthwise_wide")
    assert cells.get("DSP48E1", 0) == model.dsp == 4
    assert abs(cells["bram18"] - model.bram18) <= max(1, model.bram18 // 10)
    assert 0.5 <= model.lut / cells["lut"] <= 2 and 0.5 <= model.ff / cells["ff"] <= 2
