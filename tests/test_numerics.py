"""Property tests of hwgen's integer arithmetic (dataflows.numerics) against big-int references."""

from fractions import Fraction
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from dataflows import numerics as nm
from dataflows.quantize import QuantConfig
from dataflows.reference import FLOAT_ACTIVATIONS

settings.register_profile("hwgen", max_examples=200, deadline=None)
settings.load_profile("hwgen")


def ref_round_shift(x: int, s: int) -> int:
    """floor(x / 2**s + 1/2) with exact rationals."""
    return math.floor(Fraction(x, 2 ** s) + Fraction(1, 2))


def ref_requantize(acc: int, m: int, s: int, lo: int, hi: int) -> int:
    return min(max(ref_round_shift(acc * m, s), lo), hi)


multipliers = st.integers(2 ** (nm.MULT_BITS - 1), 2 ** nm.MULT_BITS - 1)
shifts = st.integers(nm.SHIFT_MIN, nm.SHIFT_MAX)
bits = st.integers(4, 8)


# -- rounding -----------------------------------------------------------------------------------
@given(st.integers(-2 ** 62, 2 ** 62), st.integers(0, 63))
def test_round_shift_is_round_half_up(x, s):
    assert int(nm.round_shift(x, s)) == ref_round_shift(x, s)


@given(st.lists(st.tuples(st.integers(-2 ** 40, 2 ** 40), st.integers(0, 63)), min_size=1, max_size=30))
def test_round_shift_vectorised_per_element_shift(pairs):
    x = np.array([p[0] for p in pairs], dtype=np.int64)
    s = np.array([p[1] for p in pairs], dtype=np.int64)
    assert nm.round_shift(x, s).tolist() == [ref_round_shift(a, b) for a, b in pairs]


def test_round_shift_ties_go_up():
    # -7.5 -> -7, -2.5 -> -2, 2.5 -> 3, 7.5 -> 8: toward +inf, never to even or away from 0
    assert nm.round_shift(np.array([-15, -5, 5, 15]), 1).tolist() == [-7, -2, 3, 8]


@given(st.floats(-1e6, 1e6, allow_nan=False))
def test_round_half_up_of_floats(v):
    assert int(nm.round_half_up(v)) == math.floor(Fraction(v) + Fraction(1, 2))


# -- requantization -----------------------------------------------------------------------------
@given(st.integers(-2 ** 40, 2 ** 40), multipliers, shifts, st.integers(-2 ** 20, 2 ** 20),
       st.integers(0, 2 ** 20))
def test_requantize_matches_big_int_reference_and_stays_in_bounds(acc, m, s, lo, width):
    hi = lo + width
    y = int(nm.requantize(acc, m, s, lo, hi))
    assert lo <= y <= hi
    assert y == ref_requantize(acc, m, s, lo, hi)


@given(hnp.arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 5)),
                  elements=st.integers(-2 ** 30, 2 ** 30)),
       st.data(), bits)
def test_requant_spec_applies_per_channel_on_last_axis(acc, data, abits):
    c = acc.shape[1]
    ms = data.draw(st.lists(multipliers, min_size=c, max_size=c))
    ss = data.draw(st.lists(shifts, min_size=c, max_size=c))
    lo, hi = nm.qrange(abits)
    y = nm.RequantSpec(np.array(ms), np.array(ss), lo, hi).apply(acc)
    expected = [[ref_requantize(int(a), ms[j], ss[j], lo, hi) for j, a in enumerate(row)]
                for row in acc]
    assert y.tolist() == expected


@given(st.integers(-2 ** 20, 2 ** 20), st.integers(-2 ** 20, 2 ** 20),
       st.floats(2 ** -10, 2 ** 6), st.floats(2 ** -10, 2 ** 6), bits)
