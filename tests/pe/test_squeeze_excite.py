"""SqueezeExcite on Verilator: params from a tiny quantized SE block (GlobalAvgPool -> 1x1
reduce + ReLU -> 1x1 expand -> hard sigmoid / sigmoid -> Mul), output bit-exact with
dataflows.golden.run_quantized at the Mul node under idle gaps and backpressure with frames back
to back; latency and cycles per frame exactly as modelled."""

from dataclasses import replace

import numpy as np
import pytest

from dataflows import numerics as nm
from dataflows.golden import run_quantized
from dataflows.graph import Model
from dataflows.layers import Activation, Conv2d, GlobalAvgPool, Mul
from dataflows.quantize import quantize
from rtl_templates.beats import frame_to_beats
from rtl_templates.squeeze_excite import FRAME_SLACK, SqueezeExcite, SqueezeExciteParams
from sim.bench import VerilatorBench


def tiny_se(shape, activation, seed):
    """input -> GlobalAvgPool -> 1x1 C->C/4 + ReLU -> 1x1 C/4->C -> gate -> Mul(input, gate)."""
    c = shape[2]
    m = Model(f"se{seed}", shape)
    m.add("pool", GlobalAvgPool())
    m.add("reduce", Conv2d(c // 4))
    m.add("reduce_relu", Activation("relu"))
    m.add("expand", Conv2d(c))
    m.add("gate", Activation(activation))
    m.add("scale", Mul(), inputs=["input", "gate"])
    return quantize(m.init_weights(seed))


# name: (input shape, gate activation, simd, reduce pe, expand pe)
CASES = {
    # MobileNet V3 style; the gate leaves the expand at simd lanes (no converter).
    "hsig4x4x8": ((4, 4, 8), "hard_sigmoid", 4, 1, 4),
    # EfficientNet style; expand pe 8 -> a narrowing 8 -> 4 converter before ChannelScale.
    "sig3x3x16": ((3, 3, 16), "sigmoid", 4, 2, 8),
    # Expand pe 2 -> a widening 2 -> 4 converter.
    "hsig_widen": ((4, 4, 8), "hard_sigmoid", 4, 2, 2),
}
QMODELS, CONFIGS = {}, {}
for _n, (_name, (_shape, _act, _simd, _rpe, _epe)) in enumerate(CASES.items()):
    QMODELS[_name] = tiny_se(_shape, _act, seed=_n + 3)
    CONFIGS[_name] = SqueezeExciteParams.from_quantized(QMODELS[_name], simd=_simd,
                                                        reduce_pe=_rpe, expand_pe=_epe)
BENCH = VerilatorBench("squeeze_excite_bench",
                       {name: SqueezeExcite(p) for name, p in CONFIGS.items()})


def frames(name, n, rng):
    lo, hi = nm.qrange(QMODELS[name].bits["input"])
    return [rng.integers(lo, hi + 1, CASES[name][0]) for _ in range(n)]


def expected_beats(name, images):
    """run_quantized's value at the Mul node, as output beats; behaviour must agree."""
    dut, simd = BENCH.configs[name], CONFIGS[name].simd
    out = []
    for x in images:
        golden = run_quantized(QMODELS[name], x)
        np.testing.assert_array_equal(dut.behaviour(x), golden)
        out.append(frame_to_beats(golden, simd))
    return np.concatenate(out)


def _run(name, n_frames, seed, **kwargs):
    images = frames(name, n_frames, np.random.default_rng(seed))
    expected = expected_beats(name, images)
    inputs = np.concatenate([frame_to_beats(x, CONFIGS[name].simd) for x in images])
    result = BENCH.run(name, {"i": inputs}, {"o": len(expected)}, **kwargs)
    np.testing.assert_array_equal(result.beats["o"], expected)
    return result


def test_configs_cover_the_gate_paths():
    assert QMODELS["hsig4x4x8"].model.output == "scale"
    assert QMODELS["hsig4x4x8"].fused == {"reduce_relu": "reduce"}
    assert CONFIGS["hsig4x4x8"].reduce.requant.lo == 0   # the fused ReLU
    assert BENCH.configs["hsig4x4x8"].convert is None
    assert BENCH.configs["sig3x3x16"].convert.params.narrowing
    assert not BENCH.configs["hsig_widen"].convert.params.narrowing


def test_gate_is_not_trivial():
    """The random SE blocks must actually scale channels differently (else a wrong gate
    order could pass)."""
    for name in CASES:
        x = frames(name, 1, np.random.default_rng(30))[0]
        gate = run_quantized(QMODELS[name], x, keep_all=True)["gate"]
        assert len(np.unique(gate)) > 2, name


@pytest.mark.parametrize("name", CASES)
def test_matches_golden_under_gaps_and_backpressure(name):
    _run(name, 3, seed=41, idle=0.3, backpressure=0.3)


def test_holds_data_under_heavy_backpressure():
    _run("sig3x3x16", 2, seed=42, idle=0.1, backpressure=0.8, tag="stall")


@pytest.mark.parametrize("name", CASES)
def test_timing_matches_model(name):
    dut, p = BENCH.configs[name], CONFIGS[name]
    result = _run(name, 3, seed=43, idle=0, backpressure=0, tag="timing")
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", p.frame_beats) == dut.cycles_per_frame() == p.frame_beats
    # The input never stalls: the frame FIFO absorbs frame n+1 while gate n is computed.
    assert result.times["i"][-1] - result.times["i"][0] == 3 * p.frame_beats - 1
    assert dut.latency() >= p.frame_beats


def test_models_compose_the_sub_units():
    dut, p = BENCH.configs["hsig4x4x8"], CONFIGS["hsig4x4x8"]
    assert dut.frame_depth == dut.gate_ready() + FRAME_SLACK > p.frame_beats
    res = dut.resources()
    parts = [u.resources() for u in dut.units().values()]
    for field in ("dsp", "bram18", "lut", "ff"):
        assert getattr(res, field) == sum(getattr(r, field) for r in parts)
    # A real SE feature map (14x14x96, simd 8) puts the frame FIFO in block RAM.
    assert dut.frame.resources().bram18 == 0
    big = replace(dut.frame.params, depth=14 * 14 * 96 // 8 + 40)
    from rtl_templates.fifo import Fifo
    assert Fifo(big).resources().bram18 >= 2


def test_invalid_params_are_rejected():
    good, other = CONFIGS["hsig4x4x8"], CONFIGS["sig3x3x16"]
    kw = dict(height=4, width=4, channels=8, simd=4, pool=good.pool, reduce=good.reduce,
              expand=good.expand, gate=good.gate, scale=good.scale)
    SqueezeExciteParams(**kw)
    with pytest.raises(ValueError, match="height must be an int of at least 1, not 0"):
        SqueezeExciteParams(**{**kw, "height": 0})
    with pytest.raises(ValueError, match=r"pool shape .* must be \(5, 4, 8, 4\)"):
        SqueezeExciteParams(**{**kw, "height": 5})
    with pytest.raises(ValueError, match="channels 6 do not fold"):
        SqueezeExciteParams(**{**kw, "channels": 6})
    with pytest.raises(ValueError, match="reduce"):
        SqueezeExciteParams(**{**kw, "reduce": other.reduce})
    with pytest.raises(ValueError, match="gate"):
        SqueezeExciteParams(**{**kw, "gate": other.gate})
    with pytest.raises(TypeError):
        SqueezeExciteParams(**{**kw, "scale": None})
    with pytest.raises(TypeError):
        SqueezeExcite(kw)
    with pytest.raises(ValueError, match="must multiply"):
        SqueezeExciteParams.from_quantized(QMODELS["hsig4x4x8"], simd=4, reduce_pe=1,
                                           expand_pe=4, gate="expand")
