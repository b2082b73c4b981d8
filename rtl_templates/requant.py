"""Requantizer: ``dataflows.numerics.requantize`` as a pipeline shared by the compute PEs.

``y = clamp(((acc * M >> (shift - 1)) + 1) >> 1, lo, hi)`` per lane, with ``M`` and ``shift``
per output channel. Lane ``k`` of a beat tagged with group ``g`` is channel ``g * lanes + k``
(the fold of docs/streams.md), so each lane looks its constants up by ``g`` only.

The pipeline has no handshake of its own: every register moves when ``en`` is high, and a
``valid`` bit travels alongside, so the owning PE stalls it together with the rest of its
datapath. Stages (:data:`Requantizer.LATENCY` = 5):

1. register ``acc``, ``M[ch]`` and ``shift[ch] - 1`` (the multiplier's input registers);
2. register ``acc * M`` (the product register: with 1 the DSP48's AREG/BREG/MREG-PREG);
3. register the product shifted right by ``shift - 1`` (a barrel shifter);
4. on the shifted product's low ``out_bits + 2`` bits only, register the rounded value and
   its comparisons with the bounds, and whether the high bits are a plain sign extension
   (:func:`clamp_flags`);
5. select the rounded value or a bound (one LUT a bit) and register it.

The shift has a stage of its own because shifter, rounding adder and clamp comparators in one
cycle were the deepest path of every compute PE (six LUT levels into a 42-bit carry chain);
rounding and clamping are split the same way because a 40-bit rounding carry chain followed by
a 40-bit comparison and the bound multiplexer was seven levels on 7-series (docs/timing.md),
where the clock allows four.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Const, Elaboratable, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data

from dataflows import numerics as nm

from .resources import DeviceFamily, Resources, family, memory_resources
from .rom import rom_read

__all__ = ["Requantizer", "requantizer_resources", "requantizer_dsps", "clamp_flags",
           "select_clamped",
           "multiplier_dsps", "maps_to_dsp", "registers_in_dsp",
           "lane_constants", "group_constants", "group_constants_resources"]

#: Width of ``M`` as a signed DSP operand (``M < 2**15`` plus a sign bit).
M_BITS = nm.MULT_BITS + 1
#: yosys ``synth_xilinx`` keeps products narrower than this many bits in LUTs (DSP_Y_MINWIDTH).
DSP_MIN_PRODUCT_BITS = 9


def maps_to_dsp(a_bits: int, b_bits: int) -> bool:
    """Whether the tools put an ``a_bits`` x ``b_bits`` signed product in DSP slices."""
    return a_bits + b_bits >= DSP_MIN_PRODUCT_BITS and min(a_bits, b_bits) >= 2


def registers_in_dsp(a_bits: int, b_bits: int, fam: str | DeviceFamily = "7series") -> bool:
    """Whether an ``a_bits`` x ``b_bits`` product's input, product and accumulator registers
    are the DSP slice's own rather than flip-flops: the product maps to DSPs
    (:func:`maps_to_dsp`) on a family whose synthesis folds them
    (:attr:`~rtl_templates.resources.DeviceFamily.dsp_registers`)."""
    return maps_to_dsp(a_bits, b_bits) and family(fam).dsp_registers


def multiplier_dsps(a_bits: int, b_bits: int, fam: str | DeviceFamily = "7series") -> int:
    """DSP slices of one signed ``a_bits`` x ``b_bits`` multiplier (tiled when wider).

    Zero when the product is too narrow to be worth a DSP (:func:`maps_to_dsp`).
    """
    if not maps_to_dsp(a_bits, b_bits):
        return 0
    da, db = family(fam).dsp_widths
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    return min(math.ceil(a / da) * math.ceil(b / db), math.ceil(a / db) * math.ceil(b / da))


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

    LATENCY = 5

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
        prod_bits = self.acc_bits + M_BITS
        v1, v2, v3, v4 = Signal(), Signal(), Signal(), Signal()
        with m.If(self.en):
            m.d.sync += [v1.eq(self.valid), v2.eq(v1), v3.eq(v2), v4.eq(v3),
                         self.result_valid.eq(v4)]
        # Stage 1 registers: the ROM's output register holds M and shift - 1 of the group.
        m1 = group_constants(m, "multipliers", self.multipliers, signed(M_BITS),
                             self.group, self.en)
        sh1 = group_constants(m, "shifts", [[x - 1 for x in col] for col in self.shifts],
                              unsigned(6), self.group, self.en)
        for k in range(self.lanes):
            acc1 = Signal(signed(self.acc_bits), name=f"acc1_lane{k}")
            prod2 = Signal(signed(prod_bits), name=f"prod2_lane{k}")
            sh2 = Signal(unsigned(6), name=f"shamt2_lane{k}")
            shifted3 = Signal(signed(prod_bits), name=f"shifted3_lane{k}")
            flags4 = {"fits": Signal(name=f"fits4_lane{k}"),
                      "negative": Signal(name=f"negative4_lane{k}"),
                      "under": Signal(name=f"under4_lane{k}"),
                      "over": Signal(name=f"over4_lane{k}"),
                      "rounded": Signal(self.out_bits, name=f"rounded4_lane{k}")}
            terms = clamp_flags(shifted3, s.lo, s.hi, self.out_bits)
            with m.If(self.en):
                m.d.sync += [
                    acc1.eq(self.acc[k]),
                    prod2.eq(acc1 * m1[k]), sh2.eq(sh1[k]),
                    shifted3.eq(prod2 >> sh2),
                    *(flags4[name].eq(terms[name]) for name in flags4),
                    self.result[k].eq(select_clamped(flags4, s.lo, s.hi)),
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
    return lanes * multiplier_dsps(acc_bits, M_BITS, fam)


def requantizer_resources(spec: nm.RequantSpec, lanes: int, groups: int, acc_bits: int,
                          out_bits: int, fam: str | DeviceFamily = "7series") -> Resources:
    """What a :class:`Requantizer` with these parameters builds, without building it (the
    cost models of the PEs that own one ask this, many times per fold).

    Multipliers, plus per lane ~``prod_bits + 2 * out_bits + 8`` LUTs (barrel shifter after
    LUT6 packing, sign-extension check, narrow rounding adder and comparators, bound
    multiplexer) and the shift, stage-4 and result registers; the accumulator, ``M`` and
    product registers are the DSP's A/B/P registers where :func:`registers_in_dsp` says so,
    flip-flops otherwise; the shifted product's register is flip-flops; the constants' ROMs
    (:func:`group_constants_resources`)."""
    prod_bits = acc_bits + M_BITS
    lut = lanes * (prod_bits + 2 * out_bits + 8)
    ff = lanes * (2 * out_bits + 16 + prod_bits) + 5
    if not maps_to_dsp(acc_bits, M_BITS):
        lut += lanes * acc_bits * M_BITS
    if not registers_in_dsp(acc_bits, M_BITS, fam):
        ff += lanes * (acc_bits + M_BITS + prod_bits)
    tables = (group_constants_resources(lane_constants(spec.multiplier, lanes, groups),
                                        signed(M_BITS), fam)
              + group_constants_resources(lane_constants(spec.shift, lanes, groups),
                                          unsigned(6), fam))
    return tables + Resources(dsp=requantizer_dsps(lanes, acc_bits, fam), lut=lut, ff=ff)
