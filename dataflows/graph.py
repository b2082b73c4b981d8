"""The model graph: a ``networkx.DiGraph`` of typed layer specs.

Node attributes
---------------
``layer``
    The :class:`~dataflows.layers.Layer` spec.
``inputs``
    Names of the producer nodes, in operand order (concat order, ``Mul``'s map then scale).
``weight``, ``bias``
    ``numpy.float32`` arrays for layers with weights (see :mod:`dataflows.layers` for layouts),
    ``None`` until :meth:`Model.init_weights` or an importer sets them.
``out_shape``
    The node's output :class:`~dataflows.layers.TensorShape`, set by :meth:`Model.infer_shapes`.

Edge attribute ``shape`` is the tensor shape carried from producer to consumer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from .layers import Conv2d, Input, Layer, Linear, TensorShape

__all__ = ["Model", "LayerInfo", "GraphError"]


class GraphError(ValueError):
    """The graph is malformed: unknown producer, duplicate name, cycle, no single output."""


@dataclass(frozen=True)
class LayerInfo:
    """Counts for one node, as listed by ``hwgen summary``."""

    name: str
    op: str
    kernel: tuple[int, int] | None
    groups: int | None
    out_shape: TensorShape
    params: int
    macs: int


class Model:
    """A CNN as a directed acyclic graph with one input and one output.

    Parameters
    ----------
    name : str
        Model name, used in reports and generated file names.
    input_shape : (int, int, int)
        Input image shape (H, W, C).
    input_name : str
        Name of the input node.
    """

    def __init__(self, name: str, input_shape, input_name: str = "input"):
        if not isinstance(name, str) or not name:
            raise ValueError(f"model name must be a non-empty string, not {name!r}")
        self.name = name
        self.graph = nx.DiGraph()
        self.input = input_name
        self._last = None
        self.add(input_name, Input(TensorShape(*input_shape)), inputs=[])

    # -- construction ---------------------------------------------------------------------
    def add(self, name: str, layer: Layer, inputs: list[str] | str | None = None) -> str:
        """Add a node and return its name.

        ``inputs`` defaults to the node added last, so sequential parts read top to bottom.
        Shapes are inferred on the spot, so a wrong shape fails at the line that made it.
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"layer must be a Layer spec, not {layer!r}")
        if name in self.graph:
            raise GraphError(f"duplicate node name {name!r}")
        if inputs is None:
            inputs = [self._last]
        elif isinstance(inputs, str):
            inputs = [inputs]
        for src in inputs:
            if src not in self.graph:
                raise GraphError(f"node {name!r} reads from unknown node {src!r}")
        in_shapes = [self.graph.nodes[src]["out_shape"] for src in inputs]
        out_shape = layer.output_shape(in_shapes)
        self.graph.add_node(name, layer=layer, inputs=list(inputs), out_shape=out_shape,
                            weight=None, bias=None)
        for src, shape in zip(inputs, in_shapes):
            self.graph.add_edge(src, name, shape=shape)
        self._last = name
        return name

    @property
    def last(self) -> str:
        """Name of the node added last."""
        return self._last

    # -- queries --------------------------------------------------------------------------
    @property
    def output(self) -> str:
        sinks = [n for n in self.graph if self.graph.out_degree(n) == 0]
        if len(sinks) != 1:
            raise GraphError(f"model {self.name!r} must have exactly one output, has {sinks}")
        return sinks[0]

    @property
    def input_shape(self) -> TensorShape:
        return self.graph.nodes[self.input]["out_shape"]

    @property
    def output_shape(self) -> TensorShape:
        return self.graph.nodes[self.output]["out_shape"]

    def layer(self, name: str) -> Layer:
        return self.graph.nodes[name]["layer"]

    def inputs_of(self, name: str) -> list[str]:
        return self.graph.nodes[name]["inputs"]

    def input_shapes(self, name: str) -> list[TensorShape]:
        return [self.graph.nodes[src]["out_shape"] for src in self.inputs_of(name)]

    def out_shape(self, name: str) -> TensorShape:
        return self.graph.nodes[name]["out_shape"]

    def topological_order(self) -> list[str]:
        """Nodes in a deterministic topological order (ties broken by insertion order)."""
        rank = {n: i for i, n in enumerate(self.graph.nodes)}
        return list(nx.lexicographical_topological_sort(self.graph, key=rank.__getitem__))

    def layers(self) -> list[str]:
        """Nodes other than the input, in topological order."""
        return [n for n in self.topological_order() if n != self.input]

    def infer_shapes(self) -> None:
        """Recompute every node's output shape (after a graph rewrite)."""
        if not nx.is_directed_acyclic_graph(self.graph):
            raise GraphError(f"model {self.name!r} has a cycle")
        for name in self.topological_order():
            node = self.graph.nodes[name]
            node["out_shape"] = node["layer"].output_shape(self.input_shapes(name))
            for succ in self.graph.successors(name):
                self.graph.edges[name, succ]["shape"] = node["out_shape"]

    # -- counting -------------------------------------------------------------------------
    def info(self, name: str) -> LayerInfo:
        layer, ins = self.layer(name), self.input_shapes(name)
        return LayerInfo(
            name=name, op=layer.op,
            kernel=getattr(layer, "kernel", None),
            groups=layer.groups if isinstance(layer, Conv2d) else None,
            out_shape=self.out_shape(name), params=layer.params(ins), macs=layer.macs(ins))

    def summary(self) -> list[LayerInfo]:
        return [self.info(n) for n in self.layers()]

    @property
    def params(self) -> int:
        return sum(i.params for i in self.summary())

    @property
    def macs(self) -> int:
        return sum(i.macs for i in self.summary())

    # -- weights --------------------------------------------------------------------------
    def weighted_layers(self) -> list[str]:
        return [n for n in self.layers() if isinstance(self.layer(n), (Conv2d, Linear))]

    def init_weights(self, seed: int = 0) -> "Model":
        """Give every conv and linear layer seeded random weights (He normal, small biases).

        Nothing can be downloaded, so the zoo's models carry these; a fixed seed makes every
        run, and every generated design, reproducible.
        """
        rng = np.random.default_rng(seed)
        for name in self.weighted_layers():
            layer, ins = self.layer(name), self.input_shapes(name)
            shape = layer.weight_shape(ins)
            fan_in = math.prod(shape[1:])
            node = self.graph.nodes[name]
            node["weight"] = (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)
            n_out = shape[0]
            node["bias"] = ((rng.standard_normal(n_out) * 0.05).astype(np.float32)
                            if layer.bias else None)
        return self

    def __repr__(self):
        return (f"Model({self.name!r}, input={tuple(self.input_shape)}, "
                f"layers={self.graph.number_of_nodes() - 1})")
