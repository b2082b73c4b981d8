"""Requantizer: ``dataflows.numerics.requantize`` as a pipeline shared by the compute PEs.

``y = clamp(((acc * M >> (shift - 1)) + 1) >> 1, lo, hi)`` per lane, with ``M`` and ``shift``
per output channel. Lane ``k`` of a beat tagged with group ``g`` is channel ``g * lanes + k``
(the fold of docs/streams.md), so each lane looks its constants up by ``g`` only.

The pipeline has no handshake of its own: every register moves when ``en`` is high, and a
``valid`` bit travels alongside, so the owning PE stalls it together with the rest of its
datapath. Stages (:data:`Requantizer.LATENCY` = 8):

1. register ``acc``, and look ``M[ch]`` up (a registered ROM read);
2-5. ``acc * M``, a :func:`~rtl_templates.multiplier.registered_product` of
   :data:`~rtl_templates.multiplier.WIDE_PRODUCT_STAGES` (the accumulator is wider than one
   ECP5 multiplier: its pieces' sum takes the fourth stage); ``shift[ch] - 1`` is looked up
   with the group delayed, so that it arrives beside the product;
6. register the product shifted right by ``shift - 1`` (a barrel shifter);
7. on the shifted product's low ``out_bits + 2`` bits only, register the rounded value and
   its comparisons with the bounds, and whether the high bits are a plain sign extension
   (:func:`clamp_flags`);
8. select the rounded value or a bound (one LUT a bit) and register it.

The shift has a stage of its own because shifter, rounding adder and clamp comparators in one
cycle were the deepest path of every compute PE (six LUT levels into a 42-bit carry chain);
rounding and clamping are split the same way because a 40-bit rounding carry chain followed by
a 40-bit comparison and the bound multiplexer was seven levels on 7-series (docs/timing.md),
where the clock allows four.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Elaboratable, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data

from dataflows import numerics as nm

from .multiplier import WIDE_PRODUCT_STAGES, product_cost, registered_product
from .pe import control_pipeline
from .resources import DeviceFamily, Resources, memory_resources
from .rom import rom_read

__all__ = ["Requantizer", "requantizer_resources", "requantizer_dsps", "clamp_flags",
           "select_clamped", "lane_constants", "group_constants", "group_constants_resources"]

#: Width of ``M`` as a signed DSP operand (``M < 2**15`` plus a sign bit).
M_BITS = nm.MULT_BITS + 1
def clamp_flags(shifted, lo: int, hi: int, out_bits: int) -> dict:
    """The terms of ``clamp((shifted + 1) >> 1, lo, hi)`` from narrow logic, for a register
    stage (``shifted`` is the product already shifted right by ``shift - 1``).

    ``(shifted + 1) >> 1 < lo`` exactly when ``shifted < 2*lo - 1``, and ``> hi`` exactly
    when ``shifted > 2*hi``; both constants fit ``out_bits + 2`` signed bits. So a value whose
    bits above those are a sign extension of them is compared, and rounded, on its low
    ``out_bits + 2`` bits; any other value lies beyond both constants, below ``lo`` when
    negative and above ``hi`` otherwise. Returns the Values ``fits``, ``negative``, ``under``,
    ``over`` and ``rounded`` (``out_bits`` wide, valid when none of the others applies);
    :func:`select_clamped` finishes the job.
    """
    n = out_bits + 2
    width = len(shifted)
    if width <= n:
        low, fits = shifted.as_signed(), Const(1)
    else:
        high = shifted[n - 1:]
        low, fits = shifted[:n].as_signed(), high.all() | ~high.any()
    return {"fits": fits, "negative": shifted[-1], "under": low < 2 * lo - 1,
            "over": low > 2 * hi, "rounded": ((low + 1) >> 1)[:out_bits]}


def select_clamped(flags: dict, lo: int, hi: int):
    """``clamp((shifted + 1) >> 1, lo, hi)`` from registered :func:`clamp_flags`: a function
    of five bits per bit."""
    return Mux(~flags["fits"], Mux(flags["negative"], lo, hi),
               Mux(flags["under"], lo, Mux(flags["over"], hi, flags["rounded"].as_signed())))


def lane_constants(values, lanes: int, groups: int) -> list[list[int]]:
    """Per lane, the ``groups`` constants of channels ``g * lanes + lane``.

    ``values`` holds one entry per channel, or a single entry shared by all of them.
    """
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if len(v) == 1:
        v = np.repeat(v, lanes * groups)
    if len(v) != lanes * groups:
        raise ValueError(f"need 1 or {lanes * groups} per-channel values, not {len(v)}")
    table = v.reshape(groups, lanes)
    return [[int(x) for x in table[:, k]] for k in range(lanes)]


def group_constants(m: Module, name: str, columns: list[list[int]], shape, addr, en) -> list:
    """Per column ``k``, ``columns[k][g]`` for the group ``g`` that ``addr`` held at the last
    clock edge with ``en`` high: a registered lookup, like a register loaded with
    ``table[addr]`` when ``en``.

    All columns share one ROM (word ``g`` packs every column's entry ``g``; see
    :func:`rtl_templates.rom.rom_read`), so a channel group's biases or requantization constants
    cost one ROM read rather than a multiplexer per bit, which in a large layer meant tens of
    thousands of netlist bits to elaborate and a case statement for Verilator to evaluate every
    cycle. Columns that are constant over the groups give plain constants and no ROM.
    """
    shape = Shape.cast(shape)
    if all(len(set(column)) == 1 for column in columns):
        return [Const(column[0], shape) for column in columns]
    width, mask = shape.width, (1 << shape.width) - 1
    words = [sum((int(column[g]) & mask) << (k * width) for k, column in enumerate(columns))
             for g in range(len(columns[0]))]
    packed = rom_read(m, name, width * len(columns), words, addr, en)
    fields = [packed[k * width:(k + 1) * width] for k in range(len(columns))]
    return [f.as_signed() if shape.signed else f for f in fields]


def group_constants_resources(columns: list[list[int]], shape,
                              fam: str | DeviceFamily = "7series") -> Resources:
    """What :func:`group_constants` builds: nothing for constants, else the ROM."""
    if all(len(set(column)) == 1 for column in columns):
        return Resources()
    width = Shape.cast(shape).width * len(columns)
    rom = memory_resources(width, len(columns[0]), fam)
    return rom + Resources(ff=0 if rom.bram18 else width)   # a LUT ROM's output register


class Requantizer(Elaboratable):
    """Pipelined ``clamp(round_shift(acc * M, shift), lo, hi)`` on ``lanes`` accumulators.

    Parameters
    ----------
    spec : dataflows.numerics.RequantSpec
        One entry, or one per channel (``lanes * groups`` of them).
    lanes, groups : int
        Lanes per beat and channel groups (channel ``g * lanes + k``).
    acc_bits, out_bits : int
        Signed widths of the accumulators and of the results.

    Attributes
    ----------
    en : Signal, in
        Clock enable of every stage.
    acc : Signal(ArrayLayout(signed(acc_bits), lanes)), in
    group : Signal(range(groups)), in
    valid : Signal, in
        Tags ``acc`` as a result to requantize.
    result : Signal(ArrayLayout(signed(out_bits), lanes)), out
    result_valid : Signal, out
        ``valid`` delayed by :data:`LATENCY` enabled cycles.
    """

    LATENCY = 1 + WIDE_PRODUCT_STAGES + 3

    def __init__(self, spec: nm.RequantSpec, lanes: int, groups: int, acc_bits: int,
                 out_bits: int):
        if not isinstance(spec, nm.RequantSpec):
            raise TypeError(f"spec must be a RequantSpec, not {spec!r}")
        lo, hi = nm.qrange(out_bits)
        if spec.lo < lo or spec.hi > hi:
            raise ValueError(f"bounds [{spec.lo}, {spec.hi}] do not fit {out_bits}-bit outputs")
        self.spec, self.lanes, self.groups = spec, lanes, groups
        self.acc_bits, self.out_bits = acc_bits, out_bits
        self.multipliers = lane_constants(spec.multiplier, lanes, groups)
        self.shifts = lane_constants(spec.shift, lanes, groups)
        self.en = Signal()
        self.acc = Signal(data.ArrayLayout(signed(acc_bits), lanes))
        self.group = Signal(range(max(groups, 2)))
        self.valid = Signal()
        self.result = Signal(data.ArrayLayout(signed(out_bits), lanes))
        self.result_valid = Signal()

    def elaborate(self, platform):
        m = Module()
        s = self.spec
        valid = [self.valid] + [Signal(name=f"v{t}") for t in range(1, self.LATENCY)]
        with m.If(self.en):
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
            m.d.sync += self.result_valid.eq(valid[-1])
        # Stage 1 registers: the ROM's output register holds M of the group. The shift is
        # looked up with the group delayed, so that it arrives beside the product.
        m1 = group_constants(m, "multipliers", self.multipliers, signed(M_BITS),
                             self.group, self.en)
        product_stage = 1 + WIDE_PRODUCT_STAGES
        (group,) = control_pipeline(m, (self.group,), ("group",), range(1, product_stage),
                                    self.en)[-1]
        shifts = group_constants(m, "shifts", [[x - 1 for x in col] for col in self.shifts],
                                 unsigned(6), group, self.en)
        for k in range(self.lanes):
            acc1 = Signal(signed(self.acc_bits), name=f"acc1_lane{k}")
            with m.If(self.en):
                m.d.sync += acc1.eq(self.acc[k])
            prod = registered_product(m, f"product_lane{k}", acc1, m1[k], self.en,
                                      WIDE_PRODUCT_STAGES)
            shamt = shifts[k]
            shifted = Signal.like(prod, name=f"shifted{product_stage + 1}_lane{k}")
            flags = {name: Signal(self.out_bits if name == "rounded" else 1,
                                  name=f"{name}{product_stage + 2}_lane{k}")
                     for name in ("fits", "negative", "under", "over", "rounded")}
            terms = clamp_flags(shifted, s.lo, s.hi, self.out_bits)
            with m.If(self.en):
                m.d.sync += [
                    shifted.eq(prod >> shamt),
                    *(flags[name].eq(terms[name]) for name in flags),
                    self.result[k].eq(select_clamped(flags, s.lo, s.hi)),
                ]
        return m

    def dsps(self, fam: str | DeviceFamily = "7series") -> int:
        """DSP slices of the ``lanes`` requantization multipliers."""
        return requantizer_dsps(self.lanes, self.acc_bits, fam)

    def resources(self, fam: str | DeviceFamily = "7series") -> Resources:
        """:func:`requantizer_resources` of this requantizer's parameters."""
        return requantizer_resources(self.spec, self.lanes, self.groups, self.acc_bits,
                                     self.out_bits, fam)