def test_add_requantize_matches_reference(a, b, ra, rb, abits):
    ma, mb, s = nm.add_multipliers(ra, rb)
    assert max(ma, mb) >= 2 ** (nm.MULT_BITS - 1) and max(ma, mb) < 2 ** nm.MULT_BITS
    lo, hi = nm.qrange(abits)
    y = int(nm.add_requantize(a, b, ma, mb, s, lo, hi))
    assert y == min(max(ref_round_shift(a * ma + b * mb, s), lo), hi)
    # each multiplier is within half a unit of the last place of its ratio
    for m, r in ((ma, ra), (mb, rb)):
        assert abs(Fraction(m, 2 ** s) - Fraction(r)) <= Fraction(1, 2 ** (s + 1))


@given(st.integers(-128, 127), st.integers(-128, 127), multipliers, shifts)
def test_mul_requantize_matches_reference(x, g, m, s):
    y = int(nm.mul_requantize(np.full((2, 2, 1), x), np.full((1, 1, 1), g), m, s, -128, 127)[0, 0, 0])
    assert y == ref_requantize(x * g, m, s, -128, 127)


# -- multipliers --------------------------------------------------------------------------------
@given(st.floats(nm.MIN_RATIO, nm.MAX_RATIO, exclude_max=True))
def test_quantize_multiplier_reconstructs_within_stated_error(r):
    m, s = nm.quantize_multiplier(r)
    assert 2 ** (nm.MULT_BITS - 1) <= m < 2 ** nm.MULT_BITS
    assert nm.SHIFT_MIN <= s <= nm.SHIFT_MAX
    assert abs(Fraction(m, 2 ** s) - Fraction(r)) <= Fraction(r) * Fraction(1, 2 ** nm.MULT_BITS)


@pytest.mark.parametrize("r, expected", [(1.0, (2 ** 14, 14)), (0.5, (2 ** 14, 15)),
                                         (1.5, (24576, 14)), (1 / 6, (21845, 17)),
                                         (nm.MIN_RATIO, (2 ** 14, 63))])
def test_quantize_multiplier_known_values(r, expected):
    assert nm.quantize_multiplier(r) == expected


def test_quantize_multiplier_carry_renormalises():
    # just below a power of two, M rounds up to 2**15 and must become 2**14 with shift - 1
    r = 1.0 - 2 ** -20
    assert nm.quantize_multiplier(r) == (2 ** 14, 14)


@given(st.integers(-2 ** 30, 2 ** 30), st.floats(2 ** 14, 1e12))
def test_clamped_large_ratio_gives_the_exact_result(acc, r):
    m, s = nm.quantize_multiplier(nm.clamp_ratio(r))
    exact = min(max(math.floor(acc * Fraction(r) + Fraction(1, 2)), -128), 127)
    assert int(nm.requantize(acc, m, s, -128, 127)) == exact


@given(st.integers(-2 ** 47, 2 ** 47), st.floats(1e-30, nm.MIN_RATIO, exclude_max=True))
def test_clamped_tiny_ratio_gives_the_exact_result(acc, r):
    m, s = nm.quantize_multiplier(nm.clamp_ratio(r))
    assert int(nm.requantize(acc, m, s, -128, 127)) == math.floor(acc * Fraction(r) + Fraction(1, 2)) == 0


# -- accumulator width --------------------------------------------------------------------------
@given(st.integers(2, 16), st.integers(2, 16), st.integers(1, 2 ** 24))
def test_accumulator_bits_bound_the_worst_case_sum(abits, wbits, taps):
    n = nm.accumulator_bits(abits, wbits, taps)
    assert n == abits + wbits + math.ceil(math.log2(taps)) + 1
    amin, _ = nm.qrange(abits)
    wmin, wmax = nm.qrange(wbits, narrow=True)
    worst = taps * amin * wmin            # every product at its largest magnitude, same sign
    assert worst == nm.max_abs_dot(abits, wbits, taps)
    bound = nm.bias_bound(abits, wbits, taps)
    assert bound >= min(2 ** 31 - 1, 2 ** (n - 2))   # the bias keeps a generous budget
    for total in (worst + bound, -worst - bound, taps * amin * wmax - bound):
        assert -(2 ** (n - 1)) <= total <= 2 ** (n - 1) - 1


