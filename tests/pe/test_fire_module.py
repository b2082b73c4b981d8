"""FireModule on Verilator: params from a tiny quantized Fire model, output bit-exact with
dataflows.golden.run_quantized at the concat node under idle gaps and backpressure, two frames
back to back; latency and cycles per frame as modelled."""

import numpy as np
import pytest

from dataflows import numerics as nm
from dataflows.golden import run_quantized
from dataflows.graph import Model
from dataflows.layers import Activation, Concat, Conv2d
from dataflows.quantize import quantize
from rtl_templates.beats import frame_to_beats
from rtl_templates.fire_module import FireModule, FireParams
from sim.bench import VerilatorBench


def tiny_fire(shape, squeeze, e1, e3, seed):
    """Input -> fire/squeeze1x1 + ReLU -> (expand1x1 + ReLU, expand3x3 + ReLU) -> concat."""
    m = Model(f"fire{seed}", shape)
    m.add("fire/squeeze1x1", Conv2d(squeeze))
    s = m.add("fire/relu_squeeze1x1", Activation("relu"))
    m.add("fire/expand1x1", Conv2d(e1), inputs=s)
    a = m.add("fire/relu_expand1x1", Activation("relu"))
    m.add("fire/expand3x3", Conv2d(e3, kernel=3, padding=1), inputs=s)
    b = m.add("fire/relu_expand3x3", Activation("relu"))
    m.add("fire/concat", Concat(), inputs=[a, b])
    return quantize(m.init_weights(seed))


# name: (input shape, squeeze, e1, e3, squeeze (pe, simd), expand pe)
CASES = {
    # squeeze 1 cycle/pixel, window and expand3x3 9 cycles/pixel, expand1x1 1.
    "small": ((6, 6, 8), 4, 8, 8, (4, 8), 8),
    # squeeze 8, expand1x1 4 (two output groups), window 18, expand3x3 36 cycles/pixel.
    "folded": ((6, 6, 8), 4, 8, 8, (2, 2), 4),
}
QMODELS = {name: tiny_fire(c[0], c[1], c[2], c[3], seed=n + 1)
           for n, (name, c) in enumerate(CASES.items())}
CONFIGS = {name: FireParams.from_quantized(QMODELS[name], "fire", squeeze_pe=c[4][0],
                                           squeeze_simd=c[4][1], expand_pe=c[5])
           for name, c in CASES.items()}
BENCH = VerilatorBench("fire_bench", {name: FireModule(p) for name, p in CONFIGS.items()})


def frames(name, n, rng):
    lo, hi = nm.qrange(QMODELS[name].bits["input"])
    return [rng.integers(lo, hi + 1, CASES[name][0]) for _ in range(n)]


def expected_beats(name, images):
    """run_quantized's concat output, as output beats; the behaviour model must agree."""
    dut, p = BENCH.configs[name], CONFIGS[name]
    out = []
    for x in images:
        golden = run_quantized(QMODELS[name], x)
        np.testing.assert_array_equal(dut.behaviour(x), golden)
        out.append(frame_to_beats(golden, p.expand1x1.pe))
    return np.concatenate(out)


def input_beats(name, images):
    return np.concatenate([frame_to_beats(x, CONFIGS[name].squeeze.simd) for x in images])


@pytest.mark.parametrize("name", CASES)
def test_fire_matches_golden_under_gaps_and_backpressure(name):
    images = frames(name, 2, np.random.default_rng(11))
    expected = expected_beats(name, images)
    result = BENCH.run(name, {"i": input_beats(name, images)}, {"o": len(expected)})
    np.testing.assert_array_equal(result.beats["o"], expected)


def test_fire_holds_data_under_heavy_backpressure():
    images = frames("folded", 2, np.random.default_rng(12))
    expected = expected_beats("folded", images)
    result = BENCH.run("folded", {"i": input_beats("folded", images)}, {"o": len(expected)},
                       idle=0.1, backpressure=0.8, seed=3, tag="stall")
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", CASES)
def test_fire_timing_matches_model(name):
    dut, p = BENCH.configs[name], CONFIGS[name]
    images = frames(name, 3, np.random.default_rng(13))
    expected = expected_beats(name, images)
    result = BENCH.run(name, {"i": input_beats(name, images)}, {"o": len(expected)},
                       idle=0, backpressure=0, tag="timing")
    np.testing.assert_array_equal(result.beats["o"], expected)
    assert result.latency("i", "o") == dut.latency()
    frame_beats = p.pixels * p.out_channels // p.expand1x1.pe
    # Steady state from the second frame on; the first frame's 1x1 beats leave before the 3x3
    # branch paces them (see FireModule.cycles_per_frame), so its interval is longer.
    starts = result.times["o"][::frame_beats]
    assert np.diff(starts)[1:].tolist() == [dut.cycles_per_frame()] * (len(starts) - 2)
    assert starts[1] - starts[0] >= dut.cycles_per_frame()
    # Pixel 0's first expand3x3 beat: right after its expand1x1 beats.
    t3 = result.times["o"][p.expand1x1.groups] - result.times["i"][0]
    assert t3 == dut.window_latency()


def test_models_compose_the_sub_units():
    dut = BENCH.configs["small"]
    assert dut.cycles_per_frame() == 36 * 9   # window and expand3x3: 9 beats per pixel
    assert dut.bypass_depth >= 2 * 6 * dut.params.expand1x1.groups
    res = dut.resources()
    parts = [u.resources() for u in dut.units().values()]
    assert res.dsp == sum(r.dsp for r in parts) and res.lut == sum(r.lut for r in parts)


def test_invalid_params_are_rejected():
    good = CONFIGS["small"]
    kw = dict(height=6, width=6, squeeze=good.squeeze, expand1x1=good.expand1x1,
              expand3x3=good.expand3x3)
    FireParams(**kw)
    with pytest.raises(ValueError, match="height"):
        FireParams(**{**kw, "height": 0})
    with pytest.raises(ValueError, match="pixels"):
        FireParams(**{**kw, "width": 5})
    with pytest.raises(ValueError, match="expand3x3"):
        FireParams(**{**kw, "expand3x3": good.expand1x1})
    with pytest.raises(ValueError, match="squeeze pe=2"):
        FireParams(**{**kw, "squeeze": CONFIGS["folded"].squeeze})
    with pytest.raises(TypeError):
        FireParams(**{**kw, "squeeze": "squeeze"})
    with pytest.raises(TypeError):
        FireModule(kw)
