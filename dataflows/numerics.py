"""hwgen's integer arithmetic: every rounding and saturation rule, in one place.

This module is the executable form of ``docs/numerics.md``. It knows nothing about models:
each function is a small, vectorised numpy operation on ``int64`` arrays (or, for the
offline conversions from float, on float64 arrays). The integer golden model
(:mod:`dataflows.golden`), the quantizer (:mod:`dataflows.quantize`) and the behaviour models
of the RTL processing elements all call these functions, so a rule changes here or nowhere.

Summary of the rules (details and proofs in ``docs/numerics.md``):

- Activations are signed ``bits``-bit integers, range ``[-2**(bits-1), 2**(bits-1) - 1]``,
  zero point 0, one scale per tensor. Weights are symmetric ("narrow range")
  ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` with one scale per output channel.
- A real ratio ``r`` is carried as ``(M, shift)`` with ``r ~= M * 2**-shift``,
  ``2**14 <= M < 2**15`` (a positive 16-bit signed value) and ``1 <= shift <= 63``.
- Requantization is ``clamp((acc * M + 2**(shift-1)) >> shift, lo, hi)`` with an arithmetic
  (floor) shift: round half up, toward +inf.
- Float-to-int conversions done offline (weights, bias, input image, LUT entries) also round
  half up: ``floor(v + 0.5)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Callable

import numpy as np

__all__ = [
    "MULT_BITS", "SHIFT_MIN", "SHIFT_MAX", "MIN_RATIO", "MAX_RATIO", "BIAS_BITS",
    "qrange", "saturate", "round_half_up", "round_shift", "quantize_multiplier",
    "quantize_multipliers", "clamp_ratio", "requantize", "RequantSpec", "accumulator_bits",
    "max_abs_dot", "sum_bits", "bias_bound", "check_fits", "quantize_weights_per_channel", "quantize_bias",
    "quantize_tensor", "dequantize", "clamp_bounds", "build_lut", "apply_lut", "add_requantize",
    "add_multipliers", "mul_requantize",
]

#: Significant bits of a normalised multiplier: ``2**(MULT_BITS-1) <= M < 2**MULT_BITS``.
#: M is positive and fits a 16-bit signed (or the 18-bit B port of a DSP48) operand.
MULT_BITS = 15
#: Range of the right shift applied after the multiplication (a 6-bit field).
SHIFT_MIN, SHIFT_MAX = 1, 63
#: Smallest ratio :func:`quantize_multiplier` accepts: ``M = 2**14``, ``shift = 63``.
MIN_RATIO = 2.0 ** (MULT_BITS - 1 - SHIFT_MAX)
#: Ratios must be strictly below this: above it M would round to ``2**15`` with ``shift = 1``.
MAX_RATIO = 2.0 ** (MULT_BITS - 1) - 0.25
#: Biases are stored as signed 32-bit integers.
BIAS_BITS = 32

_INT64_LIMIT = 2 ** 63


# -- ranges and elementary rounding -----------------------------------------------------------
def _check_bits(bits, name: str = "bits", low: int = 2, high: int = 32) -> int:
    if isinstance(bits, bool) or not isinstance(bits, Integral):
        raise TypeError(f"{name} must be an int, not {bits!r}")
    if not low <= bits <= high:
        raise ValueError(f"{name} must be in {low}..{high}, not {bits!r}")
    return int(bits)


def qrange(bits: int, narrow: bool = False) -> tuple[int, int]:
    """Range ``(qmin, qmax)`` of a signed ``bits``-bit integer.

    Parameters
    ----------
    bits : int
        Width in bits, 2..32.
    narrow : bool
        Symmetric range ``[-qmax, qmax]``, as used for weights (so negation never overflows
        and the scale is ``max|w| / qmax``). Activations use the full range.

    Raises
    ------
    TypeError, ValueError
        If ``bits`` is not an int in 2..32.
    """
    bits = _check_bits(bits)
    qmax = 2 ** (bits - 1) - 1
    return (-qmax if narrow else -qmax - 1), qmax


def saturate(x, lo: int, hi: int) -> np.ndarray:
    """Clamp integers to ``[lo, hi]`` (the saturation of every output stage)."""
    if lo > hi:
        raise ValueError(f"saturation bounds must satisfy lo <= hi, not [{lo!r}, {hi!r}]")
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def round_half_up(v) -> np.ndarray:
    """Round reals to the nearest integer, ties toward +inf: ``floor(v + 0.5)``, as int64.

    This is the offline rounding (weights, bias, input, LUT entries, ReLU6 bound); it
    matches what :func:`round_shift` does in hardware.

    Raises
    ------
    ValueError
        If a value is not finite or does not fit int64.
    """
    v = np.asarray(v, dtype=np.float64)
    r = np.floor(v + 0.5)
    if r.size and not (np.isfinite(r).all() and np.abs(r).max() < 2.0 ** 62):
        bad = r[~np.isfinite(r) | (np.abs(np.nan_to_num(r)) >= 2.0 ** 62)]
        raise ValueError(f"cannot round {bad.flat[0]!r} to a 64-bit integer")
    return r.astype(np.int64)


def round_shift(x, shift) -> np.ndarray:
    """``floor((x + 2**(shift-1)) / 2**shift)``: divide by ``2**shift``, round half up.

    Computed as ``((x >> (shift-1)) + 1) >> 1`` with arithmetic shifts, which equals the
    formula above for every integer ``x`` and ``shift >= 1`` and cannot overflow (the
    rounding constant is never materialised). ``shift == 0`` returns ``x``.

    Parameters
    ----------
    x : array_like of int
        Values, int64.
    shift : int or array_like of int
        Shift amounts in 0..63, broadcast against ``x`` (per-channel on the last axis).
    """
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if s.size and (s.min() < 0 or s.max() > 63):
        bad = s[(s < 0) | (s > 63)].flat[0]
        raise ValueError(f"shift must be in 0..63, not {int(bad)!r}")
    if not s.shape and int(s) == 0:
        return x.copy()
    rounded = ((x >> np.maximum(s - 1, 0)) + 1) >> 1
    return np.where(s == 0, x, rounded) if (s == 0).any() else rounded


# -- multipliers ------------------------------------------------------------------------------
def _check_ratio(real) -> float:
    if isinstance(real, bool) or not isinstance(real, Real):
        raise TypeError(f"ratio must be a real number, not {real!r}")
    r = float(real)
    if not (math.isfinite(r) and MIN_RATIO <= r < MAX_RATIO):
        raise ValueError(f"ratio must be finite and in [2**{MULT_BITS - 1 - SHIFT_MAX}, "
                         f"2**{MULT_BITS - 1} - 1/4), not {real!r}")
    return r


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`quantize_multiplier`: arrays ``(M, shift)`` of ``reals``' shape."""
    r = np.asarray(reals, dtype=np.float64)
    for v in r.flat:
        _check_ratio(float(v))
    frac, exp = np.frexp(r)                          # r = frac * 2**exp, 0.5 <= frac < 1
    m = np.floor(frac * 2.0 ** MULT_BITS + 0.5).astype(np.int64)   # exact in float64
    shift = (MULT_BITS - exp).astype(np.int64)
    carry = m == 2 ** MULT_BITS                      # rounded up to the next power of two
    m = np.where(carry, 2 ** (MULT_BITS - 1), m)
    shift = np.where(carry, shift - 1, shift)
    return m, shift


