"""Post-training quantization of a float :class:`~dataflows.graph.Model` to hwgen's integers.

:func:`quantize` calibrates activation ranges on a few inputs, assigns one scale per tensor,
fuses ReLU/ReLU6 into the clamp of the layer that produces their input, quantizes weights per
output channel and biases to int32, and derives every ``(M, shift)`` pair. The result, a
:class:`QuantizedModel`, holds typed integer parameters per node (:class:`QConv`,
:class:`QPool`, :class:`QAdd`, :class:`QMul`, :class:`QLut`, :class:`QClamp`,
:class:`QFused`); :func:`dataflows.golden.run_quantized` executes it. The rules are written
down in ``docs/numerics.md``; the arithmetic lives in :mod:`dataflows.numerics`.

Scale assignment
----------------
Data-movement nodes (max pool, concat, channel split and shuffle, flatten, standalone and
fused ReLU/ReLU6) do no arithmetic, so their output must carry their input's scale, and a
concat's inputs must all carry the concat's scale. These constraints partition the tensors
into groups (union-find); each group gets ``max |x| / qmax`` over all its members, and every
producer in the group (conv, pool, add, LUT, ...) requantizes straight to that scale.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np

from . import layers as L
from . import numerics as nm
from . import tensor_ops as ops
from .graph import Model
from .reference import FLOAT_ACTIVATIONS, run_float

__all__ = ["QuantConfig", "QuantizedModel", "QConv", "QPool", "QAdd", "QMul", "QLut", "QClamp",
           "QFused", "quantize", "calibration_inputs", "scale_groups"]

#: Activations applied as a clamp (fused into the producer, or standalone on the int input).
CLAMP_KINDS = ("relu", "relu6")
#: Ops whose output stage is a requantization; a single ReLU/ReLU6 consumer fuses into them.
_REQUANTIZING = (L.Conv2d, L.Linear, L.AvgPool, L.GlobalAvgPool, L.Add, L.Mul)
#: Ops that only move data: output scale = input scale (concat: = every input's scale).
_DATA_MOVEMENT = (L.MaxPool, L.Concat, L.ChannelSplit, L.ChannelShuffle, L.Flatten)


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize a model.

    Parameters
    ----------
    abits : int
        Activation bits, 4..8 (signed, zero point 0, per-tensor scale).
    wbits : int
        Weight bits, 4..8 (symmetric, per-output-channel scale).
    calibration_images : int
        Number of seeded random N(0, 1) calibration images, used when no images are given.
    calibration_seed : int
        Seed of those images.
    calibration_path : str or None
        A ``.npy`` file of calibration images, (N, H, W, C) or one (H, W, C) image; it
        replaces the random images.

    Raises
    ------
    TypeError, ValueError
        If a field has the wrong type or is out of range (the message quotes the value).
    """

    abits: int = 8
    wbits: int = 8
    calibration_images: int = 8
    calibration_seed: int = 0
    calibration_path: str | None = None

    def __post_init__(self):
        for name in ("abits", "wbits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Integral):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if not 4 <= v <= 8:
                raise ValueError(f"{name} must be in 4..8, not {v!r}")
        n = self.calibration_images
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"calibration_images must be a positive int, not {n!r}")
        if isinstance(self.calibration_seed, bool) or not isinstance(self.calibration_seed, Integral):
            raise TypeError(f"calibration_seed must be an int, not {self.calibration_seed!r}")
        p = self.calibration_path
        if p is not None and not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"calibration_path must be a path or None, not {p!r}")


# -- per-node integer parameters ----------------------------------------------------------------
def _frozen(a, dtype=np.int64) -> np.ndarray:
    a = np.array(a, dtype=dtype)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class QConv:
    """Integer parameters of a Conv2d or Linear node.

    ``y = requant(sum(x * weight) + bias)``; the sum runs over ``taps`` products and,
    with the bias, fits ``acc_bits`` signed bits.

    Attributes
    ----------
    weight : numpy.ndarray of int64
        Same layout as the float weight (Conv2d OHWI, Linear (O, I)), narrow ``wbits`` range.
    bias : numpy.ndarray of int64
        ``(O,)``, at scale ``s_in * weight_scale[c]``, saturated to :func:`~numerics.bias_bound`.
    weight_scale : numpy.ndarray of float64
        Per-output-channel weight scale.
    requant : RequantSpec
        Per-channel ``(M, shift)`` for ``s_in * weight_scale / s_out``; fused ReLU in ``lo, hi``.
    taps, acc_bits : int
        Products per output and accumulator width.
    bias_clipped : int
        How many biases hit the bound (0 in any sane model; reported, not hidden).
    """

    weight: np.ndarray
    bias: np.ndarray
    weight_scale: np.ndarray
    requant: nm.RequantSpec
    taps: int
    acc_bits: int
    bias_clipped: int = 0
    weight_f64: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        for name in ("weight", "bias"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))
        object.__setattr__(self, "weight_scale", _frozen(self.weight_scale, np.float64))
        if self.bias.shape != (self.weight.shape[0],) or len(self.requant) != self.weight.shape[0]:
            raise ValueError(f"bias {self.bias.shape} and requant ({len(self.requant)}) must have "
                             f"one entry per output channel ({self.weight.shape[0]})")
        # The golden model convolves in float64 (exact for integers below 2**53, BLAS-fast).
        object.__setattr__(self, "weight_f64", _frozen(self.weight, np.float64))


