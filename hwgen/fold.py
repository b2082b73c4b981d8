"""Folding: choose every stage's lanes (PE, SIMD) for a pipeline pace, and the pace for a board.

The pipeline's cycles per frame is its slowest stage's. :func:`fold_for` gives every stage the
cheapest folding that keeps it at or under a target pace ``T`` (balancing the others to the
bottleneck, which is what makes the MAC efficiency high); :func:`fold` searches the smallest
``T`` whose design fits the board's budget, or, given a target pace, folds for it with the
least hardware. What set the pace is a :class:`Limit`; a design that does not fit even fully
folded raises :class:`DesignTooLargeError`, a target no folding within the budget reaches
:class:`PaceUnreachableError` (both :class:`FitError`).

:func:`stage_cycles` is the closed form of the PEs' cycle models (``cycles_per_frame`` of the
units :func:`hwgen.units.stage_units` builds) so the search need not build PEs for every
candidate; a test checks it equals the PE models on every stage of every zoo model.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from rtl_templates.axi4_reader import ReaderParams, ddr_cycles_per_frame
from rtl_templates.resources import RESOURCE_FIELDS, MemoryStyle, Resources

from .hwgraph import HwGraph, Op, Stage
from .units import needs_window, stage_resources, stage_units, window_lanes

__all__ = ["FitError", "DesignTooLargeError", "PaceUnreachableError", "Limit", "FoldResult",
           "Bottleneck", "RESOURCE_NAMES", "divisors", "stage_cycles", "fold_for", "fold",
           "fastest_folding", "slowest_stage", "fully_folded_cycles", "over_budget",
           "design_resources", "insert_width_converters", "place_weights"]


class Limit(str, enum.Enum):
    """What set a folding's pace; the values are what ``report.json`` says (``limited_by``)."""

    TARGET = "target"              # the requested pace was met
    BUDGET = "budget"              # a faster folding exceeds the budget
    FASTEST = "fastest folding"    # no folding is faster

    def __str__(self) -> str:
        return self.value


class FitError(ValueError):
    """The model cannot be built for the board as asked; the message says what and by how much."""


#: How messages name the resources.
RESOURCE_NAMES = {"dsp": "DSPs", "bram18": "BRAM18s", "lut": "LUTs", "ff": "FFs",
                  "uram": "URAMs"}


class DesignTooLargeError(FitError):
    """Even fully folded (the fewest lanes on every stage) the design exceeds the budget.

    The compiler cuts such a design into partitions run one after another.

    Attributes
    ----------
    resource : str
        The first resource over budget (a :class:`Resources` field name, ``"bram18"``).
    needed, budget : int
        How many of it the fully folded design needs, and how many the budget has.
    """

    def __init__(self, resource: str, needed: int, budget: int, *, what: str = "the design"):
        self.resource, self.needed, self.budget = resource, needed, budget
        super().__init__(f"even fully folded {what} needs {needed:,} {RESOURCE_NAMES[resource]}; "
                         f"the budget is {budget:,} (over by {needed - budget:,})")


class PaceUnreachableError(FitError):
    """No design within the budget runs at the requested pace.

    Attributes
    ----------
    target_cycles : int
        The requested pace, cycles per frame.
    fastest_cycles : int or None
        The fastest pace of a design within the budget (what folding without a target finds;
        summed over the partitions when there are several), or ``None`` when no design fits.
    fastest_folding_cycles : int
        The fastest pace of any folding, whatever its resources: its bottleneck stage's
        fastest folding.
    needs : Resources or None
        The resources of the least-hardware design at the requested pace, when a folding
        reaches it (``None`` when the pace is faster than any folding).
    """

    def __init__(self, message: str, *, target_cycles: int, fastest_cycles: int | None,
                 fastest_folding_cycles: int, needs: Resources | None):
        super().__init__(message)
        self.target_cycles = target_cycles
        self.fastest_cycles = fastest_cycles
        self.fastest_folding_cycles = fastest_folding_cycles
        self.needs = needs