def quantize_multiplier(real) -> tuple[int, int]:
    """Normalise a positive real ratio to ``(M, shift)`` with ``real ~= M / 2**shift``.

    ``M`` is in ``[2**14, 2**15)`` and ``shift`` in ``[1, 63]``;
    ``|M / 2**shift - real| <= 2**-15 * real``.

    Raises
    ------
    TypeError
        If ``real`` is not a real number.
    ValueError
        If ``real`` is not finite or outside ``[MIN_RATIO, MAX_RATIO)`` (this includes zero
        and negative ratios).
    """
    _check_ratio(real)
    m, s = quantize_multipliers(float(real))
    return int(m), int(s)


def clamp_ratio(real):
    """Clip ratios into ``[MIN_RATIO, MAX_RATIO)`` without changing any requantized result.

    A ratio ``>= 2**14`` sends every non-zero accumulator (``|acc| >= 1``) past any 8-bit
    bound, exactly as ``MAX_RATIO`` does; a ratio ``< 2**-49`` sends every accumulator with
    ``|acc| < 2**48`` to 0, exactly as ``MIN_RATIO`` does. Returns the same type as given.
    """
    r = np.asarray(real, dtype=np.float64)
    if not np.isfinite(r).all() or (r <= 0).any():
        bad = r[~np.isfinite(r) | (r <= 0)].flat[0]
        raise ValueError(f"ratio must be finite and positive, not {float(bad)!r}")
    out = np.clip(r, MIN_RATIO, np.nextafter(MAX_RATIO, 0))
    return float(out) if np.ndim(real) == 0 else out


