"""From a quantized model to folded, buffered hardware graphs that fit a board.

:func:`compile_model` runs the passes in order: lower, fold under the budget, width
converters, MVU input buffers, fork/join FIFOs, then checks the result (FIFOs included) against
the budget, tightening the pace if the FIFOs pushed it over. When even the most folded design
does not fit, :func:`partition` cuts the stage chain where one stream crosses, into pieces run
one after another (activations through DDR), and says which layer cannot fit if one cannot.

Given a frame rate, the design is folded for its pace with the least hardware; partitions,
which run one after another, share the frame time in proportion to their fastest paces. A pace
no design within the budget reaches raises :class:`PaceUnreachableError`, saying the fastest
one and what limits it.
"""

from __future__ import annotations

import enum
import math
from functools import partial
from dataclasses import dataclass, replace
from numbers import Real

import networkx as nx

from dataflows.numerics import RequantSpec
from dataflows.quantize import QConv
from rtl_templates.resources import RESOURCE_FIELDS, MemoryStyle, Resources

from .fifo_sizing import add_input_buffers, size_fifos
from .fold import (DesignTooLargeError, FitError, FoldResult, Limit, PaceUnreachableError,
                   RESOURCE_NAMES, _fits, candidates, design_resources, fastest_folding, fold,
                   fold_for, fully_folded_cycles, insert_width_converters, limit_text,
                   pace_message, pipeline_cycles, place_weights, slowest_stage)
from .hwgraph import ChannelSlice, HwGraph, Op, Stage, ordered_subgraph
from .latency import pipeline_latency
from .lower import lower
from .units import needs_window, stage_resources

__all__ = ["Compiled", "compile_model", "partition", "partition_sources", "output_partitions",
           "splittable", "stage_latency", "FitError",
           "DesignTooLargeError", "LayerTooLargeError", "PaceUnreachableError", "Limit"]

#: Refolds under a budget shrunk by the FIFOs' cost before falling back to fully folded.
SQUEEZE_ROUNDS = 4


class LayerTooLargeError(DesignTooLargeError):
    """A run of stages that cannot be cut apart exceeds the budget even fully folded.

    Attributes
    ----------
    layer : str
        The model layer (or stage) of the run that needs the most block RAM.
    first, last : str
        The first and last stage of the run.
    resource, needed, budget
        As :class:`DesignTooLargeError`, for the whole run.
    """

    def __init__(self, layer: str, first: str, last: str, resource: str, needed: int,
                 budget: int):
        self.layer, self.first, self.last = layer, first, last
        self.resource, self.needed, self.budget = resource, needed, budget
        FitError.__init__(self, f"layer {layer!r} (with the stages it cannot be cut from: "
                                f"{first} .. {last}) needs {needed:,} {RESOURCE_NAMES[resource]} "
                                f"fully folded; the budget is {budget:,} (over by "
                                f"{needed - budget:,})")


@dataclass
class Compiled:
    """One partition: a folded, buffered hardware graph and its figures."""

    hw: HwGraph
    fold: FoldResult
    resources: Resources
    cycles_per_frame: int


@dataclass(frozen=True)
class _Pace:
    """A requested frame rate at a clock, and how messages put paces."""

    clock_mhz: float
    fps: float

    @property
    def cycles(self) -> int:
        """The most cycles per frame that still reach ``fps`` (0 if not even one)."""
        return int(self.clock_mhz * 1e6 / self.fps)

    def requested(self) -> str:
        cycles = self.cycles
        per_frame = f"{_cycles(cycles)} per frame" if cycles else "under 1 cycle per frame"
        return f"{_rate(self.fps)} fps ({per_frame} at {self.clock_mhz:g} MHz)"

    def figure(self, cycles: int) -> str:
        return f"{_cycles(cycles)} per frame ({_rate(self.clock_mhz * 1e6 / cycles)} fps)"


