"""InvertedResidual on Verilator: params from a tiny quantized MobileNet V2 block, output
bit-exact with dataflows.golden.run_quantized at the last node (the add, or the projection)
under idle gaps and backpressure, two frames back to back; latency and cycles per frame as
modelled."""

from dataclasses import replace

import numpy as np
import pytest

from dataflows import numerics as nm
from dataflows.golden import run_quantized
from dataflows.graph import Model
from dataflows.layers import Activation, Add, Conv2d
from dataflows.quantize import quantize
from rtl_templates.beats import frame_to_beats
from rtl_templates.inverted_residual import InvertedResidual, InvertedResidualParams
from sim.bench import VerilatorBench


def tiny_block(shape, hidden, cout, stride, seed):
    """expand 1x1 + ReLU6 -> depthwise 3x3 + ReLU6 -> project 1x1 (-> add with the input)."""
    m = Model(f"ir{seed}", shape)
    m.add("expand", Conv2d(hidden))
    m.add("expand_relu6", Activation("relu6"))
    m.add("depthwise", Conv2d(hidden, kernel=3, stride=stride, padding=1, groups=hidden))
    m.add("depthwise_relu6", Activation("relu6"))
    m.add("project", Conv2d(cout))
    residual = stride == 1 and shape[2] == cout
    if residual:
        m.add("add", Add(), inputs=["project", "input"])
    return quantize(m.init_weights(seed)), residual


# name: (input shape, hidden, cout, stride, expand (pe, simd), project pe)
CASES = {
    # expand 2 cycles/pixel, window and depthwise 18, projection 2, add 1.
    "s1_residual": ((6, 6, 4), 16, 4, 1, (8, 4), 4),
    # 7x7 -> 4x4: expand 8 cycles/input pixel (392), window and depthwise 576, projection 128.
    "s2": ((7, 7, 4), 16, 8, 2, (4, 2), 4),
}
QMODELS, CONFIGS = {}, {}
for _n, (_name, (_shape, _hidden, _cout, _stride, (_pe, _simd), _ppe)) in enumerate(CASES.items()):
    QMODELS[_name], _residual = tiny_block(_shape, _hidden, _cout, _stride, seed=_n + 1)
    CONFIGS[_name] = InvertedResidualParams.from_quantized(
        QMODELS[_name], expand_pe=_pe, expand_simd=_simd, project_pe=_ppe,
        add="add" if _residual else None)
BENCH = VerilatorBench("inverted_residual_bench",
                       {name: InvertedResidual(p) for name, p in CONFIGS.items()})


def frames(name, n, rng):
    lo, hi = nm.qrange(QMODELS[name].bits["input"])
    return [rng.integers(lo, hi + 1, CASES[name][0]) for _ in range(n)]


def expected_beats(name, images):
    """run_quantized's output (the add node, or the projection), as output beats; the
    behaviour model must agree."""
    dut, p = BENCH.configs[name], CONFIGS[name]
    out = []
    for x in images:
        golden = run_quantized(QMODELS[name], x)
        np.testing.assert_array_equal(dut.behaviour(x), golden)
        out.append(frame_to_beats(golden, p.project.pe))
    return np.concatenate(out)


def input_beats(name, images):
    return np.concatenate([frame_to_beats(x, CONFIGS[name].expand.simd) for x in images])


def test_configs_cover_both_kinds():
    assert CONFIGS["s1_residual"].residual and QMODELS["s1_residual"].model.output == "add"
    assert not CONFIGS["s2"].residual and CONFIGS["s2"].out_shape == (4, 4, 8)


@pytest.mark.parametrize("name", CASES)
def test_block_matches_golden_under_gaps_and_backpressure(name):
    images = frames(name, 2, np.random.default_rng(21))
    expected = expected_beats(name, images)
    result = BENCH.run(name, {"i": input_beats(name, images)}, {"o": len(expected)})
    np.testing.assert_array_equal(result.beats["o"], expected)


def test_residual_holds_data_under_heavy_backpressure():
    images = frames("s1_residual", 2, np.random.default_rng(22))
    expected = expected_beats("s1_residual", images)
    result = BENCH.run("s1_residual", {"i": input_beats("s1_residual", images)},
                       {"o": len(expected)}, idle=0.1, backpressure=0.8, seed=5, tag="stall")
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", CASES)
def test_block_timing_matches_model(name):
    dut = BENCH.configs[name]
    images = frames(name, 3, np.random.default_rng(23))
    expected = expected_beats(name, images)
    result = BENCH.run(name, {"i": input_beats(name, images)}, {"o": len(expected)},
                       idle=0, backpressure=0, tag="timing")
    np.testing.assert_array_equal(result.beats["o"], expected)
    assert result.latency("i", "o") == dut.latency()
    frame_beats = len(expected) // 3
    assert result.cycles_per_frame("o", frame_beats) == dut.cycles_per_frame()


def test_models_compose_the_sub_units():
    dut = BENCH.configs["s1_residual"]
    assert dut.cycles_per_frame() == 36 * 2 * 9   # depthwise: 2 groups x 9 taps per pixel
    assert dut.skip_depth >= 2 * 6 * dut.params.expand.steps
    assert BENCH.configs["s2"].skip is None and BENCH.configs["s2"].skip_depth == 0
    res = dut.resources()
    parts = [u.resources() for u in dut.units().values()]
    assert res.dsp == sum(r.dsp for r in parts) and res.ff == sum(r.ff for r in parts)


def test_invalid_params_are_rejected():
    good, s2 = CONFIGS["s1_residual"], CONFIGS["s2"]
    kw = dict(height=6, width=6, stride=1, expand=good.expand, depthwise=good.depthwise,
              project=good.project, add=good.add)
    InvertedResidualParams(**kw)
    with pytest.raises(ValueError, match="stride must be 1 or 2, not 3"):
        InvertedResidualParams(**{**kw, "stride": 3})
    with pytest.raises(ValueError, match="needs stride 1, not stride 2"):
        InvertedResidualParams(**{**kw, "stride": 2})
    with pytest.raises(ValueError, match="expand.pixels"):
        InvertedResidualParams(**{**kw, "height": 5})
    with pytest.raises(ValueError, match=r"depthwise \(C=16, pe=8\) must match"):
        InvertedResidualParams(**{**kw, "expand": replace(good.expand, pe=4)})
    with pytest.raises(ValueError, match="Cin == Cout"):
        InvertedResidualParams(**{**kw, "project": replace(
            s2.project, simd=8, weights=s2.project.weights, pixels=36)})
    with pytest.raises(TypeError):
        InvertedResidualParams(**{**kw, "add": "add"})
    with pytest.raises(TypeError):
        InvertedResidual(kw)
