"""Requantizer: ``dataflows.numerics.requantize`` as a pipeline shared by the compute PEs.

``y = clamp(((acc * M >> (shift - 1)) + 1) >> 1, lo, hi)`` per lane, with ``M`` and ``shift``
per output channel. Lane ``k`` of a beat tagged with group ``g`` is channel ``g * lanes + k``
(the fold of docs/streams.md), so each lane looks its constants up by ``g`` only.

The pipeline has no handshake of its own: every register moves when ``en`` is high, and a
``valid`` bit travels alongside, so the owning PE stalls it together with the rest of its
datapath. Stages (:data:`Requantizer.LATENCY` = 4):

1. register ``acc``, ``M[ch]`` and ``shift[ch] - 1`` (the multiplier's input registers);
2. register ``acc * M`` (the product register: with 1 the DSP48's AREG/BREG/MREG-PREG);
3. register the product shifted right by ``shift - 1`` (a barrel shifter);
4. round (add one, halve), clamp, register.

The shift has a stage of its own because shifter, rounding adder and clamp comparators in one
cycle were the deepest path of every compute PE (six LUT levels into a 42-bit carry chain).
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Const, Elaboratable, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data

from dataflows import numerics as nm

from .resources import DeviceFamily, Resources, family, memory_resources
from .rom import rom_read

__all__ = ["Requantizer", "requantize_value", "round_clamp", "multiplier_dsps", "maps_to_dsp",
           "lane_constants", "group_constants", "group_constants_resources"]

#: Width of ``M`` as a signed DSP operand (``M < 2**15`` plus a sign bit).
M_BITS = nm.MULT_BITS + 1
#: yosys ``synth_xilinx`` keeps products narrower than this many bits in LUTs (DSP_Y_MINWIDTH).
DSP_MIN_PRODUCT_BITS = 9


def maps_to_dsp(a_bits: int, b_bits: int) -> bool:
    """Whether the tools put an ``a_bits`` x ``b_bits`` signed product in DSP slices."""
    return a_bits + b_bits >= DSP_MIN_PRODUCT_BITS and min(a_bits, b_bits) >= 2


def multiplier_dsps(a_bits: int, b_bits: int, fam: str | DeviceFamily = "7series") -> int:
    """DSP slices of one signed ``a_bits`` x ``b_bits`` multiplier (tiled when wider).

    Zero when the product is too narrow to be worth a DSP (:func:`maps_to_dsp`).
    """
    if not maps_to_dsp(a_bits, b_bits):
        return 0
    da, db = family(fam).dsp_widths
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    return min(math.ceil(a / da) * math.ceil(b / db), math.ceil(a / db) * math.ceil(b / da))


def round_clamp(shifted, lo: int, hi: int):
    """``clamp((shifted + 1) >> 1, lo, hi)``: the second half of :func:`requantize_value`,
    on a product already shifted right by ``shift - 1``."""
    rounded = (shifted + 1) >> 1
    return Mux(rounded < lo, lo, Mux(rounded > hi, hi, rounded))


def requantize_value(product, shamt, lo: int, hi: int):
    """``clamp(round_shift(product, shamt + 1), lo, hi)`` as logic (numerics.round_shift).

    ``shamt`` is ``shift - 1`` (an int or an unsigned Value): the rounding is
    ``((x >> (shift-1)) + 1) >> 1`` with arithmetic shifts, exactly as the numpy model. Every
    PE that requantizes uses this one expression.
    """
    return round_clamp(product >> shamt, lo, hi)


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

    LATENCY = 4

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
        v1, v2, v3 = Signal(), Signal(), Signal()
        with m.If(self.en):
            m.d.sync += [v1.eq(self.valid), v2.eq(v1), v3.eq(v2), self.result_valid.eq(v3)]
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
            with m.If(self.en):
                m.d.sync += [
                    acc1.eq(self.acc[k]),
                    prod2.eq(acc1 * m1[k]), sh2.eq(sh1[k]),
                    shifted3.eq(prod2 >> sh2),
                    self.result[k].eq(round_clamp(shifted3, s.lo, s.hi)),
                ]
        return m

    def dsps(self, fam: str | DeviceFamily = "7series") -> int:
        """DSP slices of the ``lanes`` requantization multipliers."""
        return self.lanes * multiplier_dsps(self.acc_bits, M_BITS, fam)

    def resources(self, fam: str | DeviceFamily = "7series") -> Resources:
        """Multipliers, plus per lane ~``prod_bits + 2 * out_bits + 8`` LUTs (barrel shifter
        after LUT6 packing, rounding adder, clamp comparators and muxes) and the result and
        shift registers; the accumulator, ``M`` and product registers are the DSP's A/B/P
        registers when the product maps to DSPs, flip-flops otherwise; the shifted product's
        register is flip-flops."""
        prod_bits = self.acc_bits + M_BITS
        lut = self.lanes * (prod_bits + 2 * self.out_bits + 8)
        ff = self.lanes * (self.out_bits + 12 + prod_bits) + 4
        if not maps_to_dsp(self.acc_bits, M_BITS):
            lut += self.lanes * self.acc_bits * M_BITS
            ff += self.lanes * (self.acc_bits + M_BITS + prod_bits)
        tables = (group_constants_resources(self.multipliers, signed(M_BITS), fam)
                  + group_constants_resources(self.shifts, unsigned(6), fam))
        return tables + Resources(dsp=self.dsps(fam), lut=lut, ff=ff)