def _cycles(n: int) -> str:
    return "1 cycle" if n == 1 else f"{n:,} cycles"


def _rate(fps: float) -> str:
    return f"{fps:,.0f}" if fps >= 100 else f"{fps:.3g}"


def _check_fps(fps) -> None:
    if isinstance(fps, bool) or not isinstance(fps, Real) or not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive finite number, not {fps!r}")


def _plumb(hw: HwGraph, family) -> Resources:
    """Add width converters, MVU input buffers and join FIFOs; the resources with them."""
    insert_width_converters(hw)
    add_input_buffers(hw)
    size_fifos(hw, pipeline_cycles(hw))
    return design_resources(hw, family)


def _less(a: Resources, b: Resources) -> Resources:
    """``a - b``, every count at least 0."""
    return Resources(**{k: max(0, getattr(a, k) - getattr(b, k))
                        for k in RESOURCE_FIELDS})


def _finish(hw: HwGraph, budget: Resources, family, progress) -> Compiled:
    """The fastest design that fits ``budget`` with its FIFOs: fold, plumb, and if the FIFOs
    push it over, fold again under a budget shrunk by their cost.

    Raises
    ------
    DesignTooLargeError
        Even fully folded the design (with its FIFOs, if they are what overflows) does not fit.
    """
    squeeze, over, too_fast = Resources(), None, None
    for _ in range(SQUEEZE_ROUNDS):
        part = hw.copy()
        try:
            fr = fold(part, _less(budget, squeeze), family, progress=progress)
        except DesignTooLargeError:
            if over is None:    # the first round, under the whole budget
                raise
            break   # the shrunk budget leaves the stages no room; fully folded may still fit
        res = _plumb(part, family)
        over = _fits(res, budget)
        if not over:
            found = Compiled(part, fr, res, pipeline_cycles(part))
            return found if too_fast is None else _refine(hw, budget, family, found, too_fast,
                                                          progress)
        too_fast = fr.cycles_per_frame if too_fast is None else too_fast
        squeeze = squeeze + _less(res, fr.resources)   # the plumbing's cost
    return _refine(hw, budget, family, _fully_folded(hw, budget, family, over), too_fast, progress)


