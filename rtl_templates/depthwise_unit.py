"""DepthwiseUnit: per-channel KxK dot products (depthwise convolution).

Input: window beats of ``pe`` channels in :attr:`~rtl_templates.beats.WindowOrder.CHANNEL_MAJOR`
order, i.e. per output pixel, per channel group, the ``K*K`` taps back to back. Each cycle the
``pe`` lanes multiply one tap by their channel's weight and accumulate; after ``K*K`` taps the
group's accumulators are requantized (:class:`~rtl_templates.requant.Requantizer`) while the next
group accumulates, and one beat of ``pe`` channels leaves. No input is replayed, so the unit takes
one beat per cycle: ``cycles_per_frame = pixels * (C / pe) * K*K``.

Pipeline (one enable ``adv``: the output FIFO's ``w_rdy``, a function of its level register):

0. issue: tap and group counters, weight-ROM address;
1. input beat register, weight-ROM data (one ROM per lane, ``(C/pe) * K*K`` x ``wbits``);
2-4. products (``pe`` of them, :func:`~rtl_templates.multiplier.registered_product`);
5. accumulators (``bias + product`` on a group's first tap);
then the requantizer and a 2-entry output FIFO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo
from amaranth.lib.wiring import In, Out

from dataflows import numerics as nm
from dataflows import tensor_ops as ops

from .counter import wrapping_counter
from .multiplier import PRODUCT_STAGES, product_cost, registered_product
from .matrix_vector_unit import (CONTROL, OUTPUT_FIFO_DEPTH, check_int, check_requant,
                                 check_weights, pack_rom)
from .pe import ProcessingElement, beat_signature, control_pipeline
from .requant import (Requantizer, group_constants, group_constants_resources, requantizer_resources,
                      lane_constants)
from .rom import banked_rom_read, rom_resources
from .resources import DeviceFamily, Resources, lutram_luts

__all__ = ["DepthwiseParams", "DepthwiseUnit"]


@dataclass(frozen=True, eq=False)
class DepthwiseParams:
    """Shape and constants of a :class:`DepthwiseUnit`.

    Attributes
    ----------
    in_bits, out_bits, wbits : int
        Activation widths in and out, weight width (weights in the narrow range).
    weights : numpy.ndarray of int64
        ``(C, K*K)``, taps row-major (``QConv.weight.reshape(C, -1)`` of a depthwise conv).
    bias : numpy.ndarray of int64
        ``(C,)``, each within :func:`dataflows.numerics.bias_bound` for ``K*K`` taps.
    requant : dataflows.numerics.RequantSpec
        One entry or one per channel.
    acc_bits : int
        Accumulator width, at least :func:`dataflows.numerics.accumulator_bits` of ``K*K`` taps.
    kernel : int
        K; the window is K x K.
    pe : int
        Channels per beat and per cycle; divides C.
    pixels : int
        Output pixels per frame, for the cycle model.

    Raises
    ------
    ValueError, TypeError
        On any inconsistent value; the message quotes it.
    """

    in_bits: int
    out_bits: int
    weights: np.ndarray
    bias: np.ndarray
    requant: nm.RequantSpec
    wbits: int
    acc_bits: int
    kernel: int
    pe: int
    pixels: int = 1

    def __post_init__(self):
        nm.qrange(self.in_bits), nm.qrange(self.out_bits), nm.qrange(self.wbits)
        for name in ("acc_bits", "kernel", "pe", "pixels"):
            check_int(getattr(self, name), name)
        w = np.asarray(self.weights)
        taps = self.kernel ** 2
        if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] != taps:
            raise ValueError(f"weights must be a (C, {taps}) array for kernel {self.kernel}, "
                             f"not shape {w.shape}")
        channels = w.shape[0]
        if channels % self.pe:
            raise ValueError(f"pe must divide C={channels}, not {self.pe!r}")
        if np.asarray(self.bias).reshape(-1).shape != (channels,):
            raise ValueError(f"bias must have {channels} entries, not shape {np.shape(self.bias)}")
        w, b = check_weights(w, self.bias, self.wbits, self.in_bits, self.acc_bits, taps)
        check_requant(self.requant, channels, self.out_bits)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)

    @property
    def channels(self) -> int:
        return self.weights.shape[0]

    @property
    def taps(self) -> int:
        return self.kernel ** 2

    @property
    def groups(self) -> int:
        """Channel groups (output beats) per pixel, ``C / pe``."""
        return self.channels // self.pe


class DepthwiseUnit(ProcessingElement):
    """``pe`` channels of a depthwise KxK convolution, one tap per cycle.

    Parameters
    ----------
    params : DepthwiseParams

    Attributes
    ----------
    i : In(stream of ``pe`` x ``in_bits``)
        ``(C/pe) * K*K`` beats per output pixel, CHANNEL_MAJOR window order.
    o : Out(stream of ``pe`` x ``out_bits``)
        ``C / pe`` beats per output pixel, channels ascending.
    """

    #: Cycles from the transfer of a group's last tap to its output transfer: stages 1-4, the
    #: requantizer, the FIFO write and read.
    PIPELINE = 2 + PRODUCT_STAGES + Requantizer.LATENCY + 1

    def __init__(self, params: DepthwiseParams):
        if not isinstance(params, DepthwiseParams):
            raise TypeError(f"params must be DepthwiseParams, not {params!r}")
        self.params = params
        super().__init__({"i": In(beat_signature(params.in_bits, params.pe)),
                          "o": Out(beat_signature(params.out_bits, params.pe))})

    def weight_roms(self) -> list[list[int]]:
        """Per lane ``k``, address ``g * K*K + t`` holds the weight of channel ``g*pe + k``, tap ``t``."""
        p = self.params
        w = p.weights.reshape(p.groups, p.pe, p.taps)
        return [pack_rom(w[:, k].reshape(-1, 1), p.wbits) for k in range(p.pe)]

    def elaborate(self, platform):
        m = Module()
        p = self.params
        G, T, pe = p.groups, p.taps, p.pe

        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=p.out_bits * pe,
                                                          depth=OUTPUT_FIFO_DEPTH)
        adv = Signal()
        m.d.comb += [
            adv.eq(out_fifo.w_rdy),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
            self.i.ready.eq(adv),
        ]

        # Stage 0: every input transfer is one tap of one channel group.
        issue = Signal()
        m.d.comb += issue.eq(self.i.valid & self.i.ready)
        taps = wrapping_counter(m, "tap", T, issue)
        group = wrapping_counter(m, "group", G, issue & taps.last).value
        addr = wrapping_counter(m, "addr", G * T, issue).value
        weights = []
        for k, words in enumerate(self.weight_roms()):
            if G * T == 1:
                weights.append(Const(words[0], unsigned(p.wbits)))
                continue
            weights.append(banked_rom_read(m, f"weights_lane{k}", p.wbits, words, addr, adv))

        # Stage 1: input register, beside the weight ROM's output register. Stages 2-4: the
        # products (registered_product: the operand registers take a block RAM's slow output,
        # 5.6 ns clock-to-out for an ECP5 DP16KD). Stage 5: accumulators.
        x1 = Signal(data.ArrayLayout(signed(p.in_bits), pe))
        v1, first1, last1, g1 = Signal(), Signal(), Signal(), Signal.like(group)
        with m.If(adv):
            m.d.sync += [v1.eq(issue), first1.eq(taps.first), last1.eq(taps.last),
                         g1.eq(group), x1.eq(self.i.payload)]
        ctl = control_pipeline(m, (v1, first1, last1, g1), CONTROL, range(2, 2 + PRODUCT_STAGES),
                               adv)
        v_prod, first_prod, last_prod, g_prod = ctl[-1]
        v_acc, done, g_acc = Signal(), Signal(), Signal.like(group)
        with m.If(adv):
            m.d.sync += [v_acc.eq(v_prod), done.eq(v_prod & last_prod), g_acc.eq(g_prod)]
        m.submodules.requant = rq = Requantizer(p.requant, pe, G, p.acc_bits, p.out_bits)
        # The biases of group g_prod, read a stage earlier (the ROM's output register is the
        # product stage's).
        bias = group_constants(m, "biases", lane_constants(p.bias, pe, G), signed(p.acc_bits),
                               ctl[-2][3], adv)
        for k in range(pe):
            product = registered_product(m, f"product_lane{k}", x1[k], weights[k].as_signed(),
                                         adv)
            acc = Signal(signed(p.acc_bits), name=f"acc_lane{k}")
            with m.If(adv & v_prod):
                m.d.sync += acc.eq(Mux(first_prod, bias[k], acc) + product)
            m.d.comb += rq.acc[k].eq(acc)
        m.d.comb += [rq.en.eq(adv), rq.valid.eq(v_acc & done), rq.group.eq(g_acc),
                     out_fifo.w_en.eq(adv & rq.result_valid),
                     out_fifo.w_data.eq(rq.result.as_value())]
        return m

    # -- models -------------------------------------------------------------------------------
    def behaviour(self, beats: np.ndarray) -> np.ndarray:
        """Window beats ``(n * C/pe * K*K, pe)`` to output beats ``(n * C/pe, pe)``.

        The beats are regrouped into each pixel's ``(K*K, C)`` window and accumulated by the
        depthwise branch of :func:`dataflows.tensor_ops.conv2d` (a 1 x K*K kernel over that
        window, ``groups = C``), then bias, width check and
        :meth:`~dataflows.numerics.RequantSpec.apply`, as :func:`dataflows.golden.conv_int`.
        """
        p = self.params
        x = np.asarray(beats, dtype=np.int64).reshape(-1, p.groups, p.taps, p.pe)
        win = x.transpose(0, 2, 1, 3).reshape(-1, p.taps, p.channels).astype(np.float64)
        w = p.weights.reshape(p.channels, 1, p.taps, 1).astype(np.float64)
        acc = ops.exact_int(ops.conv2d(win, w, groups=p.channels)) + p.bias   # (n, 1, C)
        nm.check_fits(acc, p.acc_bits, "depthwise accumulator")
        return p.requant.apply(acc).reshape(-1, p.pe)

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.pixels * p.groups * p.taps

    def latency(self) -> int:
        """First input transfer to first output: group 0's ``K*K`` taps, then the pipeline."""
        return self.params.taps - 1 + self.PIPELINE

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Counts of what :meth:`elaborate` builds.

        DSP: ``pe`` products (0 when too narrow for a DSP) plus the requantizer's. Memory
        (:func:`memory_resources`): one weight ROM per lane, ``(C/pe) * K*K`` x ``wbits``; the
        output FIFO in LUT RAM; the biases, a ROM of ``groups`` x ``pe * acc_bits`` unless
        constant (:func:`~rtl_templates.requant.group_constants_resources`). LUT: accumulators
        ``pe * acc_bits``, counters and control ~30. FF: control ~30
        plus the accumulators ``pe * acc_bits`` and the products'
        (:func:`~rtl_templates.multiplier.product_cost`).
        Checked against yosys ``synth_xilinx`` in the ``synth`` tests.
        """
        p = self.params
        product = product_cost(p.in_bits, p.wbits, PRODUCT_STAGES, family)
        res = requantizer_resources(p.requant, p.pe, p.groups, p.acc_bits, p.out_bits, family)
        if p.groups * p.taps > 1:
            res = res + rom_resources(p.wbits, p.groups * p.taps, family).scaled(p.pe)
        res = res + group_constants_resources(lane_constants(p.bias, p.pe, p.groups),
                                              signed(p.acc_bits), family)
        lut = (p.pe * p.acc_bits
               + lutram_luts(p.pe * p.out_bits, OUTPUT_FIFO_DEPTH, family) + 30)
        lut += p.pe * product.lut
        ff = 30 + p.pe * (p.in_bits + p.acc_bits + sum(product.operand_ff) + product.ff)
        return res + Resources(dsp=p.pe * product.dsp, lut=lut, ff=ff)
