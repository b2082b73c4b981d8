"""Turn the rewritten ONNX graph into hwgen layers, one converter function per op.

After :mod:`dataflows.onnx_patterns` has folded and fused, every node left maps to at most a
few hwgen layers. The converter functions live in :mod:`dataflows.onnx_ops` (compute) and
:mod:`dataflows.onnx_ops_layout` (slicing, reshaping, and the ops that are only errors
by the time they get here); :class:`Converter` is the state they share. It walks the nodes in
order, folds what became constant once shapes are known, and records, per ONNX tensor, the
hwgen node holding it and how it is laid out:

- rank 4, ``(1, C, H, W)``: a feature map, hwgen ``(H, W, C)``;
- rank 2, ``(1, K)``: a vector, hwgen ``(1, 1, K)``. A vector that ONNX flattened in C, H, W
  order while hwgen flattens in H, W, C order carries ``perm``, the hwgen position of each
  ONNX element; the next fully connected layer permutes its weight columns to match.

A converter is ``fn(converter, node)``; it raises :class:`~dataflows.onnx_ir.OnnxImportError`
naming the node and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import layers as L
from .graph import GraphError, Model
from .onnx_fold import fold_node
from .onnx_ir import OnnxGraph, OnnxImportError, OnnxNode

__all__ = ["Converter", "Tensor", "ConverterFn", "registrar", "ints"]


@dataclass(frozen=True)
class Tensor:
    """Where an ONNX tensor lives in the hwgen model (see the module docstring)."""

    node: str
    rank: int
    perm: np.ndarray | None = None


ConverterFn = Callable[["Converter", OnnxNode], None]


def registrar(table: dict[str, ConverterFn]):
    """A decorator factory: ``@converts("Relu", "Sigmoid")`` enters a function in ``table``."""
    def converts(*ops: str):
        def register(fn):
            for op in ops:
                table[op] = fn
            return fn
        return register
    return converts


def ints(value) -> list[int]:
    """An attribute or constant as a list of Python ints."""
    return [int(v) for v in np.asarray(value).reshape(-1)]


class Converter:
    """Builds a :class:`~dataflows.graph.Model` from an :class:`OnnxGraph`.

    Parameters
    ----------
    g : OnnxGraph
        The rewritten graph.
    model : Model
        A model holding only its input node, named after the ONNX input.
    converters : dict of str to callable
        The converter function of each op.
    """

    def __init__(self, g: OnnxGraph, model: Model, converters: dict[str, ConverterFn]):
        self.g = g
        self.model = model
        self.converters = converters
        self.tensors: dict[str, Tensor] = {g.input: Tensor(model.input, 4)}

    # -- queries ---------------------------------------------------------------------------
    def onnx_shape(self, t: Tensor) -> tuple[int, ...]:
        h, w, c = self.model.out_shape(t.node)
        return (1, c, h, w) if t.rank == 4 else (1, h * w * c)

    def fmap(self, node: OnnxNode, i: int, rank: int | None = None) -> Tensor:
        """Input ``i`` of ``node`` as a converted tensor (not a constant), of ``rank`` if given."""
        name = node.input(i)
        if name in self.g.constants:
            raise node.fail(f"input {i} ({name!r}) is a constant; a computed tensor is expected")
        if name not in self.tensors:
            raise node.fail(f"input {i} ({name!r}) is not produced by any supported node")
        t = self.tensors[name]
        if rank is not None and t.rank != rank:
            raise node.fail(f"input {name!r} has shape {list(self.onnx_shape(t))}; expected "
                            f"a {'(N, C, H, W) feature map' if rank == 4 else '(N, K) matrix'}")
        return t

    def hwc(self, t: Tensor) -> L.TensorShape:
        return self.model.out_shape(t.node)

    # -- building --------------------------------------------------------------------------
    def alias(self, node: OnnxNode, src: Tensor, rank: int | None = None, out: int = 0) -> None:
        """The node's output is ``src`` itself, possibly seen with another rank."""
        self.tensors[node.outputs[out]] = Tensor(src.node, rank or src.rank, src.perm)

    def add(self, node: OnnxNode, layer: L.Layer, inputs: list[Tensor], rank: int = 4,
            perm=None, weight=None, bias=None, name: str | None = None, out: int = 0) -> None:
        """Add ``layer`` as hwgen node ``name`` (the ONNX node's name by default)."""
        name = name or node.name
        if name in self.model.graph:
            name = f"{name}_{len(self.model.graph)}"
        try:
            self.model.add(name, layer, inputs=[t.node for t in inputs])
        except (ValueError, GraphError) as e:  # ShapeError and bad specs are ValueErrors
            raise node.fail(str(e)) from e
        attrs = self.model.graph.nodes[name]
        expected = layer.weight_shape(self.model.input_shapes(name))
        if weight is not None and tuple(np.shape(weight)) != tuple(expected):
            raise node.fail(f"weight of shape {list(np.shape(weight))} does not fit; hwgen "
                            f"expects {list(expected)} (in hwgen's OHWI layout)")
        if bias is not None and np.size(bias) != expected[0]:
            raise node.fail(f"bias of shape {list(np.shape(bias))} does not match the "
                            f"{expected[0]} outputs")
        if weight is not None:
            attrs["weight"] = np.ascontiguousarray(weight, dtype=np.float32)
        if bias is not None:
            attrs["bias"] = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
        tensor = node.outputs[out]
        self.tensors[tensor] = t = Tensor(name, rank, perm)
        known = self.g.shapes.get(tensor)
        if known is not None and None not in known and tuple(known) != self.onnx_shape(t):
            raise node.fail(f"hwgen computes output shape {list(self.onnx_shape(t))} but ONNX "
                            f"infers {list(known)}")

    def static_shape(self, tensor: str) -> tuple | None:
        if tensor in self.tensors:
            return self.onnx_shape(self.tensors[tensor])
        return self.g.shapes.get(tensor)

    def run(self) -> None:
        for node in self.g.nodes:
            # Shapes ONNX inference could not see are known now: fold what they decide.
            if fold_node(self.g, node, self.static_shape):
                continue
            fn = self.converters.get(node.op)
            if fn is None:
                raise node.fail("unsupported op")
            try:
                fn(self, node)
            except OnnxImportError:
                raise
            except ValueError as e:  # layer specs reject bad hyper-parameters with a reason
                raise node.fail(str(e)) from e
            except (TypeError, KeyError, IndexError, ArithmeticError) as e:
                raise node.fail(f"malformed node: {type(e).__name__}: {e}") from e
