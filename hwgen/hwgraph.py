"""The hardware graph: streaming stages and the streams between them.

A :class:`Stage` is one layer of the model as hardware (a conv is a sliding window plus a
matrix-vector unit; a pool a window plus the pool unit), or a piece of plumbing the lowering
adds (a fork where a tensor has several consumers, a width converter or a FIFO). Its folding
(``pe``, ``simd``) is chosen by :mod:`hwgen.fold`; :mod:`hwgen.assemble` turns it into PEs.

Edges carry one stream each: ``(src, dst)`` with attributes ``src_port`` (``"o"``, ``"o0"`` …)
and ``dst_port`` (``"i"``, ``"a"``, ``"b"``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

import networkx as nx

from dataflows.layers import TensorShape
from rtl_templates.resources import MemoryStyle

__all__ = ["Op", "Stage", "ChannelSlice", "HwGraph", "ordered_subgraph", "truncated"]


class Op(enum.Enum):
    """What a stage computes."""

    CONV = "conv"              # SlidingWindow (unless 1x1 stride 1) + MatrixVectorUnit
    FC = "fc"                  # MatrixVectorUnit on a 1x1 map
    DEPTHWISE = "depthwise"    # SlidingWindow (channel-major) + DepthwiseUnit
    MAXPOOL = "maxpool"        # SlidingWindow (channel-major) + Pool
    AVGPOOL = "avgpool"
    GLOBAL_AVGPOOL = "global_avgpool"
    ADD = "add"
    CONCAT = "concat"
    SPLIT = "split"
    SHUFFLE = "channel_shuffle"
    LUT = "lut_activation"
    SCALE = "channel_scale"
    FORK = "fork"
    WIDTH = "width_converter"
    FIFO = "fifo"

    @property
    def computes(self) -> bool:
        """Has multipliers whose folding trades speed for DSPs."""
        return self in (Op.CONV, Op.FC, Op.DEPTHWISE)


@dataclass(eq=False)
class Stage:
    """One streaming stage.

    Attributes
    ----------
    name : str
        The model layer's name (``fire2/expand3x3``), or a derived name for plumbing
        (``fire2/squeeze1x1/fork``).
    op : Op
    in_shapes : list[TensorShape]
        One per input port, in port order (``i``, or ``a`` then ``b``).
    out_shape : TensorShape
    bits : int
        Output activation bits; ``in_bits`` per input port.
    layer : str or None
        The model node the stage computes (``None`` for plumbing).
    spec : object
        The model's layer spec (kernel, stride …), ``None`` for plumbing.
    qparams : object
        The quantized parameters (:mod:`dataflows.quantize`), or what plumbing needs.
    pe, simd : int
        Folding. ``simd``: lanes of the input beats (taps per cycle for a conv, which reads
        all its channels per beat when that is more than them); ``pe``:
        lanes of the output beats of CONV/FC/DEPTHWISE (every other op keeps ``simd`` lanes).
    outputs : int
        Output ports (a fork's fan-out, 2 for a split).
    wbits : int or None
        Weight bits of a CONV, FC or DEPTHWISE stage.
    weight_style : MemoryStyle
        Where a CONV/FC stage's weight ROMs go: AUTO (by size) unless the placement
        (:func:`hwgen.fold.place_weights`) moved them to URAM or LUTs, or DDR: read from
        off-chip memory every frame (``--ddr-weights``).
    ddr_bytes_per_cycle : float
        A DDR stage's share of the board's DDR bandwidth, bytes per cycle (0 otherwise).
    lut_table : numpy.ndarray or None
        A LUT stage's outputs for every input code, ascending.
    split_channels : (int, int) or None
        A SPLIT stage's channels on ``o0`` and ``o1``.
    simd_in : int or None
        A WIDTH stage's input lanes (``simd`` is its output lanes).
    fifo_depth : int or None
        A FIFO stage's depth in beats.
    cache : dict
        What :mod:`hwgen.units` built for the stage (its PEs by folding, its weight matrix),
        shared with the stage's copies; not part of what the stage is.
    """

    name: str
    op: Op
    in_shapes: list[TensorShape]
    out_shape: TensorShape
    bits: int
    in_bits: list[int]
    layer: str | None = None
    spec: object = None
    qparams: object = None
    pe: int = 1
    simd: int = 1
    outputs: int = 1
    wbits: int | None = None
    weight_style: MemoryStyle = MemoryStyle.AUTO
    ddr_bytes_per_cycle: float = 0.0
    lut_table: object = None
    split_channels: tuple[int, int] | None = None
    simd_in: int | None = None
    fifo_depth: int | None = None
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def in_ports(self) -> list[str]:
        return ["i"] if len(self.in_shapes) == 1 else ["a", "b"]

    @property
    def out_ports(self) -> list[str]:
        return ["o"] if self.outputs == 1 else [f"o{k}" for k in range(self.outputs)]

    def in_lanes(self, port: str = "i") -> int:
        if self.op is Op.DEPTHWISE:
            return self.pe
        if self.op is Op.WIDTH:
            return self.simd_in
        if self.op is Op.CONV:   # a SIMD over kernel columns reads whole pixels
            return min(self.simd, self.in_shapes[0].c)
        return self.simd

    @property
    def out_lanes(self) -> int:
        return self.pe if self.op.computes else self.simd

    @property
    def in_channels(self) -> int:
        return self.in_shapes[0].c

    @property
    def in_beats(self) -> int:
        """Beats per frame on the first input port."""
        shape = self.in_shapes[0]
        return max(1, shape.h * shape.w * shape.c // max(1, self.in_lanes(self.in_ports[0])))

    @property
    def out_beats(self) -> int:
        """Beats per frame on each output port."""
        shape = self.out_shape
        return max(1, shape.h * shape.w * shape.c // max(1, self.out_lanes))


@dataclass(frozen=True)
class ChannelSlice:
    """Output channels ``lo`` to ``hi - 1`` of model layer ``layer`` (of ``of``): the share of
    a layer split across partitions that one partition computes."""

    layer: str
    lo: int
    hi: int
    of: int

    def __post_init__(self):
        if not 0 <= self.lo < self.hi <= self.of:
            raise ValueError(f"channel slice {self.lo}..{self.hi} is not within 0..{self.of}")


class HwGraph:
    """Stages in a DAG, one input stream and one output stream.

    Attributes
    ----------
    graph : networkx.DiGraph
        Nodes are stage names with attribute ``stage``; edges carry ``src_port`` and
        ``dst_port``.
    input, output : (str, str)
        The stage and port the accelerator input feeds, and the stage and port it outputs.
    channels : ChannelSlice or None
        For a partition that computes part of a split layer, which output channels.
    """

    def __init__(self, model_name: str, input_shape: TensorShape, input_bits: int):
        self.model_name = model_name
        self.input_shape = input_shape
        self.input_bits = input_bits
        self.graph = nx.DiGraph()
        self.input: tuple[str, str] | None = None
        self.output: tuple[str, str] | None = None
        self.channels: ChannelSlice | None = None
        #: Put every weight memory that would take block RAM into URAM instead, loaded at
        #: start (``--uram-weights``): the weights become replaceable at run time.
        self.weights_in_uram = False

    def add(self, stage: Stage) -> Stage:
        if stage.name in self.graph:
            raise ValueError(f"stage {stage.name!r} already exists")
        self.graph.add_node(stage.name, stage=stage)
        return stage

    def connect(self, src: str, src_port: str, dst: str, dst_port: str) -> None:
        if self.graph.has_edge(src, dst):
            raise ValueError(f"stages {src!r} and {dst!r} are already connected")
        self.graph.add_edge(src, dst, src_port=src_port, dst_port=dst_port)

    def stage(self, name: str) -> Stage:
        return self.graph.nodes[name]["stage"]

    def stages(self) -> list[Stage]:
        """In a deterministic topological order (ties broken by insertion order)."""
        order = {n: k for k, n in enumerate(self.graph.nodes)}
        names = nx.lexicographical_topological_sort(self.graph, key=order.__getitem__)
        return [self.stage(n) for n in names]

    def edges(self) -> list[tuple[str, str, str, str]]:
        """``(src, src_port, dst, dst_port)`` for every stream."""
        return [(u, d["src_port"], v, d["dst_port"]) for u, v, d in self.graph.edges(data=True)]

    def producer(self, name: str, port: str) -> tuple[str, str]:
        """The ``(stage, port)`` feeding input ``port`` of stage ``name``."""
        if (name, port) == self.input:
            return ("input", "i")
        for u, _, d in self.graph.in_edges(name, data=True):
            if d["dst_port"] == port:
                return (u, d["src_port"])
        raise KeyError(f"input {port!r} of stage {name!r} is not connected")

    def insert_on_edge(self, src: str, dst: str, stage: Stage) -> None:
        """Put a one-in, one-out ``stage`` on the stream from ``src`` to ``dst``."""
        d = self.graph.edges[src, dst]
        self.graph.remove_edge(src, dst)
        self.add(stage)
        self.connect(src, d["src_port"], stage.name, "i")
        self.connect(stage.name, "o", dst, d["dst_port"])

    def copy(self) -> "HwGraph":
        """A copy whose stages can be refolded and whose graph can be edited independently."""
        out = HwGraph(self.model_name, self.input_shape, self.input_bits)
        out.input, out.output, out.channels = self.input, self.output, self.channels
        out.weights_in_uram = self.weights_in_uram
        out.graph = self.graph.copy()
        for n in out.graph.nodes:
            st = out.graph.nodes[n]["stage"]
            out.graph.nodes[n]["stage"] = replace(st)
        return out


def ordered_subgraph(graph: nx.DiGraph, names: list[str]) -> nx.DiGraph:
    """The stages ``names`` of ``graph`` with the streams between them: nodes in the order of
    ``names``, edges in ``graph``'s. (networkx's ``subgraph`` iterates a set of the names, so
    the stage order, and with it the Verilog, would follow the string hash seed.)"""
    keep = set(names)
    out = nx.DiGraph()
    out.add_nodes_from((n, graph.nodes[n]) for n in names)
    out.add_edges_from((u, v, d) for u, v, d in graph.edges(data=True)
                       if u in keep and v in keep)
    return out


def truncated(hw: HwGraph, stage_name: str) -> HwGraph:
    """A copy of ``hw`` that ends at ``stage_name``'s output ``o`` (everything not feeding it
    dropped): co-simulating prefixes locates the first stage that diverges."""
    keep = nx.ancestors(hw.graph, stage_name) | {stage_name}
    out = hw.copy()
    out.graph = ordered_subgraph(out.graph, [n for n in out.graph.nodes if n in keep])
    out.output = (stage_name, "o")
    return out
