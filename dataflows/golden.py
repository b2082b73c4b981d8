"""The integer golden model: executes a :class:`~dataflows.quantize.QuantizedModel` bit-exactly.

Every node's output is an int64 array inside its ``qrange``; the RTL must produce the same
integers, layer by layer (co-simulation compares against :func:`dump_layers` output).
Convolutions reuse :mod:`dataflows.tensor_ops` on float64 arrays holding integers (exact below
2**53, and BLAS-fast) and convert back with :func:`~dataflows.tensor_ops.exact_int`; every
rounding and saturation comes from :mod:`dataflows.numerics`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from . import layers as L
from . import numerics as nm
from . import tensor_ops as ops
from .quantize import (QClamp, QConv, QFused, QLut, QPool, QuantConfig, QuantizedModel,
                       quantize)
from .reference import run_float

__all__ = ["DUMP_INDEX", "run_quantized", "run_golden", "eval_node", "conv_int", "pool_int", "sqnr_db",
           "layer_sqnr", "dump_layers", "safe_filename"]

#: The file a layer dump's index is written to (it also marks a folder as a dump).
DUMP_INDEX = "index.json"


# -- per-op integer kernels -----------------------------------------------------------------------
def conv_int(layer: L.Conv2d | L.Linear, p: QConv, x: np.ndarray, name: str = "conv") -> np.ndarray:
    """Integer conv or linear: accumulate exactly, add the bias, check the width, requantize."""
    xf = x.astype(np.float64)
    if isinstance(layer, L.Linear):
        acc = ops.linear(xf, p.weight_f64)
    else:
        acc = ops.conv2d(xf, p.weight_f64, layer.stride, layer.padding, layer.groups)
    acc = ops.exact_int(acc)
    acc += p.bias
    nm.check_fits(acc, p.acc_bits, f"{name} accumulator")
    return p.requant.apply(acc)


def pool_int(layer: L.AvgPool | L.GlobalAvgPool, p: QPool, x: np.ndarray,
             name: str = "pool") -> np.ndarray:
    """Integer average pool: window sum (zero padding), then the divisor's multiplier."""
    if isinstance(layer, L.GlobalAvgPool):
        sums = x.sum(axis=(0, 1), keepdims=True)
    else:
        sums = ops.sum_pool(x, layer.kernel, layer.stride, layer.padding, layer.ceil_mode)
    nm.check_fits(sums, p.acc_bits, f"{name} window sum")
    return p.requant.apply(sums, p.index[:, :, None])


def eval_node(qmodel: QuantizedModel, name: str, args: list[np.ndarray]) -> np.ndarray:
    """Integer output of node ``name`` given its inputs' integer outputs."""
    layer, p = qmodel.model.layer(name), qmodel.params[name]
    match layer:
        case L.Conv2d() | L.Linear():
            return conv_int(layer, p, args[0], name)
        case L.AvgPool() | L.GlobalAvgPool():
            return pool_int(layer, p, args[0], name)
        case L.MaxPool():
            return ops.max_pool(args[0], layer.kernel, layer.stride, layer.padding, layer.ceil_mode)
        case L.Concat():
            return np.concatenate(args, axis=2)
        case L.ChannelShuffle():
            return ops.channel_shuffle(args[0], layer.groups)
        case L.ChannelSplit():
            return args[0][:, :, layer.start:layer.stop]
        case L.Flatten():
            return args[0].reshape(1, 1, -1)
        case L.Add():
            return nm.add_requantize(args[0], args[1], p.multiplier_a, p.multiplier_b, p.shift,
                                     p.lo, p.hi)
        case L.Mul():
            return p.requant.apply(args[0] * args[1])
        case L.Activation():
            match p:
                case QFused():
                    return args[0]
                case QClamp():
                    return nm.saturate(args[0], p.lo, p.hi)
                case QLut():
                    return nm.apply_lut(args[0], p.table, qmodel.bits[name])
    raise TypeError(f"no integer semantics for layer {name!r} ({type(layer).__name__}) "
                    f"with parameters {type(p).__name__}")