#: DSPs of one output lane's requantization multiplier, for ranking foldings.
REQUANT_DSPS = 2


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _beats(pixels: int, channels: int, lanes: int) -> int:
    return pixels * (channels // lanes)


def stage_cycles(stage: Stage, pe: int, simd: int) -> int:
    """Cycles per frame of ``stage`` at folding ``(pe, simd)``: its slowest unit's."""
    op, out = stage.op, stage.out_shape
    ins = stage.in_shapes[0]
    in_px, out_px = ins.h * ins.w, out.h * out.w
    if op in (Op.CONV, Op.FC):
        k = stage.spec.kernel[0] if op is Op.CONV else 1
        taps = k * k * ins.c
        mvu = out_px * (out.c // pe) * (taps // simd)
        if stage.weight_style is MemoryStyle.DDR:
            mvu = max(mvu, ddr_bound(stage, pe, simd)[0])
        if needs_window(stage):
            lanes, kx_lanes = window_lanes(stage, simd)
            return max(mvu, _beats(in_px, ins.c, lanes),
                       out_px * k * (k // kx_lanes) * (ins.c // lanes))
        return mvu
    if op in (Op.DEPTHWISE, Op.MAXPOOL, Op.AVGPOOL):
        lanes = pe if op is Op.DEPTHWISE else simd
        k2 = stage.spec.kernel[0] ** 2
        return max(_beats(in_px, ins.c, lanes), out_px * k2 * (ins.c // lanes))
    if op is Op.CONCAT:
        return out_px * (out.c // simd)
    if op is Op.SPLIT:
        return _beats(in_px, ins.c, simd)
    if op is Op.WIDTH:
        return _beats(in_px, ins.c, min(simd, stage.simd_in))
    return _beats(in_px, ins.c, simd)


def ddr_bound(stage: Stage, pe: int, simd: int) -> tuple[int, int, float]:
    """A DDR-streamed stage's weight traffic at ``(pe, simd)``: the cycles per frame it takes
    (the bound on the stage's pace), its bytes per frame and the bytes per cycle it moves
    them at (:func:`rtl_templates.axi4_reader.ddr_cycles_per_frame`: a pass a pixel)."""
    out, ins = stage.out_shape, stage.in_shapes[0]
    taps = ins.c * (stage.spec.kernel[0] ** 2 if stage.op is Op.CONV else 1)
    region = ReaderParams(pe * simd * stage.wbits, (out.c // pe) * (taps // simd))
    pixels = out.h * out.w
    rate = min(stage.ddr_bytes_per_cycle, region.beat_bytes)
    return (ddr_cycles_per_frame(region, pixels, stage.ddr_bytes_per_cycle),
            pixels * region.region_bytes, rate)


def _lane_constraint(stage: Stage) -> int:
    """The number every lane count of a one-lane-parameter stage must divide."""
    if stage.op is Op.CONCAT:
        return math.gcd(*(s.c for s in stage.in_shapes))
    if stage.op is Op.SPLIT:
        return math.gcd(*stage.split_channels)
    return stage.in_shapes[0].c


def candidates(stage: Stage) -> list[tuple[int, int]]:
    """Valid ``(pe, simd)`` pairs, cheapest first (multipliers for compute stages, lanes for
    the rest)."""
    if stage.op in (Op.CONV, Op.FC):
        # SIMD divides the input channels (a window beat holds channels of one tap), or is all
        # of them times a divisor of the kernel's width (a beat of neighbouring taps).
        cin = stage.in_shapes[0].c
        simds = divisors(cin)
        if needs_window(stage):
            simds += [n * cin for n in divisors(stage.spec.kernel[0])[1:]
                      if n <= stage.in_shapes[0].w]
        pairs = [(p, s) for p in divisors(stage.out_shape.c) for s in simds]
        if stage.weight_style is MemoryStyle.DDR:     # a one-word region is constants
            taps = stage.in_shapes[0].c * (stage.spec.kernel[0] ** 2 if stage.op is Op.CONV else 1)
            pairs = [(p, s) for p, s in pairs if p * s < stage.out_shape.c * taps]
        # Each output lane also has a requantization multiplier (about two DSPs), so for the
        # same multiply-accumulates per cycle fewer, wider rows are cheaper.
        return sorted(pairs, key=lambda ps: (ps[0] * ps[1] + REQUANT_DSPS * ps[0], -ps[1]))
    if stage.op is Op.DEPTHWISE:
        return [(p, 1) for p in divisors(stage.in_shapes[0].c)]
    return [(1, s) for s in divisors(_lane_constraint(stage))]


def fold_for(hw: HwGraph, target: int) -> None:
    """Give every stage the cheapest folding that runs at ``target`` cycles per frame (or its
    fastest, if none does), preferring input lanes equal to the producer's output lanes so
    no width converter is needed, and avoiding input lanes whose width converter would be
    slower than ``target``."""
    for st in hw.stages():
        if st.op in (Op.WIDTH, Op.FIFO):
            continue
        src, _ = hw.producer(st.name, st.in_ports[0])
        want = hw.stage(src).out_lanes if src != "input" else None
        feeds = _feeds(hw, st)
        cands = candidates(st)
        ok = [c for c in cands if stage_cycles(st, *c) <= target]
        # A converter passes through gcd(a, b) lanes, so it can be slower than the stages at
        # both its ends (3 to 16 lanes goes through 1: EfficientNet-B0 at 224 ran at 451,584
        # cycles per frame folded for 313,600). Unless every folding needs such a converter.
        ok = [c for c in ok if _converter_cycles(feeds, _in_lanes(st, c)) <= target] or ok
        if not ok:
            best = _fastest_candidate(st)
        elif st.op.computes:
            def cost(c):
                return c[0] * c[1] + REQUANT_DSPS * c[0]
            same = [c for c in ok if cost(c) == cost(ok[0])]
            best = next((c for c in same if _in_lanes(st, c) == want), same[0])
        else:
            best = next((c for c in ok if c[1] == want), ok[0])
        st.pe, st.simd = best


def _feeds(hw: HwGraph, stage: Stage) -> list[tuple[int, object]]:
    """``(output lanes, shape)`` of each stage feeding ``stage`` (the accelerator input, whose
    lanes follow the stage, left out)."""
    feeds = []
    for port, shape in zip(stage.in_ports, stage.in_shapes):
        src, _ = hw.producer(stage.name, port)
        if src != "input":
            feeds.append((hw.stage(src).out_lanes, shape))
    return feeds


def _converter_cycles(feeds, lanes: int) -> int:
    """Cycles per frame of the width converters from ``feeds`` to ``lanes`` input lanes (0 if
    none): the stream goes through ``gcd(a, lanes)`` lanes (:func:`insert_width_converters`)."""
    return max((_beats(s.h * s.w, s.c, math.gcd(a, lanes)) for a, s in feeds if a != lanes),
               default=0)


def _fastest_candidate(stage: Stage) -> tuple[int, int]:
    """The fastest ``(pe, simd)`` of ``stage``, the fewest lanes among equally fast ones."""
    return min(candidates(stage), key=lambda c: (stage_cycles(stage, *c), c[0] * c[1]))


def _in_lanes(stage: Stage, c) -> int:
    if stage.op is Op.DEPTHWISE:
        return c[0]
    return window_lanes(stage, c[1])[0] if stage.op is Op.CONV else c[1]


def place_weights(hw: HwGraph, budget: Resources, family) -> Resources:
    """Place the matrix-vector weight memories; returns the design's resources.

    Every memory starts where its size puts it (block RAM or LUTs). With
    ``hw.weights_in_uram`` every one in block RAM moves to URAM while the URAM budget lasts.
    Then, while block RAM is over ``budget``, memories leave it: first for URAM (where the
    board has any; the fewest URAMs per block RAM freed first), then for LUTs while LUTs and
    FFs stay within budget (the most block RAMs freed per LUT spent first).
    """
    stages = [st for st in hw.stages() if st.op in (Op.CONV, Op.FC)
              and st.weight_style is not MemoryStyle.DDR]     # DDR is chosen before folding
    for st in stages:
        st.weight_style = MemoryStyle.AUTO
    total = design_resources(hw, family)
    in_block = []
    for st in stages:
        mvu = stage_units(st)[-1][1]
        p = mvu.params
        rom = mvu.weight_memory_resources(family)
        if rom.bram18 and p.groups * p.steps > 1:
            in_block.append((st, mvu, rom))

    def move(st: Stage, style: MemoryStyle, fits) -> bool:
        nonlocal total
        before = stage_resources(st, family)
        st.weight_style = style
        after = total - before + stage_resources(st, family)
        if not fits(after):
            st.weight_style = MemoryStyle.AUTO
            return False
        total = after
        return True

    uram_fits = lambda res: res.uram <= budget.uram   # noqa: E731
    if budget.uram:
        if hw.weights_in_uram:
            for st, _, _ in in_block:
                move(st, MemoryStyle.ULTRA, uram_fits)
        options = sorted((mvu.weight_memory_resources(family, MemoryStyle.ULTRA).uram
                          / rom.bram18, st.name) for st, mvu, rom in in_block
                         if st.weight_style is MemoryStyle.AUTO)
        for _, name in options:
            if total.bram18 <= budget.bram18:
                return total
            move(hw.stage(name), MemoryStyle.ULTRA, uram_fits)
    if total.bram18 <= budget.bram18:
        return total
    options = sorted((mvu.weight_memory_resources(family, MemoryStyle.LUT).lut / rom.bram18,
                      st.name) for st, mvu, rom in in_block
                     if st.weight_style is MemoryStyle.AUTO)
    for _, name in options:
        if total.bram18 <= budget.bram18:
            break
        move(hw.stage(name), MemoryStyle.LUT,
             lambda res: res.lut <= budget.lut and res.ff <= budget.ff)
    return total


def design_resources(hw: HwGraph, family) -> Resources:
    return sum((stage_resources(st, family) for st in hw.stages()), Resources())


def pipeline_cycles(hw: HwGraph) -> int:
    return max(stage_cycles(st, st.pe, st.simd) for st in hw.stages())


def _foldable(hw: HwGraph) -> list[Stage]:
    """The stages :func:`fold_for` folds (width converters and FIFOs follow their neighbours)."""
    return [st for st in hw.stages() if st.op not in (Op.WIDTH, Op.FIFO)]


def fully_folded_cycles(hw: HwGraph) -> int:
    """The pace at which every stage can take its cheapest folding."""
    return max(stage_cycles(st, *candidates(st)[0]) for st in _foldable(hw))


@dataclass(frozen=True)
class Bottleneck:
    """A stage at a folding that sets a pipeline's pace.

    Attributes
    ----------
    stage : Stage
    pe, simd : int
        The folding.
    cycles_per_frame : int
        The stage's cycles per frame at that folding.
    """

    stage: Stage
    pe: int
    simd: int
    cycles_per_frame: int

    def __str__(self) -> str:
        st = self.stage
        if st.op is Op.WIDTH:
            return f"stage {st.name!r} (width converter, {st.simd_in} to {st.simd} lanes)"
        if st.op is Op.FIFO:
            return f"stage {st.name!r} (FIFO, {st.simd} lanes)"
        fastest = stage_cycles(self.stage, *_fastest_candidate(self.stage))
        at = " at its fastest folding" if self.cycles_per_frame <= fastest else ""
        if st.weight_style is MemoryStyle.DDR:
            cycles, moved, rate = ddr_bound(st, self.pe, self.simd)
            if cycles >= self.cycles_per_frame:
                return (f"stage {st.name!r} ({st.op.value}, weights from DDR: {moved:,} bytes "
                        f"a frame at {rate:.1f} bytes a cycle, its share of the board's DDR "
                        f"bandwidth and its read port's; PE {self.pe} x SIMD {self.simd}{at})")
        return (f"stage {self.stage.name!r} ({self.stage.op.value}, PE {self.pe} x SIMD "
                f"{self.simd}{at})")


def fastest_folding(hw: HwGraph) -> Bottleneck:
    """The stage whose fastest folding is the slowest: no folding of ``hw`` runs faster."""
    worst = None
    for st in _foldable(hw):
        pe, simd = _fastest_candidate(st)
        cycles = stage_cycles(st, pe, simd)
        if worst is None or cycles > worst.cycles_per_frame:
            worst = Bottleneck(st, pe, simd, cycles)
    return worst


def slowest_stage(hw: HwGraph) -> Bottleneck:
    """The first stage (in stage order) that sets ``hw``'s pace at its current folding."""
    st = max(hw.stages(), key=lambda s: stage_cycles(s, s.pe, s.simd))
    return Bottleneck(st, st.pe, st.simd, stage_cycles(st, st.pe, st.simd))


@dataclass(frozen=True)
class FoldResult:
    """The pace a folding settled on and what set it.

    Attributes
    ----------
    cycles_per_frame : int
    resources : Resources
        Of the folded stages (width converters and FIFOs come later).
    limited_by : Limit
        ``Limit.TARGET`` only when a requested pace was met.
    resource : str or None
        With ``Limit.BUDGET``: the resource the next faster folding tried exceeds.
    """

    cycles_per_frame: int
    resources: Resources
    limited_by: Limit
    resource: str | None = None


def over_budget(res: Resources, budget: Resources) -> list[str]:
    """The resources of ``res`` over ``budget``, in the order DSP, BRAM18, LUT, FF, URAM."""
    return [name for name in RESOURCE_FIELDS
            if getattr(res, name) > getattr(budget, name)]


def _fits(res: Resources, budget: Resources) -> str | None:
    """The first resource over budget, or None."""
    over = over_budget(res, budget)
    return over[0] if over else None


def over_text(res: Resources, budget: Resources) -> str:
    """``"5,404 DSPs (the budget is 2,380, over by 3,024)"``, for every resource over."""
    return " and ".join(
        f"{getattr(res, r):,} {RESOURCE_NAMES[r]} (the budget is {getattr(budget, r):,}, over "
        f"by {getattr(res, r) - getattr(budget, r):,})" for r in over_budget(res, budget))


def limit_text(result: FoldResult, hw: HwGraph, budget: Resources) -> str:
    """What set the pace of ``hw``, folded as ``result`` says: ``"limited by the budget's 187
    DSPs"`` or ``"set by stage 'x' (...)"``."""
    if result.limited_by is Limit.BUDGET:
        return (f"limited by the budget's {getattr(budget, result.resource):,} "
                f"{RESOURCE_NAMES[result.resource]}")
    if result.limited_by is Limit.FASTEST:
        return f"set by {slowest_stage(hw)}"
    return "which meets the target"


def pace_message(requested: str, figure, bottleneck: Bottleneck, needs: Resources | None,
                 budget: Resources, fastest: str) -> str:
    """One line saying why the pace ``requested`` cannot be reached.

    Parameters
    ----------
    requested : str
        The pace asked for, as the user gave it (``"200,000 fps (1,250 cycles per frame at
        250 MHz)"``).
    figure : callable
        Formats a pace in cycles per frame (with its frame rate when the clock is known).
    bottleneck : Bottleneck
        :func:`fastest_folding` of the design.
    needs : Resources or None
        The resources of the design at the requested pace; ``None`` if no folding reaches it.
    budget : Resources
    fastest : str
        The fastest design within the budget and what limits it; empty when that is the
        fastest folding, already named.
    """
    if needs is None:
        head = (f"{requested} is out of reach: the fastest folding runs at "
                f"{figure(bottleneck.cycles_per_frame)}, set by {bottleneck}")
    else:
        head = f"reaching {requested} needs {over_text(needs, budget)}"
    return head + (f"; {fastest}" if fastest else "")


def _fold_and_place(hw: HwGraph, budget: Resources, family, target: int) -> Resources:
    fold_for(hw, target)
    return place_weights(hw, budget, family)


def _fold_fastest(hw: HwGraph, budget: Resources, family, progress) -> FoldResult:
    """Fold ``hw`` for the smallest pace whose design fits ``budget`` (a bisection between the
    fastest and the fully folded pace, to within 0.2%)."""
    slow = fully_folded_cycles(hw)
    res = _fold_and_place(hw, budget, family, slow)
    over = _fits(res, budget)
    if over:
        raise DesignTooLargeError(over, getattr(res, over), getattr(budget, over))
    fast = fastest_folding(hw).cycles_per_frame
    res = _fold_and_place(hw, budget, family, fast)
    over = _fits(res, budget)
    if over is None:
        return FoldResult(pipeline_cycles(hw), res, Limit.FASTEST)
    lo, hi = fast, slow            # hi fits, fast does not: find the smallest fitting pace
    while hi - lo > max(1, hi // 500):
        mid = (lo + hi) // 2
        if progress:
            progress(f"folding: try {mid} cycles/frame")
        miss = _fits(_fold_and_place(hw, budget, family, mid), budget)
        if miss:
            lo, over = mid + 1, miss
        else:
            hi = mid
    res = _fold_and_place(hw, budget, family, hi)
    cycles = pipeline_cycles(hw)
    if cycles <= fast:
        return FoldResult(cycles, res, Limit.FASTEST)
    return FoldResult(cycles, res, Limit.BUDGET, over)


def fold(hw: HwGraph, budget: Resources, family, *, target: int | None = None,
         progress=None) -> FoldResult:
    """Fold ``hw`` for the fastest pace whose design fits ``budget``, or, given ``target``,
    for that pace with the least hardware.

    Parameters
    ----------
    hw : HwGraph
        Folded in place (on an error, at some folding the search tried).
    budget : Resources
    family : DeviceFamily
    target : int, optional
        Cycles per frame to reach.
    progress : callable, optional
        Called with a line per step of the search.

    Returns
    -------
    FoldResult
        ``limited_by`` is ``Limit.TARGET`` only when the pace is at or under ``target``.

    Raises
    ------
    DesignTooLargeError
        Even fully folded the design exceeds ``budget``.
    PaceUnreachableError
        No folding within ``budget`` runs at ``target`` cycles per frame.
    """
    if target is None:
        return _fold_fastest(hw, budget, family, progress)
    res = _fold_and_place(hw, budget, family, target)
    cycles = pipeline_cycles(hw)
    if cycles <= target and _fits(res, budget) is None:
        return FoldResult(cycles, res, Limit.TARGET)
    needs = res if cycles <= target else None
    fastest = _fold_fastest(hw, budget, family, progress)
    if fastest.cycles_per_frame <= target:
        # Resources need not fall with the pace (fewer lanes reshape the weight ROMs): the
        # target's own folding is over budget, a faster one is not.
        return replace(fastest, limited_by=Limit.TARGET, resource=None)
    bottleneck = fastest_folding(hw)
    said = needs is None and fastest.limited_by is Limit.FASTEST
    clause = "" if said else (f"within the budget the fastest is "
                              f"{fastest.cycles_per_frame:,} cycles per frame, "
                              f"{limit_text(fastest, hw, budget)}")
    raise PaceUnreachableError(
        pace_message(f"{target:,} cycles per frame", lambda c: f"{c:,} cycles per frame",
                     bottleneck, needs, budget, clause),
        target_cycles=target, fastest_cycles=fastest.cycles_per_frame,
        fastest_folding_cycles=bottleneck.cycles_per_frame, needs=needs)


def insert_width_converters(hw: HwGraph) -> None:
    """A WidthConverter on every stream whose producer's lanes differ from its consumer's
    (two, through the gcd, when neither lane count divides the other)."""
    from .lower import _value_shape
    for src, sport, dst, dport in hw.edges():
        a, b = hw.stage(src).out_lanes, hw.stage(dst).in_lanes(dport)
        if a == b:
            continue
        shape, bits = _value_shape(hw, (src, sport))
        steps = [b] if max(a, b) % min(a, b) == 0 else [math.gcd(a, b), b]
        prev, lanes_in = src, a
        for k, lanes in enumerate(steps):
            conv = Stage(name=f"{dst}/{dport}_width{k if len(steps) > 1 else ''}", op=Op.WIDTH,
                         in_shapes=[shape], out_shape=shape, bits=bits, in_bits=[bits],
                         simd=lanes, simd_in=lanes_in)
            hw.insert_on_edge(prev, dst, conv)
            prev, lanes_in = conv.name, lanes