def _check_product(x: np.ndarray, multiplier, what: str) -> None:
    if x.size and int(np.abs(x).max()) * int(np.max(multiplier)) >= _INT64_LIMIT // 2:
        raise OverflowError(f"{what}: |x| * M = {int(np.abs(x).max())} * {int(np.max(multiplier))} "
                            f"does not fit the 63-bit product")


def requantize(acc, multiplier, shift, lo: int, hi: int) -> np.ndarray:
    """``clamp(round_shift(acc * M, shift), lo, hi)``: scale accumulators to activations.

    Parameters
    ----------
    acc : array_like of int
        Accumulators (int64).
    multiplier, shift : int or array_like of int
        ``M`` and ``shift``, scalars or arrays broadcast against ``acc`` (a per-channel
        ``(C,)`` array applies along the last axis).
    lo, hi : int
        Saturation bounds (the activation range, or the fused ReLU/ReLU6 range).
    """
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    _check_product(acc, m, "requantize")
    return saturate(round_shift(acc * m, shift), lo, hi)


@dataclass(frozen=True, eq=False)
class RequantSpec:
    """Parameters of one requantization stage: ``clamp(round_shift(acc * M, shift), lo, hi)``.

    Parameters
    ----------
    multiplier : numpy.ndarray of int64
        ``M`` per channel (or per divisor, for pools), each in ``[2**14, 2**15)``.
    shift : numpy.ndarray of int64
        Shift per entry, same shape as ``multiplier``, each in ``[1, 63]``.
    lo, hi : int
        Saturation bounds, ``lo <= hi``.

    Raises
    ------
    ValueError
        If shapes differ or a value is out of range (the message quotes it).
    """

    multiplier: np.ndarray
    shift: np.ndarray
    lo: int
    hi: int

    def __post_init__(self):
        m = np.atleast_1d(np.asarray(self.multiplier)).astype(np.int64)
        s = np.atleast_1d(np.asarray(self.shift)).astype(np.int64)
        if m.shape != s.shape or m.ndim != 1:
            raise ValueError(f"multiplier and shift must be 1-D arrays of one shape, "
                             f"not {m.shape} and {s.shape}")
        bad_m = m[(m < 2 ** (MULT_BITS - 1)) | (m >= 2 ** MULT_BITS)]
        if bad_m.size:
            raise ValueError(f"multiplier must be in [2**{MULT_BITS - 1}, 2**{MULT_BITS}), "
                             f"not {int(bad_m[0])!r}")
        bad_s = s[(s < SHIFT_MIN) | (s > SHIFT_MAX)]
        if bad_s.size:
            raise ValueError(f"shift must be in {SHIFT_MIN}..{SHIFT_MAX}, not {int(bad_s[0])!r}")
        if not (isinstance(self.lo, Integral) and isinstance(self.hi, Integral) and self.lo <= self.hi):
            raise ValueError(f"bounds must be ints with lo <= hi, not [{self.lo!r}, {self.hi!r}]")
        m.flags.writeable = s.flags.writeable = False
        object.__setattr__(self, "multiplier", m)
        object.__setattr__(self, "shift", s)
        object.__setattr__(self, "lo", int(self.lo))
        object.__setattr__(self, "hi", int(self.hi))

    @classmethod
    def from_ratios(cls, ratios, lo: int, hi: int) -> "RequantSpec":
        """Spec for real ``ratios`` (clipped with :func:`clamp_ratio`, then normalised)."""
        m, s = quantize_multipliers(clamp_ratio(np.atleast_1d(np.asarray(ratios, dtype=np.float64))))
        return cls(m, s, lo, hi)

    @property
    def ratios(self) -> np.ndarray:
        """The real ratios the integer pairs represent, ``M / 2**shift``."""
        return self.multiplier / np.exp2(self.shift)

    def __len__(self):
        return len(self.multiplier)

    def apply(self, acc, index=None) -> np.ndarray:
        """Requantize ``acc``; per-channel entries along the last axis, or ``M[index]``."""
        if index is None:
            m, s = self.multiplier, self.shift
            if len(m) == 1:
                m, s = m[0], s[0]
        else:
            m, s = self.multiplier[index], self.shift[index]
        return requantize(acc, m, s, self.lo, self.hi)

    def __repr__(self):
        return (f"RequantSpec(channels={len(self)}, M={self.multiplier[:4].tolist()}..., "
                f"shift={self.shift[:4].tolist()}..., lo={self.lo}, hi={self.hi})")


