"""Fork, Concat, Split and ChannelShuffle on Verilator: bit-exact under idle gaps and
backpressure on every stream; latency and cycles per frame as modelled."""

import numpy as np
import pytest

from rtl_templates.beats import beats_to_frame, frame_to_beats
from rtl_templates.channel_shuffle import ChannelShuffle, ChannelShuffleParams
from rtl_templates.plumbing import (Concat, ConcatParams, Fork, ForkParams, Split,
                                    SplitParams)
from sim.bench import VerilatorBench

H = W = 5
FRAMES = 3

CONFIGS = {
    "fork2": Fork(ForkParams(bits=8, simd=4, channels=8, pixels=H * W)),
    "fork3": Fork(ForkParams(bits=6, simd=4, channels=4, pixels=H * W, outputs=3)),
    "cat_small": Concat(ConcatParams(bits=8, simd=2, channels_a=4, channels_b=8, pixels=H * W)),
    "cat_wide": Concat(ConcatParams(bits=4, simd=16, channels_a=64, channels_b=64,
                                    pixels=H * W)),
    "split_even": Split(SplitParams(bits=8, simd=2, channels_0=4, channels_1=4, pixels=H * W)),
    "split_uneven": Split(SplitParams(bits=8, simd=2, channels_0=2, channels_1=4,
                                      pixels=H * W)),
    "shuffle12": ChannelShuffle(ChannelShuffleParams(bits=8, simd=4, channels=12, groups=3,
                                                     pixels=H * W)),
    "shuffle8": ChannelShuffle(ChannelShuffleParams(bits=8, simd=2, channels=8, groups=2,
                                                    pixels=H * W)),
    "shuffle6x1": ChannelShuffle(ChannelShuffleParams(bits=8, simd=1, channels=6, groups=3,
                                                      pixels=H * W)),
}
BENCH = VerilatorBench("plumbing_bench", CONFIGS)


def _frames(rng, bits, channels, n=FRAMES):
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)
    return [rng.integers(lo, hi, (H, W, channels)) for _ in range(n)]


def _beats(frames, simd):
    return np.concatenate([frame_to_beats(f, simd) for f in frames])


def _stimulus(name, rng, zeros=False):
    """Input beats per stream and expected output beats per stream for configuration name."""
    dut = CONFIGS[name]
    p = dut.params
    make = (lambda c: [np.zeros((H, W, c), dtype=np.int64)] * FRAMES) if zeros else \
        (lambda c: _frames(rng, p.bits, c))
    if isinstance(dut, Concat):
        fa, fb = make(p.channels_a), make(p.channels_b)
        inputs = {"a": _beats(fa, p.simd), "b": _beats(fb, p.simd)}
        expected = {"o": _beats([dut.behaviour(a, b) for a, b in zip(fa, fb)], p.simd)}
    else:
        channels = p.channels if not isinstance(dut, Split) else p.channels_0 + p.channels_1
        frames = make(channels)
        inputs = {"i": _beats(frames, p.simd)}
        outs = [dut.behaviour(f) for f in frames]
        if isinstance(dut, (Fork, Split)):
            names = [f"o{k}" for k in range(len(outs[0]))]
            expected = {n: _beats([o[k] for o in outs], p.simd) for k, n in enumerate(names)}
        else:
            expected = {"o": _beats(outs, p.simd)}
    return inputs, expected


@pytest.mark.parametrize("name", CONFIGS)
def test_bit_exact_under_gaps_and_backpressure(name):
    rng = np.random.default_rng(7)
    inputs, expected = _stimulus(name, rng)
    result = BENCH.run(name, inputs, {n: len(b) for n, b in expected.items()}, seed=5)
    for n, beats in expected.items():
        np.testing.assert_array_equal(result.beats[n], beats, err_msg=f"{name}.{n}")


@pytest.mark.parametrize("name", CONFIGS)
def test_timing_matches_model(name):
    dut = CONFIGS[name]
    inputs, expected = _stimulus(name, None, zeros=True)
    first_in = "a" if isinstance(dut, Concat) else "i"
    result = BENCH.run(name, inputs, {n: len(b) for n, b in expected.items()},
                       idle=0, backpressure=0, tag="timing")
    for n, beats in expected.items():
        model_latency = dut.latency(n) if isinstance(dut, Split) else dut.latency()
        assert result.latency(first_in, n) == model_latency, n
        assert result.cycles_per_frame(n, len(beats) // FRAMES) == dut.cycles_per_frame(), n


def test_behaviour_uses_frame_layout():
    shuffle = CONFIGS["shuffle12"]
    frame = np.arange(12).reshape(1, 1, 12)
    # (groups=3, 4) transposed: channel j*3+g comes from g*4+j.
    assert shuffle.behaviour(frame).ravel().tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    a, b = CONFIGS["split_uneven"].behaviour(beats_to_frame(np.arange(6), (1, 1, 6)))
    assert a.ravel().tolist() == [0, 1] and b.ravel().tolist() == [2, 3, 4, 5]


def test_invalid_params_are_rejected():
    with pytest.raises(ValueError, match="outputs"):
        ForkParams(bits=8, simd=2, channels=4, pixels=1, outputs=1)
    with pytest.raises(ValueError, match="channels_b=6"):
        ConcatParams(bits=8, simd=4, channels_a=4, channels_b=6, pixels=1)
    with pytest.raises(ValueError, match="channels_0=3"):
        SplitParams(bits=8, simd=2, channels_0=3, channels_1=4, pixels=1)
    with pytest.raises(ValueError, match="groups=5"):
        ChannelShuffleParams(bits=8, simd=2, channels=12, groups=5, pixels=1)
    with pytest.raises(ValueError, match="pixels"):
        ChannelShuffleParams(bits=8, simd=2, channels=12, groups=3, pixels=0)
    with pytest.raises(ValueError, match="output"):
        CONFIGS["split_even"].latency("o2")
    with pytest.raises(TypeError):
        Fork(ConcatParams(bits=8, simd=2, channels_a=2, channels_b=2, pixels=1))


def test_resources_count_logic():
    for dut in CONFIGS.values():
        r = dut.resources("7series")
        assert r.lut > 0 and r.ff > 0 and r.dsp == 0 and r.bram18 == 0