def _refine(hw: HwGraph, budget: Resources, family, found: Compiled, too_fast: int,
            progress) -> Compiled:
    """The fastest design that fits with its FIFOs, between ``too_fast`` cycles per frame
    (over budget once plumbed) and ``found`` (fits): a bisection to within 0.2%, the weights
    placed with the FIFOs and buffers in the design. A budget shrunk by the whole plumbing's
    cost (:func:`_finish`) overshoots: the plumbing's block RAM is left to weights that could
    have moved to LUTs."""
    lo, hi, over = too_fast + 1, found.cycles_per_frame, found.fold.resource
    while hi - lo > max(1, hi // 500):
        mid = (lo + hi) // 2
        if progress:
            progress(f"folding with FIFOs: try {mid} cycles/frame")
        part = hw.copy()
        fold_for(part, mid)
        _plumb(part, family)
        res = place_weights(part, budget, family)   # the weights placed around the FIFOs
        folded = sum((stage_resources(part.stage(name), family) for name in hw.graph),
                     Resources())
        cycles = pipeline_cycles(part)
        miss = _fits(res, budget)
        if miss or cycles > mid:
            lo, over = mid + 1, miss or over
        else:
            found = Compiled(part, FoldResult(cycles, folded, Limit.BUDGET, over), res, cycles)
            hi = mid
    return found


def _most_folded(hw: HwGraph, budget: Resources, family) -> tuple[HwGraph, Resources, Resources]:
    """``hw`` fully folded, its FIFOs sized and its weights placed around them: the graph, the
    stages' resources and the whole design's."""
    part = hw.copy()
    fold_for(part, fully_folded_cycles(part))
    _plumb(part, family)
    res = place_weights(part, budget, family)
    folded = sum((stage_resources(part.stage(name), family) for name in hw.graph), Resources())
    return part, folded, res


def _fully_folded(hw: HwGraph, budget: Resources, family, over: str) -> Compiled:
    """The most folded design, for when shrinking the budget for the FIFOs overshot."""
    part, folded, res = _most_folded(hw, budget, family)
    worst = _fits(res, budget)
    if worst:
        raise DesignTooLargeError(worst, getattr(res, worst), getattr(budget, worst),
                                  what="the design with its FIFOs")
    cycles = pipeline_cycles(part)
    return Compiled(part, FoldResult(cycles, folded, Limit.BUDGET, over), res, cycles)


def _at_pace(hw: HwGraph, budget: Resources, family, target: int, progress) -> Compiled | None:
    """The least-hardware design at ``target`` cycles per frame that fits ``budget`` with its
    FIFOs, or None."""
    part = hw.copy()
    try:
        fr = fold(part, budget, family, target=target, progress=progress)
    except (DesignTooLargeError, PaceUnreachableError):
        return None
    res = _plumb(part, family)
    cycles = pipeline_cycles(part)
    if cycles > target or _fits(res, budget):
        return None
    return Compiled(part, fr, res, cycles)


def _needs(hw: HwGraph, budget: Resources, family, target: int) -> Resources:
    """The resources of the least-hardware design at ``target``, FIFOs included."""
    part = hw.copy()
    fold_for(part, target)
    place_weights(part, budget, family)
    return _plumb(part, family)


def _meeting(compiled: Compiled) -> Compiled:
    """``compiled``, a design faster than asked, labelled as meeting the target."""
    return replace(compiled, fold=replace(compiled.fold, limited_by=Limit.TARGET, resource=None))


def _fastest(hw: HwGraph, budget: Resources, family, say, progress) -> list[tuple[HwGraph, Compiled]]:
    """The fastest design within ``budget``, partitioned if it does not fit fully folded:
    each piece's stages and its compiled design."""
    try:
        return [(hw, _finish(hw, budget, family, progress))]
    except DesignTooLargeError as exc:
        say(f"does not fit on chip ({exc}); partitioning")
    pieces = partition(hw, budget, family)
    say(f"{len(pieces)} partitions")
    return [(p, _finish(p, budget, family, progress)) for p in pieces]


def require_uram(board) -> None:
    """ValueError naming the boards that have URAM, unless ``board`` has some."""
    if not board.uram:
        from boards import BOARDS
        raise ValueError(f"--uram-weights: board {board.name!r} has no URAM; boards with URAM: "
                         + ", ".join(b.name for b in BOARDS.values() if b.uram))


class DdrWeights(str, enum.Enum):
    """Which layers read their weights from DDR every frame (``--ddr-weights``)."""

    AUTO = "auto"   # the low-reuse ones, as many as it takes to fit one bitstream, if any does
    FC = "fc"       # every fully connected layer
    OFF = "off"     # none: a design that does not fit is partitioned

    def __str__(self) -> str:
        return self.value


def require_ddr(board) -> None:
    """ValueError naming the boards that have DDR, unless ``board`` has some."""
    if not board.ddr_gbps:
        from boards import BOARDS
        raise ValueError(f"--ddr-weights: board {board.name!r} has no DDR; boards with DDR: "
                         + ", ".join(b.name for b in BOARDS.values() if b.ddr_gbps))


def stream_weights_from_ddr(hw: HwGraph, board, names: list[str] | None = None) -> list[str]:
    """Make stages ``names`` (default: every fully connected stage) read their weights from
    DDR, each with an equal share of the board's DDR bytes per cycle; returns their names.

    Raises
    ------
    ValueError
        If the board has no DDR.
    """
    require_ddr(board)
    if names is None:
        names = [st.name for st in hw.stages() if st.op is Op.FC]
    for name in names:
        st = hw.stage(name)
        st.weight_style = MemoryStyle.DDR
        st.ddr_bytes_per_cycle = board.ddr_bytes_per_cycle / len(names)
    return list(names)


#: Stages that read each weight at most this many times a frame are streamed automatically:
#: once, a fully connected layer (or a 1x1 conv on a 1x1 map). A 1x1 conv on a 7x7 map reads
#: its weights 49 times: streamed, ShuffleNet V1 on the ZCU104 ran at 11 fps in one bitstream
#: against 848 in four partitions, so such layers are left on chip.
LOW_REUSE_PIXELS = 1


def low_reuse_stages(hw: HwGraph) -> list[str]:
    """Dense stages that read each weight at most :data:`LOW_REUSE_PIXELS` times a frame
    (fully connected layers), fewest reads first, then most weights first: the ones worth
    streaming from DDR."""
    def reads(st: Stage) -> int:
        return st.out_shape.h * st.out_shape.w
    dense = [st for st in hw.stages()
             if st.op is Op.FC or (st.op is Op.CONV and not needs_window(st)
                                   and reads(st) <= LOW_REUSE_PIXELS)]
    return [st.name for st in sorted(dense, key=lambda st: (reads(st), -st.qparams.weight.size))]


def _stream_what_does_not_fit(hw: HwGraph, board, budget: Resources, family, say) -> None:
    """If ``hw`` does not fit on chip even fully folded, stream the weights of its low-reuse
    stages from DDR, one more at a time, until it does (then it runs in one bitstream);
    leave it as it was if even streaming all of them does not make it fit."""
    if not board.ddr_gbps or not _fits(_most_folded(hw, budget, family)[2], budget):
        return
    names = low_reuse_stages(hw)
    for n in range(1, len(names) + 1):
        trial = hw.copy()
        stream_weights_from_ddr(trial, board, names[:n])
        if not _fits(_most_folded(trial, budget, family)[2], budget):
            stream_weights_from_ddr(hw, board, names[:n])
            say(f"weights read from DDR every frame, to fit one bitstream: {', '.join(names[:n])}")
            return


def compile_model(qmodel, board, *, fps: float | None = None, batch: int | None = None,
                  progress=None, uram_weights: bool = False,
                  ddr_weights: DdrWeights = DdrWeights.AUTO) -> list[Compiled]:
    """Compile ``qmodel`` for ``board``; one :class:`Compiled` per partition (one if it fits).

    Parameters
    ----------
    qmodel : QuantizedModel
    board : Board
    fps : float, optional
        Frames per second to reach with the least hardware; by default as fast as the budget
        allows. Partitions run one after another, so their cycles per frame add up, and each
        partition's bitstream is loaded once per ``batch`` frames (default 1) where the board
        says how long that takes (:attr:`boards.Board.reconfiguration_seconds`): the
        partitions' compute gets what is left of the frame time.
    batch : int, optional
        Frames run through each partition between bitstream loads.
    progress : callable, optional
        Called with one line per step.
    uram_weights : bool
        Every weight memory that would take block RAM goes to URAM
        (:func:`hwgen.fold.place_weights`); the board must have URAM.
    ddr_weights : DdrWeights
        Which layers read their weights from DDR every frame (:func:`stream_weights_from_ddr`):
        by default those of low reuse a design needs to fit one bitstream
        (:func:`low_reuse_stages`); ``FC``: every fully connected one (the board must have
        DDR); ``OFF``: none.

    Raises
    ------
    ValueError
        If ``fps`` is not a positive finite number.
    PaceUnreachableError
        No design within the budget runs at ``fps``; the message gives the fastest (and, for
        partitions, what reconfiguration leaves).
    DesignTooLargeError
        A run of stages that cannot be cut apart (:class:`LayerTooLargeError`), or a partition
        with its FIFOs, does not fit even fully folded.
    """
    if fps is not None:
        _check_fps(fps)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"batch must be a positive int, not {batch!r}")
    say = progress or (lambda msg: None)
    if uram_weights:
        require_uram(board)
    budget, family = board.budget(), board.family
    hw = lower(qmodel)
    hw.weights_in_uram = uram_weights
    say(f"lowered to {len(hw.graph)} stages")
    if not isinstance(ddr_weights, DdrWeights):
        raise TypeError(f"ddr_weights must be a DdrWeights, not {ddr_weights!r}")
    if ddr_weights is DdrWeights.FC:
        names = stream_weights_from_ddr(hw, board)
        say(f"weights read from DDR every frame: {', '.join(names) or 'no layer'}")
    elif ddr_weights is DdrWeights.AUTO:
        _stream_what_does_not_fit(hw, board, budget, family, say)
    if fps is None:
        return [c for _, c in _fastest(hw, budget, family, say, progress)]
    reload = board.reconfiguration_seconds
    reload_cycles = 0.0 if reload is None else reload * board.clock_mhz * 1e6 / (batch or 1)
    ddr = partial(partition_ddr_cycles, abits=qmodel.config.abits, board=board)
    return _compile_for_pace(hw, budget, family, _Pace(float(board.clock_mhz), fps), say,
                             progress, reload_cycles, batch or 1, ddr)