def run_quantized(qmodel: QuantizedModel, x_int: np.ndarray, keep_all: bool = False):
    """Run the integer model on one quantized (H, W, C) image.

    Parameters
    ----------
    qmodel : QuantizedModel
    x_int : numpy.ndarray of int
        Input integers, e.g. ``qmodel.quantize_input(image)``.
    keep_all : bool
        Return every node's output (a dict, topological order) instead of the final one.

    Raises
    ------
    ValueError
        If ``x_int`` has the wrong shape, is not integer, or leaves the input range.
    OverflowError
        If an accumulator leaves its stated width (a bug, never expected).
    """
    model = qmodel.model
    x = np.asarray(x_int)
    if x.shape != tuple(model.input_shape):
        raise ValueError(f"input shape {x.shape} does not match the model's "
                         f"{tuple(model.input_shape)} (H, W, C)")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"run_quantized takes integers (see quantize_input), not {x.dtype}")
    lo, hi = qmodel.qrange(model.input)
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"input integers [{x.min()}, {x.max()}] leave the range [{lo}, {hi}]")
    values = {model.input: x.astype(np.int64)}
    users = {n: model.graph.out_degree(n) for n in model.graph}
    for name in model.layers():
        srcs = model.inputs_of(name)
        y = eval_node(qmodel, name, [values[s] for s in srcs])
        lo, hi = qmodel.qrange(name)
        if y.dtype != np.int64 or (y.size and (y.min() < lo or y.max() > hi)):
            raise AssertionError(f"node {name!r} produced {y.dtype} values outside [{lo}, {hi}]")
        values[name] = y
        if not keep_all:
            for s in srcs:
                users[s] -= 1
                if users[s] == 0:
                    del values[s]
    return values if keep_all else values[model.output]


def run_golden(model, x_float, config: QuantConfig | None = None, calibration=None,
               keep_all: bool = False):
    """Quantize ``model`` (a Model, or an existing QuantizedModel) and run it on a float image.

    Returns ``(qmodel, result)`` where ``result`` is what :func:`run_quantized` returns.
    """
    qmodel = model if isinstance(model, QuantizedModel) else quantize(model, config, calibration)
    return qmodel, run_quantized(qmodel, qmodel.quantize_input(x_float), keep_all=keep_all)


# -- accuracy -------------------------------------------------------------------------------------
def sqnr_db(reference, quantized) -> float:
    """Signal-to-quantization-noise ratio ``10 log10(sum(ref**2) / sum((ref - q)**2))`` in dB.

    ``inf`` when the two agree exactly; ``-inf`` when the reference is all zero but not ``q``.
    """
    r = np.asarray(reference, dtype=np.float64)
    q = np.asarray(quantized, dtype=np.float64)
    if r.shape != q.shape:
        raise ValueError(f"shapes differ: {r.shape} and {q.shape}")
    noise, signal = float(((r - q) ** 2).sum()), float((r ** 2).sum())
    if noise == 0:
        return math.inf
    return 10 * math.log10(signal / noise) if signal > 0 else -math.inf


def layer_sqnr(qmodel: QuantizedModel, x_float) -> dict[str, float]:
    """SQNR (dB) of every node's dequantized integer output against the float model.

    Nodes with a fused ReLU are compared against the activation's float output (which is
    what their integers represent, see :meth:`QuantizedModel.counterpart`).
    """
    ref = run_float(qmodel.model, x_float, keep_all=True)
    ints = run_quantized(qmodel, qmodel.quantize_input(x_float), keep_all=True)
    return {n: sqnr_db(ref[qmodel.counterpart(n)], qmodel.dequantize(n, q))
            for n, q in ints.items()}


# -- dumping --------------------------------------------------------------------------------------
def safe_filename(name: str) -> str:
    """A file name stem from a layer name: ``/`` becomes ``__``, other unsafe characters ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("/", "__")).lstrip(".") or "_"


def dump_layers(values: dict[str, np.ndarray], directory, qmodel: QuantizedModel | None = None
                ) -> dict[str, dict]:
    """Write one ``.npy`` per node and an index (``DUMP_INDEX``, ``index.json``) describing them.

    Parameters
    ----------
    values : dict[str, numpy.ndarray]
        Node name -> output, e.g. ``run_quantized(..., keep_all=True)`` or
        ``run_float(..., keep_all=True)``.
    directory : str or Path
        Created if missing.
    qmodel : QuantizedModel, optional
        Gives each entry its ``scale`` and ``bits``; without it (float dumps) both are null.

    Returns
    -------
    dict
        The index: ``{name: {"file", "shape", "dtype", "scale", "bits"}}`` in ``values``
        order. File names are :func:`safe_filename` stems, made unique with a ``~n`` suffix.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    index, taken = {}, set()
    for name, v in values.items():
        stem, k = safe_filename(name), 1
        while stem.lower() in taken:   # unique even on case-insensitive file systems
            k += 1
            stem = f"{safe_filename(name)}~{k}"
        taken.add(stem.lower())
        v = np.asarray(v)
        np.save(out / f"{stem}.npy", v)
        index[name] = {
            "file": f"{stem}.npy", "shape": list(v.shape), "dtype": str(v.dtype),
            "scale": None if qmodel is None else float(qmodel.scales[name]),
            "bits": None if qmodel is None else int(qmodel.bits[name]),
        }
    lines = [f" {json.dumps(name)}: {json.dumps(entry)}" for name, entry in index.items()]
    (out / DUMP_INDEX).write_text("{\n" + ",\n".join(lines) + "\n}\n")  # a line per layer
    return index