# -- accumulators and bias --------------------------------------------------------------------
def accumulator_bits(abits: int, wbits: int, taps: int) -> int:
    """Signed accumulator width of a dot product of ``taps`` terms plus a bias.

    ``abits + wbits + ceil(log2(taps)) + 1``. With activations in the full ``abits`` range,
    weights in the narrow ``wbits`` range and the bias saturated to :func:`bias_bound`,
    every partial and final sum fits (proof in ``docs/numerics.md``).

    Raises
    ------
    TypeError, ValueError
        If a width is not in 2..32 or ``taps`` is not a positive int.
    """
    abits, wbits = _check_bits(abits, "abits"), _check_bits(wbits, "wbits")
    if isinstance(taps, bool) or not isinstance(taps, Integral) or taps < 1:
        raise ValueError(f"taps must be a positive int, not {taps!r}")
    return abits + wbits + (int(taps) - 1).bit_length() + 1


def max_abs_dot(abits: int, wbits: int, taps: int) -> int:
    """Largest ``|sum of taps products|``: ``taps * 2**(abits-1) * (2**(wbits-1) - 1)``."""
    accumulator_bits(abits, wbits, taps)  # validates
    return int(taps) * 2 ** (abits - 1) * (2 ** (wbits - 1) - 1)


def sum_bits(abits: int, taps: int) -> int:
    """Signed width of a sum of ``taps`` activations (pool windows): ``abits + ceil(log2(taps))``.

    ``|sum| <= taps * 2**(abits-1) <= 2**(abits - 1 + ceil(log2(taps)))`` and the positive
    side stays below that by ``taps``, so the sum fits.
    """
    abits = _check_bits(abits, "abits")
    if isinstance(taps, bool) or not isinstance(taps, Integral) or taps < 1:
        raise ValueError(f"taps must be a positive int, not {taps!r}")
    return abits + (int(taps) - 1).bit_length()


