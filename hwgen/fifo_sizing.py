"""Analytic FIFO depths for every fork/join, from the PEs' cycle models.

A join (Concat, Add, ChannelScale) reads its two inputs in lockstep, and the fork (or split)
upstream moves a beat only when both branches take it. If one branch delays its data longer
(a line buffer filling rows, a global pool waiting for the whole frame), the other branch must
hold what the fork pushed meanwhile, or the fork stalls the slow branch's input and the design
deadlocks. So the short branch gets a FIFO right before the join holding the difference of the
branches' lags, at the pipeline's pace, plus slack.

The lag of a unit is its :meth:`latency` (first input to first output at one input beat per
cycle) stretched by how much slower than that its input arrives at the pipeline's pace
``T``: ``latency * T / input beats per frame``. For a line buffer this is the rows it must hold
before its first window; for a global pool, the whole frame. This is the generalisation of
:func:`rtl_templates.fire_module.bypass_pixels` (the Fire module's measured bound), and is
conservative: it ignores what the units on the short branch hold themselves.
"""

from __future__ import annotations

import math

import networkx as nx

from .hwgraph import HwGraph, Op, Stage
from .fold import stage_cycles
from .units import stage_units

__all__ = ["stage_lag", "size_fifos", "JOINS"]

JOINS = (Op.CONCAT, Op.ADD, Op.SCALE)
#: Extra pixels of slack on every bypass: the pixel the join is reading and one in flight.
SLACK_PIXELS = 2
#: The most frames a bypass holds. The longest real lag is a squeeze-excite's gate: a global
#: pool (a frame) and two FCs (up to a frame each at the pace) before the multiply starts;
#: with two frames EfficientNet-B0 folded for 16,000 fps measured 25,274 cycles per frame
#: against 15,360 modelled (the bypass filled and stalled the pool's input).
MAX_FRAMES = 3
#: Pixels a concat's input holds besides any bypass: one being read, one being written.
CONCAT_PIXELS = 2


def stage_lag(stage: Stage, pace: int) -> float:
    """Cycles from the stage's first input to its first output at pipeline pace ``pace``.

    A unit's latency counts input beats arriving one per cycle (a line buffer's rows, a
    global pool's frame); at the pipeline's pace they arrive every ``pace / input beats``
    cycles, so the latency stretches by that factor. A 1x1 input (a squeeze-excite's FCs)
    comes in one burst: the lag is the stage's own cycles per frame.
    """
    in_beats = stage.in_beats
    ins = stage.in_shapes[0]
    if ins.h * ins.w == 1:
        # A vector (after a global pool) arrives in one burst, not spread over the frame:
        # the stage has all of it at once and its last output follows within its own cycles
        # per frame (a frame at most at the pace, far less in a folded-down design).
        return float(max(stage_cycles(stage, stage.pe, stage.simd),
                         sum(unit.latency() for _, unit in stage_units(stage))))
    lag = 0.0
    for _, unit in stage_units(stage):
        lag += unit.latency() * max(1.0, pace / in_beats)
        in_beats = _output_beats(unit, in_beats)
    return lag


def _output_beats(unit, in_beats: int) -> int:
    """Beats per frame leaving ``unit`` (a window multiplies them; the rest keep the rate)."""
    out = getattr(unit, "output_beats", None)
    return out() if callable(out) else in_beats


def _branch_point(g: nx.DiGraph, a: str, b: str) -> str | None:
    common = (nx.ancestors(g, a) | {a}) & (nx.ancestors(g, b) | {b})
    if not common:
        return None
    order = {n: k for k, n in enumerate(nx.topological_sort(g))}
    return max(common, key=order.__getitem__)


def _arrival(hw: HwGraph, start: str, end: str, pace: int) -> dict[str, float]:
    """Longest lag from ``start``'s output to each node's output, on paths to ``end``."""
    g = hw.graph
    between = (nx.descendants(g, start) & nx.ancestors(g, end)) | {start}
    arrival = {start: 0.0}
    for n in nx.topological_sort(g.subgraph(between)):
        if n == start:
            continue
        preds = [arrival[p] for p in g.predecessors(n) if p in arrival]
        arrival[n] = max(preds) + stage_lag(hw.stage(n), pace)
    return arrival