def test_accumulator_bits_worst_case_by_brute_force():
    rng = np.random.default_rng(0)
    for abits, wbits, taps in [(8, 8, 9), (4, 4, 27), (8, 4, 1), (6, 8, 1000)]:
        lo, hi = nm.qrange(abits)
        w = rng.choice(nm.qrange(wbits, narrow=True), size=taps)
        x = np.full(taps, lo)  # -2**(a-1) times +/-qmax: every product at its largest magnitude
        acc = int(np.abs(x * w).sum()) + nm.bias_bound(abits, wbits, taps)
        nm.check_fits(np.array([acc, -acc]), nm.accumulator_bits(abits, wbits, taps))


def test_sum_bits_bound_a_window_sum():
    for abits, taps in [(8, 9), (8, 169), (4, 49), (8, 1)]:
        lo, hi = nm.qrange(abits)
        nm.check_fits(np.array([taps * lo, taps * hi]), nm.sum_bits(abits, taps))


# -- lookup tables ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["relu6", "hard_sigmoid", "sigmoid"])
@given(abits=bits, s_in=st.floats(1e-3, 1.0), s_out=st.floats(1e-3, 1.0))
def test_lut_of_monotone_function_is_monotone(kind, abits, s_in, s_out):
    lut = nm.build_lut(FLOAT_ACTIVATIONS[kind], s_in, s_out, abits)
    lo, hi = nm.qrange(abits)
    assert lut.shape == (2 ** abits,)
    assert (np.diff(lut) >= 0).all()
    assert lo <= lut.min() and lut.max() <= hi


@pytest.mark.parametrize("kind", ["relu6", "hard_sigmoid", "sigmoid", "hard_swish", "swish"])
@given(abits=bits, s_in=st.floats(1e-3, 1.0), s_out=st.floats(1e-3, 1.0))
def test_lut_is_exact_at_table_ends(kind, abits, s_in, s_out):
    f = {"relu6": lambda v: min(max(v, 0.0), 6.0),
         "hard_sigmoid": lambda v: min(max(v + 3.0, 0.0), 6.0) / 6.0,
         "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
         "hard_swish": lambda v: v * min(max(v + 3.0, 0.0), 6.0) / 6.0,
         "swish": lambda v: v / (1.0 + math.exp(-v))}[kind]
    lut = nm.build_lut(FLOAT_ACTIVATIONS[kind], s_in, s_out, abits)
    lo, hi = nm.qrange(abits)
    for i, q in ((0, lo), (-1, hi)):
        v = f(q * s_in) / s_out
        assume(abs(v - math.floor(v) - 0.5) > 1e-9)  # no float-rounding tie at the very end
        assert lut[i] == min(max(math.floor(v + 0.5), lo), hi)
    q = np.arange(lo, hi + 1)
    np.testing.assert_array_equal(nm.apply_lut(q, lut, abits), lut)


def test_lut_known_table_ends():
    # hard_sigmoid with an input range beyond +/-3 and output scale 1/127: ends are 0 and 127
    lut = nm.build_lut(FLOAT_ACTIVATIONS["hard_sigmoid"], 4 / 127, 1 / 127, 8)
    assert lut[0] == 0 and lut[-1] == 127 and lut[128] == 64  # q = 0: 0.5 * 127 = 63.5 -> 64


# -- weights and tensors ------------------------------------------------------------------------
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 3), st.integers(1, 3),
                                        st.integers(1, 5)),
                  elements=st.floats(-10, 10, allow_subnormal=False)), bits)