def _compile_for_pace(hw: HwGraph, budget: Resources, family, pace: _Pace, say,
                      progress, reload_cycles: float, batch: int, ddr) -> list[Compiled]:
    """The design at ``pace`` with the least hardware (see :func:`compile_model`);
    ``reload_cycles`` is one partition's bitstream load per frame, in cycles; ``ddr`` gives
    partitions' DDR cycles (:func:`partition_ddr_cycles`)."""
    target, bottleneck = pace.cycles, fastest_folding(hw)
    if target >= bottleneck.cycles_per_frame:
        whole = _at_pace(hw, budget, family, target, progress)
        if whole is not None:
            return [whole]
    try:
        pieces = _fastest(hw, budget, family, say, progress)
    except FitError as exc:
        if target >= bottleneck.cycles_per_frame:
            raise   # the pace is not the problem: nothing fits
        raise PaceUnreachableError(
            f"{pace_message(pace.requested(), pace.figure, bottleneck, None, budget, '')}; "
            f"no design fits the budget at any pace ({exc})",
            target_cycles=target, fastest_cycles=None,
            fastest_folding_cycles=bottleneck.cycles_per_frame, needs=None) from exc
    waits = ddr([p for p, _ in pieces])
    compute = [c.cycles_per_frame for _, c in pieces]
    fastest = sum(max(c, d) for c, d in zip(compute, waits))
    if fastest <= target and len(pieces) > 1 and reload_cycles:
        loading = math.ceil(len(pieces) * reload_cycles)
        target -= loading
        if fastest > target:
            raise _reload_unreachable(pace, len(pieces), loading, fastest, batch)
    if sum(compute) <= target < fastest:
        waiting = ", ".join(str(k) for k, (c, d) in enumerate(zip(compute, waits)) if d > c)
        raise PaceUnreachableError(
            f"{pace.requested()} is out of reach: the partitions' fastest compute takes "
            f"{_cycles(sum(compute))} per frame, but moving activations through the board's "
            f"DDR makes partition {waiting} wait, {pace.figure(fastest)} in all",
            target_cycles=pace.cycles, fastest_cycles=fastest,
            fastest_folding_cycles=bottleneck.cycles_per_frame, needs=None)
    if fastest > target:
        raise _unreachable(hw, budget, family, pace, bottleneck, [c for _, c in pieces])
    if len(pieces) == 1:
        # The target's own folding is over budget, yet the fastest design meets it.
        return [_meeting(pieces[0][1])]
    shares = _shares(compute, waits, target)
    say(f"partition paces {', '.join(f'{t:,}' for t in shares)} cycles per frame")
    return [_at_pace(p, budget, family, t, progress) or _meeting(c)
            for (p, c), t in zip(pieces, shares)]