def size_fifos(hw: HwGraph, pace: int) -> list[Stage]:
    """Insert a FIFO before every join's shorter branch; return the FIFO stages."""
    added = []
    for join in [s for s in hw.stages() if s.op in JOINS]:
        (pa, _), (pb, _) = (hw.producer(join.name, p) for p in ("a", "b"))
        start = _branch_point(hw.graph, pa, pb)
        if start is None:
            raise ValueError(f"join {join.name!r} has inputs from unrelated streams")
        arrival = _arrival(hw, start, join.name, pace)
        lag = {"a": arrival[pa], "b": arrival[pb]}
        if join.op is Op.SCALE:
            # The multiply starts a frame only once its whole gate is in: the gate's first
            # beat plus the time its producer takes to deliver all of it.
            gate = hw.stage(pb)
            lag["b"] += stage_cycles(gate, gate.pe, gate.simd)
        short = min(lag, key=lag.get)
        diff = max(lag.values()) - lag[short]
        beats_per_pixel = _pixel_beats(join, short)
        shape = _port_shape(join, short)
        beats = shape.h * shape.w * beats_per_pixel
        depth = math.ceil(diff / (pace / beats)) + SLACK_PIXELS * beats_per_pixel
        depth = max(2, min(depth, MAX_FRAMES * beats + SLACK_PIXELS * beats_per_pixel))
        added.append(_fifo_before(hw, join, short, depth))
        if join.op is Op.CONCAT:
            # A concat reads a pixel's a-beats, then its b-beats: while it reads one input,
            # the other's producer must have room for the beats it makes meanwhile, or it
            # stalls and loses those cycles every pixel (measured on a SqueezeNet Fire module
            # whose expand3x3 sets the pace: 194.6 instead of 144 cycles per pixel).
            other = "b" if short == "a" else "a"
            added.append(_fifo_before(hw, join, other, CONCAT_PIXELS * _pixel_beats(join, other)))
    return added


def _port_shape(join: Stage, port: str):
    return join.in_shapes[join.in_ports.index(port)]


def _pixel_beats(join: Stage, port: str) -> int:
    return _port_shape(join, port).c // join.in_lanes(port)


def _fifo_before(hw: HwGraph, join: Stage, port: str, depth: int) -> Stage:
    """A FIFO of ``depth`` beats on ``join``'s input ``port``."""
    prod, _ = hw.producer(join.name, port)
    src = hw.stage(prod)
    shape = _port_shape(join, port)
    fifo = Stage(name=f"{join.name}/{port}_fifo", op=Op.FIFO, in_shapes=[shape],
                 out_shape=shape, bits=src.bits, in_bits=[src.bits], simd=join.in_lanes(port),
                 fifo_depth=max(2, depth))
    hw.insert_on_edge(prod, join.name, fifo)
    return fifo


def add_input_buffers(hw: HwGraph) -> list[Stage]:
    """A FIFO of two input vectors before every pixel-fed matrix-vector unit that computes
    several output groups per input vector.

    Such a unit reads a pixel's ``steps`` beats while computing its first group, then spends
    ``(groups - 1) * steps`` cycles on the others without reading. Fed at the pipeline's pace
    straight from its producer, the first group is stretched to the producer's rate and the
    rest are added on top (measured: 34,056 instead of 18,432 cycles per frame on a Fire
    module). With the next vector waiting in a FIFO the first group runs at one beat per
    cycle and the unit keeps its modelled rate. (Window-fed units need none: the line buffer
    holds rows.)
    """
    from .units import needs_window
    added = []
    for st in hw.stages():
        if st.op not in (Op.CONV, Op.FC) or needs_window(st):
            continue
        units = stage_units(st)
        mvu = units[-1][1]
        if mvu.params.groups == 1:
            continue
        prod, _ = hw.producer(st.name, "i")
        shape = st.in_shapes[0]
        if prod == "input":
            continue
        fifo = Stage(name=f"{st.name}/i_buffer", op=Op.FIFO, in_shapes=[shape],
                     out_shape=shape, bits=st.in_bits[0], in_bits=[st.in_bits[0]],
                     simd=st.simd, fifo_depth=2 * mvu.params.steps + 2)
        hw.insert_on_edge(prod, st.name, fifo)
        added.append(fifo)
    return added