def test_weight_quantization_error_is_at_most_half_a_step(w, wbits):
    q, scales = nm.quantize_weights_per_channel(w, wbits)
    qmin, qmax = nm.qrange(wbits, narrow=True)
    assert q.dtype == np.int64 and q.shape == w.shape and (scales > 0).all()
    assert qmin <= q.min() and q.max() <= qmax
    err = np.abs(q * scales[:, None, None, None] - w)
    assert (err <= scales[:, None, None, None] / 2 * (1 + 1e-9)).all()
    peak = np.abs(w).reshape(len(w), -1).max(axis=1)
    assert (np.abs(q).reshape(len(w), -1).max(axis=1)[peak > 0] == qmax).all()


def test_quantize_tensor_rounds_half_up_and_saturates():
    x = np.array([2.5, -2.5, 0.49, 1000.0, -1000.0, -128.0])
    assert nm.quantize_tensor(x, 1.0, 8).tolist() == [3, -2, 0, 127, -128, -128]


def test_clamp_bounds():
    assert nm.clamp_bounds(None, 0.1, 8) == (-128, 127)
    assert nm.clamp_bounds("relu", 0.1, 8) == (0, 127)
    assert nm.clamp_bounds("relu6", 0.1, 8) == (0, 60)
    assert nm.clamp_bounds("relu6", 6 / 127, 8) == (0, 127)
    assert nm.clamp_bounds("relu6", 0.5, 4) == (0, 7)


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("call, text", [
    (lambda: nm.quantize_multiplier(0.0), "0.0"),
    (lambda: nm.quantize_multiplier(-1.5), "-1.5"),
    (lambda: nm.quantize_multiplier(2.0 ** 14), "16384.0"),
    (lambda: nm.quantize_multiplier(float("nan")), "nan"),
    (lambda: nm.quantize_multiplier(1e-20), "1e-20"),
    (lambda: nm.qrange(1), "1"),
    (lambda: nm.qrange(40), "40"),
    (lambda: nm.accumulator_bits(8, 8, 0), "0"),
    (lambda: nm.round_shift(5, 64), "64"),
    (lambda: nm.saturate([1], 5, 2), "[5, 2]"),
    (lambda: nm.RequantSpec(np.array([100]), np.array([5]), -128, 127), "100"),
    (lambda: nm.RequantSpec(np.array([2 ** 14]), np.array([0]), -128, 127), "0"),
    (lambda: nm.RequantSpec(np.array([2 ** 14]), np.array([5]), 3, -3), "[3, -3]"),
    (lambda: nm.RequantSpec(np.array([2 ** 14, 2 ** 14]), np.array([5]), 0, 1), "(2,)"),
    (lambda: nm.quantize_tensor([1.0], 0.0, 8), "0.0"),
    (lambda: nm.build_lut(np.tanh, -0.5, 1.0, 8), "-0.5"),
    (lambda: nm.apply_lut([0], np.zeros(10), 8), "(10,)"),
    (lambda: nm.apply_lut([200], np.zeros(256), 8), "200"),
    (lambda: nm.clamp_bounds("tanh", 1.0, 8), "tanh"),
    (lambda: nm.add_requantize(1, 1, 2 ** 15, 1, 3, 0, 1), "32768"),
    (lambda: QuantConfig(abits=3), "3"),
    (lambda: QuantConfig(wbits=9), "9"),
    (lambda: QuantConfig(calibration_images=0), "0"),
])
def test_invalid_arguments_raise_value_error_quoting_the_value(call, text):
    with pytest.raises(ValueError) as info:
        call()
    assert text in str(info.value)


@pytest.mark.parametrize("call", [lambda: nm.quantize_multiplier("1"), lambda: nm.qrange(8.0),
                                  lambda: QuantConfig(abits=8.0)])
def test_wrong_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


def test_requantize_refuses_an_overflowing_product():
    with pytest.raises(OverflowError):
        nm.requantize(np.array([2 ** 50]), 2 ** 14, 20, -128, 127)
