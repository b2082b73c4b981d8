"""Folding: choose every stage's lanes (PE, SIMD) for a pipeline pace, and the pace for a board.

The pipeline's cycles per frame is its slowest stage's. :func:`fold_for` gives every stage the
cheapest folding that keeps it at or under a target pace ``T`` (balancing the others to the
bottleneck, which is what makes the MAC efficiency high); :func:`fold` searches the smallest
``T`` whose design fits the board's budget, or, given a frame rate, folds for that rate with
the least hardware.

:func:`stage_cycles` is the closed form of the PEs' cycle models (``cycles_per_frame`` of the
units :func:`hwgen.units.stage_units` builds) so the search need not build PEs for every
candidate; a test checks it equals the PE models on every stage of every zoo model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rtl_templates.resources import MemoryStyle, Resources, memory_resources

from .hwgraph import HwGraph, Op, Stage
from .units import needs_window, stage_resources, stage_units, window_lanes

__all__ = ["FitError", "FoldResult", "divisors", "stage_cycles", "fold_for", "fold",
           "design_resources", "insert_width_converters", "place_weights"]


class FitError(ValueError):
    """The model cannot fit the board; the message says what and by how much."""


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
        return _beats(in_px, ins.c, min(simd, stage.extra["simd_in"]))
    return _beats(in_px, ins.c, simd)


def _lane_constraint(stage: Stage) -> int:
    """The number every lane count of a one-lane-parameter stage must divide."""
    if stage.op is Op.CONCAT:
        return math.gcd(*(s.c for s in stage.in_shapes))
    if stage.op is Op.SPLIT:
        return math.gcd(stage.extra["channels_0"], stage.extra["channels_1"])
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
        # Each output lane also has a requantization multiplier (about two DSPs), so for the
        # same multiply-accumulates per cycle fewer, wider rows are cheaper.
        return sorted(pairs, key=lambda ps: (ps[0] * ps[1] + REQUANT_DSPS * ps[0], -ps[1]))
    if stage.op is Op.DEPTHWISE:
        return [(p, 1) for p in divisors(stage.in_shapes[0].c)]
    return [(1, s) for s in divisors(_lane_constraint(stage))]


def fold_for(hw: HwGraph, target: int) -> None:
    """Give every stage the cheapest folding that runs at ``target`` cycles per frame (or its
    fastest, if none does), preferring input lanes equal to the producer's output lanes so
    no width converter is needed."""
    for st in hw.stages():
        if st.op in (Op.WIDTH, Op.FIFO):
            continue
        src, _ = hw.producer(st.name, st.in_ports[0])
        want = hw.stage(src).out_lanes if src != "input" else None
        cands = candidates(st)
        ok = [c for c in cands if stage_cycles(st, *c) <= target]
        if not ok:
            best = min(cands, key=lambda c: (stage_cycles(st, *c), c[0] * c[1]))
        elif st.op.computes:
            def cost(c):
                return c[0] * c[1] + REQUANT_DSPS * c[0]
            same = [c for c in ok if cost(c) == cost(ok[0])]
            best = next((c for c in same if _in_lanes(st, c) == want), same[0])
        else:
            best = next((c for c in ok if c[1] == want), ok[0])
        st.pe, st.simd = best


def _in_lanes(stage: Stage, c) -> int:
    if stage.op is Op.DEPTHWISE:
        return c[0]
    return window_lanes(stage, c[1])[0] if stage.op is Op.CONV else c[1]


def place_weights(hw: HwGraph, budget: Resources, family) -> Resources:
    """Move matrix-vector weight ROMs from block RAM into LUTs while block RAM is over
    ``budget`` and LUTs and FFs are not: the ROMs that use their block RAMs worst (most block
    RAMs freed per LUT spent) go first. Every ROM starts where its size puts it. Returns the
    design's resources."""
    stages = [st for st in hw.stages() if st.op in (Op.CONV, Op.FC)]
    for st in stages:
        st.extra.pop("weight_style", None)
    total = design_resources(hw, family)
    if total.bram18 <= budget.bram18:
        return total
    options = []
    for st in stages:
        mvu = stage_units(st)[-1][1]
        rom = mvu.weight_rom_resources(family)
        if rom.bram18:
            p = mvu.params
            luts = memory_resources(p.simd * p.wbits, p.groups * p.steps, family,
                                    MemoryStyle.LUT).lut
            options.append((luts / rom.bram18, st.name))
    for _, name in sorted(options):
        if total.bram18 <= budget.bram18:
            break
        st = hw.stage(name)
        before = stage_resources(st, family)
        st.extra["weight_style"] = MemoryStyle.LUT
        after = total - before + stage_resources(st, family)
        if after.lut > budget.lut or after.ff > budget.ff:
            del st.extra["weight_style"]
            continue
        total = after
    return total


def design_resources(hw: HwGraph, family) -> Resources:
    return sum((stage_resources(st, family) for st in hw.stages()), Resources())


def pipeline_cycles(hw: HwGraph) -> int:
    return max(stage_cycles(st, st.pe, st.simd) for st in hw.stages())


@dataclass(frozen=True)
class FoldResult:
    """The pace the search settled on and why."""

    cycles_per_frame: int
    resources: Resources
    limited_by: str


def _fits(res: Resources, budget: Resources) -> str | None:
    """The first resource over budget, or None."""
    for name in ("dsp", "bram18", "lut", "ff"):
        if getattr(res, name) > getattr(budget, name):
            return name
    return None


def fold(hw: HwGraph, budget: Resources, family, *, target: int | None = None,
         progress=None) -> FoldResult:
    """Fold ``hw`` for the smallest pace that fits ``budget`` (or for ``target`` cycles per
    frame when given). Raises :class:`FitError` when even the slowest folding does not fit."""
    slow = max(stage_cycles(st, *candidates(st)[0]) for st in hw.stages()
               if st.op not in (Op.WIDTH, Op.FIFO))
    fast = max(min(stage_cycles(st, *c) for c in candidates(st)) for st in hw.stages()
               if st.op not in (Op.WIDTH, Op.FIFO))

    def evaluate(t):
        fold_for(hw, t)
        return place_weights(hw, budget, family)

    if target is not None:
        res = evaluate(max(target, fast))
        over = _fits(res, budget)
        if over:
            raise FitError(f"reaching {target} cycles per frame needs {getattr(res, over)} "
                           f"{over}, the budget is {getattr(budget, over)}")
        return FoldResult(pipeline_cycles(hw), res, "target")
    res = evaluate(slow)
    over = _fits(res, budget)
    if over:
        raise FitError(f"even fully folded the design needs {getattr(res, over)} {over}; "
                       f"the budget is {getattr(budget, over)} "
                       f"(over by {getattr(res, over) - getattr(budget, over)})")
    lo, hi = fast, slow            # hi fits; find the smallest fitting pace
    while hi - lo > max(1, hi // 500):
        mid = (lo + hi) // 2
        if progress:
            progress(f"folding: try {mid} cycles/frame")
        if _fits(evaluate(mid), budget):
            lo = mid + 1
        else:
            hi = mid
    res = evaluate(hi)
    limited = "fastest folding" if pipeline_cycles(hw) <= fast else "budget"
    return FoldResult(pipeline_cycles(hw), res, limited)


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
                         simd=lanes, extra={"simd_in": lanes_in})
            hw.insert_on_edge(prev, dst, conv)
            prev, lanes_in = conv.name, lanes