@dataclass(frozen=True, eq=False)
class QPool:
    """Integer parameters of an AvgPool or GlobalAvgPool node: window sum x reciprocal.

    Attributes
    ----------
    divisors : numpy.ndarray of int64
        The distinct window sizes, ``(K,)``.
    index : numpy.ndarray of int64
        ``(Ho, Wo)``: which divisor each output position uses.
    requant : RequantSpec
        ``K`` entries, for ``s_in / (divisor * s_out)``.
    acc_bits : int
        Width of the window sum, :func:`~numerics.sum_bits`.
    """

    divisors: np.ndarray
    index: np.ndarray
    requant: nm.RequantSpec
    acc_bits: int

    def __post_init__(self):
        object.__setattr__(self, "divisors", _frozen(self.divisors))
        object.__setattr__(self, "index", _frozen(self.index))
        if len(self.requant) != len(self.divisors):
            raise ValueError(f"{len(self.divisors)} divisors need as many multipliers, "
                             f"not {len(self.requant)}")


@dataclass(frozen=True)
class QAdd:
    """``y = clamp(round_shift(a * multiplier_a + b * multiplier_b, shift), lo, hi)``."""

    multiplier_a: int
    multiplier_b: int
    shift: int
    lo: int
    hi: int


@dataclass(frozen=True, eq=False)
class QMul:
    """``y = requant(x * g)`` for a (H, W, C) map ``x`` and a (1, 1, C) gate ``g``."""

    requant: nm.RequantSpec


@dataclass(frozen=True, eq=False)
class QLut:
    """An activation as a ``2**abits``-entry table indexed by ``q - qmin``."""

    kind: str
    table: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "table", _frozen(self.table))


@dataclass(frozen=True)
class QClamp:
    """A standalone ReLU/ReLU6: ``clamp(q, lo, hi)`` on the input integers, scale unchanged."""

    kind: str
    lo: int
    hi: int


@dataclass(frozen=True)
class QFused:
    """An activation done by ``producer``'s output clamp; this node passes data through."""

    kind: str
    producer: str


# -- the quantized model ------------------------------------------------------------------------
@dataclass(eq=False)
class QuantizedModel:
    """A model with integer parameters; run it with :func:`dataflows.golden.run_quantized`.

    Attributes
    ----------
    model : Model
        The float model (graph and float weights).
    config : QuantConfig
    scales : dict[str, float]
        Output scale of every node (real value = integer x scale).
    bits : dict[str, int]
        Output bits of every node.
    params : dict[str, object]
        Typed integer parameters per node; ``None`` for pure data movement.
    fused : dict[str, str]
        Activation node -> the producer whose clamp applies it. The producer's integer output
        is already the activation's output.
    calibration_max : dict[str, float]
        ``max |x|`` of each node's float output over the calibration inputs.
    """

    model: Model
    config: QuantConfig
    scales: dict[str, float]
    bits: dict[str, int]
    params: dict[str, object]
    fused: dict[str, str]
    calibration_max: dict[str, float]

    def __post_init__(self):
        self._fused_producers = {p: a for a, p in self.fused.items()}

    def qrange(self, name: str) -> tuple[int, int]:
        """Integer range of node ``name``'s output."""
        return nm.qrange(self.bits[name])

    def quantize_input(self, x) -> np.ndarray:
        """A float (H, W, C) or (1, H, W, C) image to input integers (round half up, clamp)."""
        x = np.asarray(x)
        shape = tuple(self.model.input_shape)
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.shape != shape:
            raise ValueError(f"input shape {x.shape} does not match the model's {shape} (H, W, C)")
        return nm.quantize_tensor(x, self.scales[self.model.input], self.bits[self.model.input])

    def dequantize(self, name: str, q) -> np.ndarray:
        """Node ``name``'s integers as reals (float64)."""
        return nm.dequantize(q, self.scales[name])

    def dequantize_output(self, q) -> np.ndarray:
        """The model output's integers as reals (float64)."""
        return self.dequantize(self.model.output, q)

    def counterpart(self, name: str) -> str:
        """The float node whose value integer node ``name`` represents.

        A producer with a fused ReLU represents the activation's output, not its own
        pre-activation output; every other node represents itself.
        """
        return self._fused_producers.get(name, name)


