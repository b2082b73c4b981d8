"""A small mutable graph of ONNX nodes that the import passes rewrite.

``onnx.GraphProto`` is awkward to rewrite in place, so the importer copies it into plain
Python objects: :class:`OnnxNode` (op, name, tensor names, decoded attributes) and
:class:`OnnxGraph` (nodes in topological order, constant tensors as numpy arrays, statically
inferred shapes). Passes in :mod:`dataflows.onnx_patterns` and :mod:`dataflows.onnx_fold`
match on it; :mod:`dataflows.onnx_convert` turns what is left into hwgen layers.

Ops created by passes carry the :data:`HW` prefix (``hwgen.ChannelShuffle``); real ONNX ops
never do, so the two cannot be confused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["OnnxImportError", "OnnxNode", "OnnxGraph", "HW", "graph_from_proto"]

HW = "hwgen."


class OnnxImportError(ValueError):
    """The ONNX model cannot be imported: unreadable, malformed, or outside what hwgen maps.

    The message is one line and, for a node-level problem, names the node and its op.
    """


@dataclass
class OnnxNode:
    """One ONNX node with decoded attributes.

    ``name`` is the node's ONNX name, or its first output's name when the node is unnamed;
    it becomes the hwgen layer name. An omitted optional input is ``""``.
    """

    op: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    def fail(self, why: str) -> OnnxImportError:
        """An error naming this node and its op, e.g. ``node 'Conv_3' (Conv): ...``."""
        return OnnxImportError(f"node {self.name!r} ({self.op}): {why}")

    def attr(self, key: str, default=None):
        return self.attrs.get(key, default)

    def flag(self, key: str, default: int) -> bool:
        """A 0/1 attribute as a bool; any other value is an error (ONNX leaves it undefined)."""
        value = self.attrs.get(key, default)
        if value not in (0, 1):
            raise self.fail(f"attribute {key}={value!r} must be 0 or 1")
        return bool(value)

    def input(self, i: int) -> str:
        """Name of input ``i``, or ``""`` if it is absent."""
        return self.inputs[i] if i < len(self.inputs) else ""


def _attr_value(attr: onnx.AttributeProto):
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in value]
    return value


def _static_shape(value_info: onnx.ValueInfoProto) -> tuple[int | None, ...] | None:
    """The shape of a tensor value, unknown dimensions as ``None``; ``None`` if unranked."""
    ttype = value_info.type.tensor_type
    if not ttype.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in ttype.shape.dim)


class OnnxGraph:
    """Nodes in topological order plus constants and shapes, with use-def queries.

    Attributes
    ----------
    nodes : list of OnnxNode
    constants : dict of str to numpy.ndarray
        Initializers, ``Constant`` outputs and everything the constant folder computed.
    shapes : dict of str to tuple
        Shapes from ONNX shape inference (``None`` for unknown dimensions).
    input, output : str
        The graph's one non-constant input and its one output.
    opset : int
        Version of the default ("ai.onnx") domain.
    """

    def __init__(self, nodes, constants, shapes, input_name, output_name, opset):
        self.nodes: list[OnnxNode] = nodes
        self.constants: dict[str, np.ndarray] = constants
        self.shapes: dict[str, tuple] = shapes
        self.input = input_name
        self.output = output_name
        self.opset = opset
        self._index = None
        self._fresh = 0

    # -- use-def ---------------------------------------------------------------------------
    def _maps(self):
        if self._index is None:
            producers, consumers = {}, {}
            for node in self.nodes:
                for t in node.outputs:
                    producers[t] = node
                for t in node.inputs:
                    if t:
                        consumers.setdefault(t, []).append(node)
            self._index = producers, consumers
        return self._index

    def changed(self) -> None:
        """Forget the use-def index; call after editing a node's inputs or outputs."""
        self._index = None

    def producer(self, tensor: str) -> OnnxNode | None:
        return self._maps()[0].get(tensor)

    def consumers(self, tensor: str) -> list[OnnxNode]:
        return self._maps()[1].get(tensor, [])

    def only_user(self, tensor: str, node: OnnxNode) -> bool:
        """Whether ``node`` is the one reader of ``tensor`` (the graph output counts as one)."""
        users = self.consumers(tensor)
        return tensor != self.output and len(users) == 1 and users[0] is node

    def const(self, node: OnnxNode, i: int, what: str) -> np.ndarray:
        """Input ``i`` of ``node`` as a constant array, or an error naming ``what`` it is."""
        name = node.input(i)
        if name not in self.constants:
            raise node.fail(f"{what} (input {i}, {name!r}) must be a constant")
        return self.constants[name]

    def add_const(self, hint: str, value: np.ndarray) -> str:
        """Store a new constant under a fresh name derived from ``hint``."""
        self._fresh += 1
        name = f"{hint}::hwgen{self._fresh}"
        self.constants[name] = value
        return name

    # -- edits -----------------------------------------------------------------------------
    def remove(self, node: OnnxNode) -> None:
        self.nodes = [n for n in self.nodes if n is not node]
        self.changed()

    def replace_uses(self, old: str, new: str) -> None:
        """Make every reader of tensor ``old`` read ``new`` (and the graph output follow)."""
        for node in self.nodes:
            node.inputs = [new if t == old else t for t in node.inputs]
        if self.output == old:
            self.output = new
        self.changed()

    def bypass(self, node: OnnxNode) -> None:
        """Remove a pass-through node, wiring its readers to its first input.

        When the output is the graph output, the producer's tensor is renamed instead, so the
        graph output keeps its ONNX name.
        """
        src, dst = node.inputs[0], node.outputs[0]
        self.remove(node)
        prod = self.producer(src)
        if dst == self.output and prod is not None and not self.consumers(src):
            prod.outputs = [dst if t == src else t for t in prod.outputs]
            self.changed()
        else:
            self.replace_uses(dst, src)

    def drop_dead(self) -> bool:
        """Remove nodes whose outputs nobody reads; return whether any went."""
        changed = False
        while True:
            dead = [n for n in self.nodes
                    if not any(self.consumers(t) or t == self.output for t in n.outputs)]
            if not dead:
                return changed
            ids = {id(n) for n in dead}
            self.nodes = [n for n in self.nodes if id(n) not in ids]
            self.changed()
            changed = True


def graph_from_proto(model: onnx.ModelProto, input_name: str, output_name: str) -> OnnxGraph:
    """Copy a shape-inferred model into an :class:`OnnxGraph`."""
    g = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    constants = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    shapes = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        shape = _static_shape(vi)
        if shape is not None:
            shapes[vi.name] = shape
    nodes, seen = [], set()
    for proto in g.node:
        op = proto.op_type if proto.domain in ("", "ai.onnx") else f"{proto.domain}.{proto.op_type}"
        name = proto.name or (proto.output[0] if proto.output else f"{op}_{len(nodes)}")
        if name in seen:  # hwgen layer names must be unique; ONNX only recommends it
            name = f"{name}_{len(nodes)}"
        seen.add(name)
        attrs = {a.name: _attr_value(a) for a in proto.attribute}
        nodes.append(OnnxNode(op, name, list(proto.input), list(proto.output), attrs))
    return OnnxGraph(nodes, constants, shapes, input_name, output_name, opset)
