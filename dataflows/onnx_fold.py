"""Constant folding for the ONNX importer.

Exporters compute reshape targets at run time: ``Shape -> Gather -> Div -> Unsqueeze ->
Concat -> Reshape`` for a channel shuffle, ``Shape -> Gather -> Concat`` for a flatten. With
the input shape fixed, every such sub-graph is a constant. :func:`fold_constants` evaluates
in numpy each node whose inputs are all constants (or, for ``Shape``, whose input has a static
shape), so the pattern passes only ever see constant targets.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from onnx import helper

from .onnx_ir import OnnxGraph, OnnxImportError, OnnxNode

__all__ = ["fold_constants", "fold_node", "FOLDABLE_OPS"]


def _axes(node: OnnxNode, args, index: int) -> list[int] | None:
    """Axes from the attribute (older opsets) or from input ``index`` (newer ones)."""
    if "axes" in node.attrs:
        return list(node.attrs["axes"])
    if len(args) > index and args[index] is not None:
        return [int(a) for a in np.asarray(args[index]).reshape(-1)]
    return None


def _constant(node, args):
    attrs = node.attrs
    if "value" in attrs:
        return np.asarray(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise node.fail(f"attributes {sorted(attrs)} are not supported (only a dense value)")


def _div(node, args):
    a, b = args
    if np.issubdtype(a.dtype, np.integer):
        return (np.trunc(a / b)).astype(a.dtype)  # C integer division truncates toward zero
    return (a / b).astype(a.dtype)


def _slice(node, args):
    data = args[0]
    if len(args) > 1:  # opset >= 10: starts, ends, axes, steps as inputs
        starts, ends = (np.asarray(a).reshape(-1) for a in args[1:3])
        axes = args[3] if len(args) > 3 and args[3] is not None else range(len(starts))
        steps = args[4] if len(args) > 4 and args[4] is not None else [1] * len(starts)
    else:
        starts, ends = node.attrs["starts"], node.attrs["ends"]
        axes = node.attrs.get("axes", range(len(starts)))
        steps = [1] * len(starts)
    index = [slice(None)] * data.ndim
    # Python slices clamp exactly as ONNX does, including INT64_MAX "to the end" sentinels.
    for axis, start, end, step in zip(np.asarray(list(axes)).reshape(-1), starts, ends, steps):
        index[int(axis)] = slice(int(start), int(end), int(step))
    return data[tuple(index)]


def _reshape(node, args):
    data, shape = args[0], [int(s) for s in np.asarray(args[1]).reshape(-1)]
    if not node.flag("allowzero", 0):
        shape = [data.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return data.reshape(shape)


def _normalized(node, axes, rank: int) -> list[int]:
    if any(not -rank <= a < rank for a in axes):
        raise node.fail(f"axes {axes} are out of range for rank {rank}")
    return [a % rank for a in axes]


def _squeeze(node, args):
    axes = _axes(node, args, 1)
    if axes is None:
        return np.squeeze(args[0])
    return np.squeeze(args[0], axis=tuple(_normalized(node, axes, args[0].ndim)))


def _unsqueeze(node, args):
    axes = _axes(node, args, 1)
    rank = args[0].ndim + len(axes)
    out = args[0]
    for axis in sorted(_normalized(node, axes, rank)):
        out = np.expand_dims(out, axis)
    return out


def _constant_of_shape(node, args):
    value = node.attr("value", np.zeros(1, dtype=np.float32))
    value = np.asarray(value).reshape(-1)
    return np.full([int(s) for s in np.asarray(args[0]).reshape(-1)], value[0], dtype=value.dtype)


def _cast(node, args):
    return args[0].astype(helper.tensor_dtype_to_np_dtype(node.attrs["to"]))


def _transpose(node, args):
    perm = node.attr("perm")
    return np.transpose(args[0], perm if perm is None else list(perm))


FOLDABLE_OPS: dict[str, Callable] = {
    "Constant": _constant,
    "Identity": lambda node, args: args[0],
    "Gather": lambda node, args: np.take(args[0], args[1].astype(np.int64),
                                         axis=node.attr("axis", 0)),
    "Slice": _slice,
    "Div": _div,
    "Mul": lambda node, args: (args[0] * args[1]).astype(args[0].dtype),
    "Add": lambda node, args: (args[0] + args[1]).astype(args[0].dtype),
    "Sub": lambda node, args: (args[0] - args[1]).astype(args[0].dtype),
    "Neg": lambda node, args: -args[0],
    "Floor": lambda node, args: np.floor(args[0]),
    "Ceil": lambda node, args: np.ceil(args[0]),
    "Sqrt": lambda node, args: np.sqrt(args[0]),
    "Equal": lambda node, args: np.equal(args[0], args[1]),
    "Where": lambda node, args: np.where(args[0], args[1], args[2]),
    "Expand": lambda node, args: args[0] * np.ones([int(s) for s in args[1]], args[0].dtype),
    "Cast": _cast,
    "Concat": lambda node, args: np.concatenate(args, axis=node.attrs["axis"]),
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "ConstantOfShape": _constant_of_shape,
    "Range": lambda node, args: np.arange(args[0], args[1], args[2]).astype(args[0].dtype),
}


def _shape_value(node: OnnxNode, shape_of) -> np.ndarray | None:
    """The value of a ``Shape`` node if its input's shape is known, else ``None``."""
    shape = shape_of(node.inputs[0])
    if shape is None or any(d is None for d in shape):
        return None
    start, end = node.attr("start", 0), node.attr("end", None)
    return np.asarray(shape[start:end], dtype=np.int64)


def fold_node(g: OnnxGraph, node: OnnxNode, shape_of: Callable) -> bool:
    """Store ``node``'s output as a constant if it can be computed now; return whether it was.

    ``shape_of(tensor)`` gives a non-constant tensor's static shape, or ``None``. The caller
    removes or skips the folded node.
    """
    if node.op == "Shape":
        value = _shape_value(node, lambda t: g.constants[t].shape if t in g.constants
                             else shape_of(t))
        if value is None:
            return False
    elif node.op in FOLDABLE_OPS and all(t == "" or t in g.constants for t in node.inputs):
        args = [g.constants[t] if t else None for t in node.inputs]
        try:
            value = np.asarray(FOLDABLE_OPS[node.op](node, args))
        except OnnxImportError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as e:
            raise node.fail(f"cannot evaluate on constant inputs: {e}") from e
    else:
        return False
    if len(node.outputs) != 1:
        raise node.fail(f"expected one output, found {len(node.outputs)}")
    g.constants[node.outputs[0]] = value
    return True


def fold_constants(g: OnnxGraph) -> bool:
    """Evaluate every node computable from constants; return whether any was folded.

    One sweep suffices because nodes are in topological order: a folded output is a
    constant by the time its readers are visited.
    """
    changed = False
    for node in list(g.nodes):
        if fold_node(g, node, g.shapes.get):
            g.remove(node)
            changed = True
    return changed