# -- calibration --------------------------------------------------------------------------------
def calibration_inputs(model: Model, config: QuantConfig, calibration=None) -> np.ndarray:
    """Calibration images as a float32 (N, H, W, C) array.

    ``calibration`` (an array or a list of (H, W, C) images) wins over
    ``config.calibration_path``, which wins over ``config.calibration_images`` seeded
    N(0, 1) images.
    """
    shape = tuple(model.input_shape)
    if calibration is None and config.calibration_path is not None:
        try:
            calibration = np.load(config.calibration_path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read calibration file {str(config.calibration_path)!r}: "
                             f"{exc}") from None
    if calibration is None:
        rng = np.random.default_rng(config.calibration_seed)
        return rng.standard_normal((config.calibration_images, *shape)).astype(np.float32)
    images = np.asarray(calibration if not isinstance(calibration, (list, tuple))
                        else np.stack([np.asarray(c) for c in calibration]), dtype=np.float32)
    if images.shape == shape:
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != shape or len(images) == 0:
        raise ValueError(f"calibration images must be (N, {', '.join(map(str, shape))}) "
                         f"(H, W, C), not {images.shape}")
    if not np.isfinite(images).all():
        raise ValueError("calibration images contain non-finite values")
    return images


def _calibrate(model: Model, images: np.ndarray) -> dict[str, float]:
    peak = {n: 0.0 for n in model.graph}
    for x in images:
        for name, v in run_float(model, x, keep_all=True).items():
            m = float(np.abs(v).max()) if v.size else 0.0
            if not math.isfinite(m):
                raise ValueError(f"layer {name!r} overflows float32 on a calibration input")
            peak[name] = max(peak[name], m)
    return peak


# -- fusion and scale groups --------------------------------------------------------------------
def _fusions(model: Model) -> dict[str, str]:
    """Activation node -> producer, for each ReLU/ReLU6 that is its producer's only consumer."""
    fused = {}
    for name in model.layers():
        layer = model.layer(name)
        if isinstance(layer, L.Activation) and layer.kind in CLAMP_KINDS:
            (src,) = model.inputs_of(name)
            if isinstance(model.layer(src), _REQUANTIZING) and model.graph.out_degree(src) == 1:
                fused[name] = src
    return fused


def scale_groups(model: Model, fused: dict[str, str] | None = None) -> dict[str, str]:
    """Node -> representative of its scale group (nodes that must share one scale)."""
    fused = _fusions(model) if fused is None else fused
    parent = {n: n for n in model.graph}

    def find(n):
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for name in model.layers():
        layer = model.layer(name)
        if isinstance(layer, _DATA_MOVEMENT) or (isinstance(layer, L.Activation)
                                                 and layer.kind in CLAMP_KINDS):
            for src in model.inputs_of(name):
                parent[find(src)] = find(name)
    return {n: find(n) for n in model.graph}


def _assign_scales(model, peak, fused, abits) -> dict[str, float]:
    groups = scale_groups(model, fused)
    effective = dict(peak)
    for act, producer in fused.items():   # a fused producer outputs the activation's values
        effective[producer] = peak[act]
    group_peak: dict[str, float] = {}
    for n, g in groups.items():
        group_peak[g] = max(group_peak.get(g, 0.0), effective[n])
    qmax = nm.qrange(abits)[1]
    # An all-zero tensor (a dead ReLU on every calibration input) gets the scale of range 1.
    return {n: (group_peak[g] if group_peak[g] > 0 else 1.0) / qmax for n, g in groups.items()}