def _reload_unreachable(pace: _Pace, partitions: int, loading: int, fastest: int,
                        batch: int) -> PaceUnreachableError:
    """The error for a pace the partitions' compute could reach but not with their bitstream
    loads on top."""
    best = pace.clock_mhz * 1e6 / (loading + fastest)
    per = "frame" if batch == 1 else f"batch of {batch}"
    return PaceUnreachableError(
        f"{pace.requested()} is out of reach: the design runs in {partitions} partitions whose "
        f"bitstream loads take {_cycles(loading)} per frame (once per partition per {per}), "
        f"and the fastest partitions within the budget need {_cycles(fastest)} more, "
        f"{_rate(best)} fps in all; a larger --batch spreads the loads over more frames",
        target_cycles=pace.cycles, fastest_cycles=fastest + loading,
        fastest_folding_cycles=fastest, needs=None)


def _unreachable(hw: HwGraph, budget: Resources, family, pace: _Pace, bottleneck,
                 fastest: list[Compiled]) -> PaceUnreachableError:
    """The error for a pace faster than the fastest design within the budget, ``fastest``."""
    target = pace.cycles
    needs = (_needs(hw, budget, family, target) if target >= bottleneck.cycles_per_frame
             else None)
    total = sum(c.cycles_per_frame for c in fastest)
    if len(fastest) > 1:
        limits = [_limit(c, budget, short=True) for c in fastest]
        said = (f"each limited by {limits[0]}" if len(set(limits)) == 1 else
                f"limited by {', '.join(limits[:-1])} and {limits[-1]}")
        clause = (f"in {len(fastest)} partitions run one after another the fastest within the "
                  f"budget is {pace.figure(total)} = "
                  f"{' + '.join(f'{c.cycles_per_frame:,}' for c in fastest)}, {said}")
    elif needs is None and total == bottleneck.cycles_per_frame:
        clause = ""     # the fastest folding fits: the head names it
    else:
        clause = (f"within the budget the fastest is {pace.figure(total)}, "
                  f"{_limit(fastest[0], budget)}")
    return PaceUnreachableError(
        pace_message(pace.requested(), pace.figure, bottleneck, needs, budget, clause),
        target_cycles=target, fastest_cycles=total,
        fastest_folding_cycles=bottleneck.cycles_per_frame, needs=needs)