def requantizer_dsps(lanes: int, acc_bits: int, fam: str | DeviceFamily = "7series") -> int:
    """DSP slices of a :class:`Requantizer`'s ``lanes`` multipliers (``acc_bits`` x ``M``)."""
    return lanes * product_cost(acc_bits, M_BITS, WIDE_PRODUCT_STAGES, fam).dsp


def requantizer_resources(spec: nm.RequantSpec, lanes: int, groups: int, acc_bits: int,
                          out_bits: int, fam: str | DeviceFamily = "7series") -> Resources:
    """What a :class:`Requantizer` with these parameters builds, without building it (the
    cost models of the PEs that own one ask this, many times per fold).

    Per lane: the product (:func:`~rtl_templates.multiplier.product_cost`); ~``prod_bits +
    2 * out_bits + 8`` LUTs (barrel shifter after LUT6 packing, sign-extension check, narrow
    rounding adder and comparators, bound multiplexer); the accumulator register, the shifted
    product's, stage-7 and result registers. Shared: the valid bits' and the group's delay
    lines, the constants' ROMs (:func:`group_constants_resources`)."""
    prod_bits = acc_bits + M_BITS
    product = product_cost(acc_bits, M_BITS, WIDE_PRODUCT_STAGES, fam)
    lut = lanes * (prod_bits + 2 * out_bits + 8 + product.lut)
    ff = (lanes * (acc_bits + prod_bits + out_bits + 4 + out_bits + sum(product.operand_ff)
                   + product.ff)
          + Requantizer.LATENCY + WIDE_PRODUCT_STAGES * max(1, (groups - 1).bit_length()))
    tables = (group_constants_resources(lane_constants(spec.multiplier, lanes, groups),
                                        signed(M_BITS), fam)
              + group_constants_resources(lane_constants(spec.shift, lanes, groups),
                                          unsigned(6), fam))
    return tables + Resources(dsp=requantizer_dsps(lanes, acc_bits, fam), lut=lut, ff=ff)
