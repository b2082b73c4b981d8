"""From a quantized model to folded, buffered hardware graphs that fit a board.

:func:`compile_model` runs the passes in order: lower, fold under the budget, width
converters, MVU input buffers, fork/join FIFOs, then checks the result (FIFOs included) against
the budget, tightening the pace if the FIFOs pushed it over. When even the most folded design
does not fit, :func:`partition` cuts the stage chain where one stream crosses, into pieces run
one after another (activations through DDR), and says which layer cannot fit if one cannot.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtl_templates.resources import Resources

from .fifo_sizing import add_input_buffers, size_fifos
from .fold import (FitError, FoldResult, candidates, fold, insert_width_converters,
                   pipeline_cycles, design_resources, _fits)
from .hwgraph import HwGraph
from .latency import pipeline_latency
from .lower import lower
from .units import stage_resources

__all__ = ["Compiled", "compile_model", "partition", "stage_latency", "FitError"]


@dataclass
class Compiled:
    """One partition: a folded, buffered hardware graph and its figures."""

    hw: HwGraph
    fold: FoldResult
    resources: Resources
    cycles_per_frame: int


def _finish(hw: HwGraph, budget: Resources, family, target, progress) -> Compiled:
    """Fold, add converters and FIFOs; shrink the budget and refold if the FIFOs overflow it."""
    base = hw
    squeeze = Resources()
    for _ in range(4):
        hw = base.copy()
        res_budget = Resources(**{k: max(0, getattr(budget, k) - getattr(squeeze, k))
                                  for k in ("dsp", "bram18", "lut", "ff")})
        fr = fold(hw, res_budget, family, target=target, progress=progress)
        insert_width_converters(hw)
        add_input_buffers(hw)
        size_fifos(hw, pipeline_cycles(hw))
        res = design_resources(hw, family)
        over = _fits(res, budget)
        if not over:
            return Compiled(hw, fr, res, pipeline_cycles(hw))
        if target is not None:
            raise FitError(f"with its FIFOs the design needs {getattr(res, over)} {over}, the "
                           f"budget is {getattr(budget, over)}")
        squeeze = squeeze + Resources(**{k: max(0, getattr(res, k) - getattr(fr.resources, k))
                                         for k in ("dsp", "bram18", "lut", "ff")})
    raise FitError(f"the design does not settle under the budget ({over} over)")


def compile_model(qmodel, board, *, fps: float | None = None, progress=None) -> list[Compiled]:
    """Compile ``qmodel`` for ``board``; one :class:`Compiled` per partition (one if it fits)."""
    say = progress or (lambda msg: None)
    hw = lower(qmodel)
    say(f"lowered to {len(hw.graph)} stages")
    budget, family = board.budget(), board.family
    target = None if fps is None else max(1, int(board.clock_mhz * 1e6 / fps))
    try:
        return [_finish(hw, budget, family, target, progress)]
    except FitError as exc:
        if target is not None or "even fully folded" not in str(exc):
            raise
        say(f"does not fit on chip ({exc}); partitioning")
    parts = partition(hw, budget, family)
    say(f"{len(parts)} partitions")
    return [_finish(p, budget, family, None, progress) for p in parts]


def _min_resources(hw: HwGraph, names, family) -> Resources:
    total = Resources()
    for n in names:
        st = hw.stage(n)
        st.pe, st.simd = candidates(st)[0]
        total = total + stage_resources(st, family)
    return total


def _segment(hw: HwGraph, names: list[str]) -> HwGraph:
    """The stages ``names`` (a contiguous run between single-stream cuts) as a graph."""
    out = hw.copy()
    out.graph = out.graph.subgraph(names).copy()
    if hw.input is not None and hw.input[0] in names:
        out.input = hw.input
    else:
        (u, v, d), = [(u, v, d) for u, v, d in hw.graph.edges(data=True)
                      if u not in names and v in names]
        out.input = (v, d["dst_port"])
        src = hw.stage(u)
        out.input_shape = hw.stage(v).in_shapes[0]
        out.input_bits = src.bits
    leaving = [(u, d["src_port"]) for u, v, d in hw.graph.edges(data=True)
               if u in names and v not in names]
    out.output = leaving[0] if leaving else hw.output
    return out


def partition(hw: HwGraph, budget: Resources, family) -> list[HwGraph]:
    """Cut ``hw`` into runs of stages, each fitting ``budget`` fully folded, at points where
    exactly one stream crosses. Raises :class:`FitError` naming the layer that cannot fit."""
    order = [st.name for st in hw.stages()]
    index = {n: k for k, n in enumerate(order)}
    cuts = []   # positions k: one edge from order[:k+1] to order[k+1:]
    for k in range(len(order) - 1):
        crossing = [1 for u, v in hw.graph.edges if index[u] <= k < index[v]]
        if len(crossing) == 1:
            cuts.append(k)
    cuts.append(len(order) - 1)
    parts, start = [], 0
    while start < len(order):
        best = None
        for k in cuts:
            if k < start:
                continue
            res = _min_resources(hw, order[start:k + 1], family)
            if not _fits(res, budget):
                if best is None or k > best:
                    best = k
            else:
                break
        if best is None:
            k = next(c for c in cuts if c >= start)
            names = order[start:k + 1]
            worst = max(names, key=lambda n: _min_resources(hw, [n], family).bram18)
            res = _min_resources(hw, [worst], family)
            over = _fits(res, budget) or _fits(_min_resources(hw, names, family), budget)
            need = getattr(_min_resources(hw, names, family), over)
            raise FitError(f"layer {hw.stage(worst).layer or worst!r} (with the stages it cannot "
                           f"be cut from: {names[0]} .. {names[-1]}) needs {need} {over} fully "
                           f"folded; the budget is {getattr(budget, over)} (over by "
                           f"{need - getattr(budget, over)})")
        parts.append(_segment(hw, order[start:best + 1]))
        start = best + 1
    return parts


def stage_latency(hw: HwGraph) -> int:
    """Estimated first-input-to-first-output cycles (:func:`hwgen.latency.pipeline_latency`)."""
    return pipeline_latency(hw)