def _limit(compiled: Compiled, budget: Resources, *, short: bool = False) -> str:
    """What set ``compiled``'s pace: ``"limited by the budget's 187 DSPs"``, ``"set by stage
    'x' (...)"``; with ``short``, only the resource or the stage's name."""
    fr, slowest = compiled.fold, slowest_stage(compiled.hw)
    if compiled.cycles_per_frame > fr.cycles_per_frame or fr.limited_by is not Limit.BUDGET:
        # A width converter or FIFO the folding did not see, or a stage at its fastest.
        return f"stage {slowest.stage.name!r}" if short else f"set by {slowest}"
    if short:
        return f"the budget's {RESOURCE_NAMES[fr.resource]}"
    return limit_text(fr, compiled.hw, budget)


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
    keep = set(names)
    out.graph = ordered_subgraph(out.graph, names)
    if hw.input is not None and hw.input[0] in keep:
        out.input = hw.input
    else:
        (u, v, d), = [(u, v, d) for u, v, d in hw.graph.edges(data=True)
                      if u not in keep and v in keep]
        out.input = (v, d["dst_port"])
        src = hw.stage(u)
        out.input_shape = hw.stage(v).in_shapes[0]
        out.input_bits = src.bits
    leaving = [(u, d["src_port"]) for u, v, d in hw.graph.edges(data=True)
               if u in keep and v not in keep]
    out.output = leaving[0] if leaving else hw.output
    return out


