"""Pool (max, average) and GlobalAvgPool on Verilator: bit-exact under gaps and backpressure,
equal to the golden pools, cycle and latency models exact."""

from dataclasses import dataclass

import numpy as np
import pytest

from dataflows import golden, tensor_ops
from dataflows import layers as L
from dataflows import numerics as nm
from dataflows.quantize import QPool
from rtl_templates.beats import WindowOrder, frame_to_beats, window_beats
from rtl_templates.pool import GlobalAvgPool, GlobalAvgPoolParams, Pool, PoolParams
from sim.bench import VerilatorBench

QMIN, QMAX = nm.qrange(8)


@dataclass(frozen=True)
class Case:
    """A configuration: the PE, its input frame shape and (for Pool) the layer it implements."""

    dut: object
    shape: tuple
    layer: object = None

    @property
    def pad_value(self):
        return QMIN if isinstance(self.layer, L.MaxPool) else 0

    def windows(self, frame):
        ly = self.layer
        return tensor_ops.windows(frame, ly.kernel, ly.stride, ly.padding, ly.ceil_mode, self.pad_value)

    def stream(self, frame):
        """Input beats of one frame."""
        simd = self.dut.params.simd
        if self.layer is None:
            return frame_to_beats(frame, simd)
        ly = self.layer
        return window_beats(frame, ly.kernel, ly.stride, ly.padding, simd,
                            WindowOrder.CHANNEL_MAJOR, ly.ceil_mode, self.pad_value)

    def expected(self, frame):
        return self.dut.behaviour(frame if self.layer is None else self.windows(frame))


def _qpool(layer, shape, s_in, s_out):
    """The quantizer's QPool for ``layer`` (as dataflows.quantize._qpool builds it)."""
    if isinstance(layer, L.GlobalAvgPool):
        counts, taps = np.full((1, 1), shape[0] * shape[1]), shape[0] * shape[1]
    else:
        counts = tensor_ops.pool_counts(shape, layer.kernel, layer.stride, layer.padding,
                                        layer.ceil_mode, layer.count_include_pad)
        taps = layer.kernel[0] * layer.kernel[1]
    divisors, index = np.unique(counts, return_inverse=True)
    spec = nm.RequantSpec.from_ratios(s_in / (divisors * s_out), QMIN, QMAX)
    return QPool(divisors, index.reshape(counts.shape), spec, nm.sum_bits(8, taps))


def _max_case():
    layer, shape = L.MaxPool(kernel=3, stride=2, ceil_mode=True), (7, 7, 4)  # SqueezeNet
    ho, wo, c = layer.output_shape([L.TensorShape(*shape)])
    return Case(Pool(PoolParams("max", 8, c, ho, wo, layer.kernel, simd=2)), shape, layer)


def _avg_case():
    layer = L.AvgPool(kernel=3, stride=2, padding=1, count_include_pad=False)  # ShuffleNet
    shape = (6, 6, 4)
    q = _qpool(layer, shape, 0.05, 0.04)
    return Case(Pool(PoolParams.average(q, 8, shape[2], layer.kernel, simd=2)), shape, layer)


def _gap_case(shape, simd):
    q = _qpool(L.GlobalAvgPool(), shape, 0.05, 0.03)
    h, w, c = shape
    return Case(GlobalAvgPool(GlobalAvgPoolParams(8, c, h, w, simd, q.requant)), shape)


CASES = {
    "max3s2": _max_case(),
    "avg3s2p1": _avg_case(),
    "gap4x4x8": _gap_case((4, 4, 8), 4),
    "gap3x3x6": _gap_case((3, 3, 6), 2),
    "gap2x3x4": _gap_case((2, 3, 4), 4),   # one channel group: the sums are a register
}
BENCH = VerilatorBench("pool_bench", {name: case.dut for name, case in CASES.items()})


def _run(name, frames, **kwargs):
    case = CASES[name]
    rng = np.random.default_rng(7)
    x = [rng.integers(QMIN, QMAX + 1, case.shape) for _ in range(frames)]
    simd = case.dut.params.simd
    inputs = np.concatenate([case.stream(f) for f in x])
    expected = np.concatenate([frame_to_beats(case.expected(f), simd) for f in x])
    result = BENCH.run(name, {"i": inputs}, {"o": len(expected)}, **kwargs)
    np.testing.assert_array_equal(result.beats["o"], expected)
    return result, len(expected) // frames


@pytest.mark.parametrize("name", CASES)
def test_bit_exact_under_gaps_and_backpressure(name):
    _run(name, 3, idle=0.3, backpressure=0.3)


@pytest.mark.parametrize("name", CASES)
def test_timing_matches_model(name):
    dut = CASES[name].dut
    result, beats_per_frame = _run(name, 3, idle=0, backpressure=0, tag="timing")
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", beats_per_frame) == dut.cycles_per_frame()


@pytest.mark.parametrize("name", CASES)
def test_behaviour_equals_golden_pool(name):
    case = CASES[name]
    frame = np.random.default_rng(2).integers(QMIN, QMAX + 1, case.shape)
    ly = case.layer
    if isinstance(ly, L.MaxPool):
        golden_out = tensor_ops.max_pool(frame, ly.kernel, ly.stride, ly.padding, ly.ceil_mode)
    elif isinstance(ly, L.AvgPool):
        golden_out = golden.pool_int(ly, _qpool(ly, case.shape, 0.05, 0.04), frame)
    else:
        spec = _qpool(L.GlobalAvgPool(), case.shape, 0.05, 0.03)
        golden_out = golden.pool_int(L.GlobalAvgPool(), spec, frame)
    np.testing.assert_array_equal(case.expected(frame), golden_out)


def test_resources():
    assert CASES["max3s2"].dut.resources().dsp == 0
    assert CASES["avg3s2p1"].dut.resources().dsp == 2
    gap = CASES["gap4x4x8"].dut.resources()
    p = CASES["gap4x4x8"].dut.params
    assert gap.dsp == 4 and gap.lut >= p.simd * p.acc_bits  # the sums' LUT RAM


def test_invalid_params_are_rejected():
    spec = nm.RequantSpec.from_ratios([0.5, 0.25], QMIN, QMAX)
    with pytest.raises(ValueError, match="'min'"):
        PoolParams("min", 8, 4, 2, 2, 3, 2)
    with pytest.raises(ValueError, match="requant"):
        PoolParams("max", 8, 4, 2, 2, 3, 2, requant=spec)
    with pytest.raises(ValueError, match="divisor_index"):
        PoolParams("avg", 8, 4, 2, 2, 3, 2, requant=spec, divisor_index=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="5"):
        PoolParams("avg", 8, 4, 2, 2, 3, 2, requant=spec, divisor_index=np.zeros((2, 2)), acc_bits=5)
    with pytest.raises(ValueError, match="6"):
        GlobalAvgPoolParams(8, 6, 2, 2, 4, spec)
    with pytest.raises(ValueError, match="2 entry|1 entry"):
        GlobalAvgPoolParams(8, 8, 2, 2, 4, spec)
    with pytest.raises(TypeError):
        Pool({"kind": "max"})