# -- per-op parameter derivation ----------------------------------------------------------------
def _qconv(model, name, s_in, s_out, lo_hi, cfg) -> QConv:
    node = model.graph.nodes[name]
    q, s_w = nm.quantize_weights_per_channel(node["weight"], cfg.wbits)
    taps = math.prod(q.shape[1:])
    bound = nm.bias_bound(cfg.abits, cfg.wbits, taps)
    if node["bias"] is None:
        bias, clipped = np.zeros(len(q), dtype=np.int64), 0
    else:
        raw = nm.round_half_up(np.clip(node["bias"] / (s_in * s_w), -2.0 ** 61, 2.0 ** 61))
        bias = nm.saturate(raw, -bound, bound)
        clipped = int((bias != raw).sum())
    return QConv(q, bias, s_w, nm.RequantSpec.from_ratios(s_in * s_w / s_out, *lo_hi),
                 taps=taps, acc_bits=nm.accumulator_bits(cfg.abits, cfg.wbits, taps),
                 bias_clipped=clipped)


def _qpool(model, name, s_in, s_out, lo_hi, cfg) -> QPool:
    layer = model.layer(name)
    (in_shape,) = model.input_shapes(name)
    if isinstance(layer, L.GlobalAvgPool):
        counts = np.full((1, 1), in_shape.h * in_shape.w, dtype=np.int64)
        taps = in_shape.h * in_shape.w
    else:
        counts = ops.pool_counts(in_shape, layer.kernel, layer.stride, layer.padding,
                                 layer.ceil_mode, layer.count_include_pad)
        taps = layer.kernel[0] * layer.kernel[1]
    divisors, index = np.unique(counts, return_inverse=True)
    return QPool(divisors, index.reshape(counts.shape),
                 nm.RequantSpec.from_ratios(s_in / (divisors * s_out), *lo_hi),
                 acc_bits=nm.sum_bits(cfg.abits, taps))


def quantize(model: Model, config: QuantConfig | None = None, calibration=None) -> QuantizedModel:
    """Quantize ``model`` (with weights) to hwgen's integer semantics.

    Parameters
    ----------
    model : Model
        The float model; weighted layers must have weights.
    config : QuantConfig, optional
        Bits and calibration settings (defaults: 8/8 bits, 8 seeded N(0, 1) images).
    calibration : array_like or list of arrays, optional
        Calibration images, (N, H, W, C), a list of (H, W, C), or one (H, W, C) image.

    Raises
    ------
    ValueError
        If calibration images have the wrong shape, a layer overflows float32, or the model
        has an op without integer semantics.
    """
    cfg = QuantConfig() if config is None else config
    if not isinstance(cfg, QuantConfig):
        raise TypeError(f"config must be a QuantConfig, not {cfg!r}")
    peak = _calibrate(model, calibration_inputs(model, cfg, calibration))
    fused = _fusions(model)
    fused_kind = {p: model.layer(a).kind for a, p in fused.items()}
    scales = _assign_scales(model, peak, fused, cfg.abits)
    params: dict[str, object] = {model.input: None}
    for name in model.layers():
        layer, srcs = model.layer(name), model.inputs_of(name)
        s_in, s_out = scales[srcs[0]], scales[name]
        lo_hi = nm.clamp_bounds(fused_kind.get(name), s_out, cfg.abits)
        match layer:
            case L.Conv2d() | L.Linear():
                p = _qconv(model, name, s_in, s_out, lo_hi, cfg)
            case L.AvgPool() | L.GlobalAvgPool():
                p = _qpool(model, name, s_in, s_out, lo_hi, cfg)
            case L.Add():
                ma, mb, shift = nm.add_multipliers(s_in / s_out, scales[srcs[1]] / s_out)
                p = QAdd(ma, mb, shift, *lo_hi)
            case L.Mul():
                p = QMul(nm.RequantSpec.from_ratios(s_in * scales[srcs[1]] / s_out, *lo_hi))
            case L.Activation(kind=kind) if name in fused:
                p = QFused(kind, fused[name])
            case L.Activation(kind=kind) if kind in CLAMP_KINDS:
                p = QClamp(kind, *nm.clamp_bounds(kind, s_out, cfg.abits))
            case L.Activation(kind=kind):
                p = QLut(kind, nm.build_lut(FLOAT_ACTIVATIONS[kind], s_in, s_out, cfg.abits))
            case _ if isinstance(layer, _DATA_MOVEMENT):
                p = None
            case _:
                raise ValueError(f"no integer semantics for layer {name!r} "
                                 f"({type(layer).__name__})")
        params[name] = p
    return QuantizedModel(model=model, config=cfg, scales=scales,
                          bits={n: cfg.abits for n in model.graph}, params=params, fused=fused,
                          calibration_max=peak)