def _run_resources(hw: HwGraph, names: list[str], budget: Resources, family) -> Resources:
    """What the run of stages ``names`` needs as a partition of its own, fully folded: its
    stages, and, if those fit, with its FIFOs (a squeeze-excite block's FIFO holds a whole
    feature map, so a run whose stages fit may not with them)."""
    stages = _min_resources(hw, names, family)
    if _fits(stages, budget):
        return stages
    return _most_folded(_segment(hw, names), budget, family)[2]


def splittable(stage: Stage) -> bool:
    """Whether ``stage`` can be split by output channels across partitions: a dense conv or
    FC (each output channel needs all of the input and its own weights only)."""
    return stage.op in (Op.CONV, Op.FC) and getattr(stage.spec, "groups", 1) == 1


def _sliced(stage: Stage, lo: int, hi: int) -> Stage:
    """``stage`` computing only its output channels ``lo .. hi - 1``."""
    q, r = stage.qparams, stage.qparams.requant
    params = QConv(weight=q.weight[lo:hi], bias=q.bias[lo:hi],
                   weight_scale=q.weight_scale[lo:hi],
                   requant=RequantSpec(r.multiplier[lo:hi], r.shift[lo:hi], r.lo, r.hi),
                   taps=q.taps, acc_bits=q.acc_bits, bias_clipped=q.bias_clipped)
    return replace(stage, name=f"{stage.name}/out{lo}-{hi - 1}",
                   out_shape=stage.out_shape._replace(c=hi - lo), qparams=params, cache={})


def _slice_segment(hw: HwGraph, name: str, lo: int, hi: int) -> HwGraph:
    """The one-stage run ``name`` as a partition computing its output channels ``lo .. hi-1``."""
    seg = _segment(hw, [name])
    stage = _sliced(seg.stage(name), lo, hi)
    seg.graph = nx.DiGraph()
    seg.add(stage)
    seg.input = (stage.name, seg.input[1])
    seg.output = (stage.name, "o")
    seg.channels = ChannelSlice(hw.stage(name).layer or name, lo, hi, hw.stage(name).out_shape.c)
    return seg


def _split(hw: HwGraph, name: str, budget: Resources, family) -> list[HwGraph] | None:
    """Stage ``name`` split by output channels into the fewest equal parts that each fit
    ``budget`` fully folded, or None if not even one channel per part does."""
    cout = hw.stage(name).out_shape.c
    for n in (d for d in range(2, cout + 1) if cout % d == 0):
        size = cout // n
        first = _slice_segment(hw, name, 0, size)
        if not _fits(_most_folded(first, budget, family)[2], budget):
            return [first] + [_slice_segment(hw, name, lo, lo + size)
                              for lo in range(size, cout, size)]
    return None


def partition(hw: HwGraph, budget: Resources, family) -> list[HwGraph]:
    """Cut ``hw`` into runs of stages, each fitting ``budget`` fully folded with its FIFOs, at
    points where exactly one stream crosses. A dense conv or FC too large on its own is split
    by output channels into partitions that each compute a share of them from the same input
    (:attr:`HwGraph.channels`; :func:`partition_sources` says what feeds each).

    Raises
    ------
    LayerTooLargeError
        A run of stages between two cuts does not fit even fully folded, and cannot be split.
    """
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
            if _fits(_run_resources(hw, order[start:k + 1], budget, family), budget):
                break
            best = k    # the longest run so far that fits
        if best is None:
            k = next(c for c in cuts if c >= start)
            names = order[start:k + 1]
            pieces = (_split(hw, names[0], budget, family)
                      if len(names) == 1 and splittable(hw.stage(names[0])) else None)
            if pieces is not None:
                parts += pieces
                start = k + 1
                continue
            res = _run_resources(hw, names, budget, family)
            over = _fits(res, budget)
            if _fits(_min_resources(hw, names, family), budget):
                worst = max(names, key=lambda n: getattr(_min_resources(hw, [n], family), over))
                worst = hw.stage(worst).layer or worst
            else:   # the stages fit; a FIFO between them does not (a squeeze-excite bypass)
                plumbed = _most_folded(_segment(hw, names), budget, family)[0]
                worst = max(plumbed.stages(),
                            key=lambda st: getattr(stage_resources(st, family), over)).name
            raise LayerTooLargeError(worst, names[0], names[-1], over, getattr(res, over),
                                     getattr(budget, over))
        parts.append(_segment(hw, order[start:best + 1]))
        start = best + 1
    return parts