def bias_bound(abits: int, wbits: int, taps: int) -> int:
    """Largest ``|bias|``: what the accumulator leaves after the worst dot product, and int32.

    ``min(2**31 - 1, 2**(n-1) - 1 - max_abs_dot)`` with ``n = accumulator_bits``; it is at
    least ``2**(n-2)``, so realistic biases are never clipped (see ``docs/numerics.md``).
    """
    n = accumulator_bits(abits, wbits, taps)
    return min(2 ** (BIAS_BITS - 1) - 1, 2 ** (n - 1) - 1 - max_abs_dot(abits, wbits, taps))


def check_fits(x, bits: int, what: str = "value") -> None:
    """Raise ``OverflowError`` unless every integer in ``x`` fits a signed ``bits``-bit word."""
    x = np.asarray(x)
    if not x.size:
        return
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    xmin, xmax = int(x.min()), int(x.max())
    if xmin < lo or xmax > hi:
        raise OverflowError(f"{what}: values [{xmin}, {xmax}] overflow a signed {bits}-bit "
                            f"accumulator [{lo}, {hi}]")


# -- float <-> int conversions (offline) ------------------------------------------------------
def quantize_weights_per_channel(w, wbits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel weight quantization (channel = axis 0).

    ``scale[c] = max|w[c]| / (2**(wbits-1) - 1)`` (``1 / qmax`` for an all-zero channel) and
    ``q = clamp(round_half_up(w / scale[c]), -qmax, qmax)``; ``|q * scale - w| <= scale / 2``.

    Returns
    -------
    q : numpy.ndarray of int64
        Same shape as ``w``.
    scales : numpy.ndarray of float64
        One per output channel.
    """
    wbits = _check_bits(wbits, "wbits")
    w = np.asarray(w, dtype=np.float64)
    if w.ndim < 1 or not np.isfinite(w).all():
        raise ValueError(f"weights must be a finite array with an output-channel axis, "
                         f"got shape {w.shape}")
    lo, hi = qrange(wbits, narrow=True)
    peak = np.abs(w.reshape(len(w), -1)).max(axis=1) if w.size else np.zeros(len(w))
    scales = np.where(peak > 0, peak, 1.0) / hi
    bshape = (-1,) + (1,) * (w.ndim - 1)
    q = saturate(round_half_up(w / scales.reshape(bshape)), lo, hi)
    return q, scales


def quantize_bias(b, scale, bound: int) -> np.ndarray:
    """``clamp(round_half_up(b / scale), -bound, bound)`` (scale = ``s_in * s_w[c]``)."""
    return saturate(round_half_up(np.asarray(b, dtype=np.float64) / scale), -bound, bound)


def quantize_tensor(x, scale: float, bits: int) -> np.ndarray:
    """Float to activation integers: ``clamp(round_half_up(x / scale), qmin, qmax)``.

    Raises
    ------
    ValueError
        If ``scale`` is not a positive finite number.
    """
    if not (isinstance(scale, Real) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, not {scale!r}")
    lo, hi = qrange(bits)
    x = np.asarray(x, dtype=np.float64)
    return saturate(round_half_up(np.clip(x / scale, lo - 1, hi + 1)), lo, hi)


def dequantize(q, scale) -> np.ndarray:
    """Integers back to reals, ``q * scale``, as float64."""
    return np.asarray(q, dtype=np.float64) * scale


def clamp_bounds(kind: str | None, scale: float, bits: int) -> tuple[int, int]:
    """Saturation bounds of an output stage, with a fused (or standalone) ReLU or ReLU6.

    ``None``: ``(qmin, qmax)``; ``"relu"``: ``(0, qmax)``;
    ``"relu6"``: ``(0, min(qmax, round_half_up(6 / scale)))``.
    """
    lo, hi = qrange(bits)
    if kind is None:
        return lo, hi
    if kind == "relu":
        return 0, hi
    if kind == "relu6":
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, not {scale!r}")
        return 0, int(min(hi, int(round_half_up(6.0 / scale))))
    raise ValueError(f"only relu and relu6 are clamps, not {kind!r}")


# -- lookup tables ----------------------------------------------------------------------------
def build_lut(fn: Callable[[np.ndarray], np.ndarray], s_in: float, s_out: float,
              abits: int) -> np.ndarray:
    """Table of an element-wise function on ``abits``-bit integers.

    Entry ``i`` holds the output for input ``q = qmin + i``:
    ``clamp(round_half_up(fn(q * s_in) / s_out), qmin, qmax)``, evaluated in float64.
    The table (``2**abits`` entries) *is* the definition the RTL stores in a ROM.
    """
    for name, s in (("s_in", s_in), ("s_out", s_out)):
        if not (isinstance(s, Real) and math.isfinite(s) and s > 0):
            raise ValueError(f"{name} must be a positive finite number, not {s!r}")
    lo, hi = qrange(abits)
    q = np.arange(lo, hi + 1, dtype=np.float64)
    v = np.asarray(fn(q * float(s_in)), dtype=np.float64) / float(s_out)
    return saturate(round_half_up(np.clip(v, lo - 1, hi + 1)), lo, hi)


def apply_lut(q, lut, abits: int) -> np.ndarray:
    """Look ``q`` up in ``lut`` (from :func:`build_lut`): ``lut[q - qmin]``."""
    lo, hi = qrange(abits)
    lut = np.asarray(lut, dtype=np.int64)
    if lut.shape != (2 ** abits,):
        raise ValueError(f"a {abits}-bit table has {2 ** abits} entries, not shape {lut.shape}")
    q = np.asarray(q, dtype=np.int64)
    if q.size and (q.min() < lo or q.max() > hi):
        raise ValueError(f"table index out of the {abits}-bit range: [{q.min()}, {q.max()}]")
    return lut[q - lo]


# -- two-operand stages -----------------------------------------------------------------------
def add_multipliers(ratio_a: float, ratio_b: float) -> tuple[int, int, int]:
    """``(Ma, Mb, shift)`` for ``y = (a*Ma + b*Mb) >> shift`` with one shared shift.

    The larger ratio is normalised as in :func:`quantize_multiplier`; the smaller one uses
    the same shift, ``round_half_up(r * 2**shift)`` (it may be below ``2**14``, or even 0
    when that input is negligible). Both errors are at most ``2**-(shift+1)`` absolute.
    """
    ra, rb = clamp_ratio(ratio_a), clamp_ratio(ratio_b)
    big = max(ra, rb)
    m_big, shift = quantize_multiplier(big)
    m_small = int(math.floor(min(ra, rb) * 2.0 ** shift + 0.5))
    return (m_big, m_small, shift) if ra >= rb else (m_small, m_big, shift)


def add_requantize(a, b, ma: int, mb: int, shift: int, lo: int, hi: int) -> np.ndarray:
    """Residual add of two activations at different scales into a third scale.

    ``y = clamp(round_shift(a * Ma + b * Mb, shift), lo, hi)``.
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    for m in (ma, mb):
        if not (isinstance(m, Integral) and 0 <= m < 2 ** MULT_BITS):
            raise ValueError(f"add multiplier must be an int in [0, 2**{MULT_BITS}), not {m!r}")
    _check_product(a, ma, "add")
    _check_product(b, mb, "add")
    return saturate(round_shift(a * ma + b * mb, shift), lo, hi)


def mul_requantize(x, g, multiplier, shift, lo: int, hi: int) -> np.ndarray:
    """Channel-wise product (SE gate): ``clamp(round_shift(x * g * M, shift), lo, hi)``.

    ``x`` is an (H, W, C) map and ``g`` a (1, 1, C) gate; both are integers.
    """
    x, g = np.asarray(x, dtype=np.int64), np.asarray(g, dtype=np.int64)
    return requantize(x * g, multiplier, shift, lo, hi)