def _groups(graphs: list[HwGraph]) -> list[list[int]]:
    """The partitions in groups that make one tensor: a whole layer's partition alone, the
    consecutive parts of a split layer together."""
    groups: list[list[int]] = []
    for k, g in enumerate(graphs):
        prev = graphs[k - 1].channels if k else None
        if g.channels is not None and prev is not None and prev.layer == g.channels.layer \
                and prev.hi == g.channels.lo:
            groups[-1].append(k)
        else:
            groups.append([k])
    return groups


def partition_sources(graphs: list[HwGraph]) -> list[list[int]]:
    """For each partition, the partitions whose outputs, concatenated along channels, are its
    input (``[]``: the network's input). The parts of a split layer share their input; the
    partition after them reads all their outputs."""
    sources, feeding = [], []
    for group in _groups(graphs):
        sources += [list(feeding)] * len(group)
        feeding = group
    return sources


def output_partitions(graphs: list[HwGraph]) -> list[int]:
    """The partitions whose outputs, concatenated along channels, are the network's output."""
    return _groups(graphs)[-1]


def _tensor_bytes(shape, abits: int) -> float:
    return shape.h * shape.w * shape.c * abits / 8


def partition_ddr_bytes(graphs: list[HwGraph], abits: int) -> list[float]:
    """Bytes each partition moves through DDR per frame: its input unless it is the
    network's, its output unless it is (part of) the network's; each part of a split layer
    reads all of its input. One partition moves none."""
    if len(graphs) == 1:
        return [0.0]
    sources, last = partition_sources(graphs), set(output_partitions(graphs))
    return [(_tensor_bytes(g.input_shape, abits) if sources[k] else 0.0)
            + (0.0 if k in last else _tensor_bytes(g.stage(g.output[0]).out_shape, abits))
            for k, g in enumerate(graphs)]


def partition_ddr_cycles(graphs: list[HwGraph], abits: int, board) -> list[int]:
    """Cycles each partition's DDR traffic (:func:`partition_ddr_bytes`) takes at the board's
    DDR bytes per cycle; a partition runs at the larger of that and its compute cycles."""
    per_cycle = board.ddr_bytes_per_cycle
    return [math.ceil(b / per_cycle) if per_cycle else 0
            for b in partition_ddr_bytes(graphs, abits)]


def _shares(fastest: list[int], ddr: list[int], target: int) -> list[int]:
    """Each partition's compute cycles when ``target`` is shared out: a partition that waits
    for DDR anyway (its DDR cycles at least its share) gets its DDR cycles, the others share
    the rest in proportion to their fastest."""
    waits = [d >= f for f, d in zip(fastest, ddr)]
    while True:
        left = target - sum(d for d, w in zip(ddr, waits) if w)
        free = sum(f for f, w in zip(fastest, waits) if not w)
        shares = [d if w else (f * left // free if free else f)
                  for f, d, w in zip(fastest, ddr, waits)]
        more = [w or s < d for s, d, w in zip(shares, ddr, waits)]
        if more == waits:
            return shares
        waits = more


def stage_latency(hw: HwGraph) -> int:
    """Estimated first-input-to-first-output cycles (:func:`hwgen.latency.pipeline_latency`)."""
    return pipeline_latency(hw)
