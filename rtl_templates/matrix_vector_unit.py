"""MatrixVectorUnit: KxK convolutions, 1x1 convolutions and fully connected layers (FINN MVAU).

For each output pixel the unit reads ``taps / simd`` input beats (a window in
:attr:`~rtl_templates.beats.WindowOrder.TAP_MAJOR` order, or a pixel for a 1x1 conv / FC), and
produces ``cout / pe`` output beats of ``pe`` channels. Per cycle it does ``pe x simd``
multiply-accumulates: output-channel group 0 consumes the input stream and stores each beat in
an input buffer, groups ``1 .. cout/pe - 1`` replay the buffer (the neuron fold). A group's
accumulator then gets requantized (:class:`~rtl_templates.requant.Requantizer`) while the next
group accumulates, so the unit is busy every cycle.

Pipeline (every register moves on one enable ``adv``, the output FIFO's ``w_rdy``, which is a
function of the FIFO level register only, so ``o.ready`` never reaches ``i.ready`` through logic):

0. issue: step counters, input transfer, buffer write, weight-ROM and buffer read addresses;
1. input beat register / buffer read data, weight-ROM data;
2-4. products (``pe * simd`` of them, :func:`~rtl_templates.multiplier.registered_product`:
   operand registers, the DSPs' input and product registers);
5. adder tree over the ``simd`` products of each PE row, a register after each of its
   ``ceil(log2(simd))`` levels (:func:`adder_tree`);
6. accumulator (loaded with ``bias + sum`` on a group's first step);
then the requantizer's stages and a 2-entry output FIFO.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import In, Out

from dataflows import numerics as nm
from dataflows import tensor_ops as ops

from .adder_tree import adder_tree, adder_tree_register_bits, adder_tree_stages
from .counter import wrapping_counter
from .multiplier import PRODUCT_STAGES, product_cost, registered_product
from .pe import ProcessingElement, beat_signature, control_pipeline
from .requant import (Requantizer, group_constants, group_constants_resources, requantizer_resources,
                      lane_constants)
from .rom import banked_rom_read, rom_resources
from .axi4_reader import (AXI_ADDR_BITS, Axi4Reader, ReaderParams, axi4_read_signature,
                          ddr_cycles_per_frame)
from .weight_load import load_signature, loaded_memory, loaded_memory_resources
from .resources import (BRAM_THRESHOLD_BITS, DeviceFamily, MemoryStyle, Resources,
                        lutram_luts, memory_resources)

#: The control values that travel beside the datapath, as named in the RTL.
CONTROL = ("v", "first", "last", "g")

__all__ = ["MatrixVectorParams", "MatrixVectorUnit", "check_int", "pack_rom", "memory_attrs",
           "OUTPUT_FIFO_DEPTH"]

#: Output FIFO depth: 2 lets the pipeline push every cycle while the FIFO drains every cycle.
OUTPUT_FIFO_DEPTH = 2


def check_int(value, name: str, low: int = 1) -> int:
    """``value`` as an int ``>= low``; ValueError quoting it otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int of at least {low}, not {value!r}")
    return int(value)


def check_weights(weights, bias, wbits: int, in_bits: int, acc_bits: int, taps: int):
    """Validate quantized weights and biases; return them as read-only int64 arrays."""
    w = np.array(weights, dtype=np.int64)
    b = np.array(bias, dtype=np.int64).reshape(-1)
    wlo, whi = nm.qrange(wbits, narrow=True)
    if w.size and (w.min() < wlo or w.max() > whi):
        bad = w[(w < wlo) | (w > whi)].flat[0]
        raise ValueError(f"weight {int(bad)!r} is outside the narrow {wbits}-bit range [{wlo}, {whi}]")
    need = nm.accumulator_bits(in_bits, wbits, taps)
    if acc_bits < need:
        raise ValueError(f"acc_bits must be at least {need} for {taps} taps, not {acc_bits!r}")
    bound = nm.bias_bound(in_bits, wbits, taps)
    if b.size and np.abs(b).max() > bound:
        raise ValueError(f"bias {int(b[np.abs(b).argmax()])!r} exceeds the bound {bound}")
    w.flags.writeable = b.flags.writeable = False
    return w, b


def check_requant(requant, channels: int, out_bits: int) -> None:
    if not isinstance(requant, nm.RequantSpec):
        raise TypeError(f"requant must be a RequantSpec, not {requant!r}")
    if len(requant) not in (1, channels):
        raise ValueError(f"requant needs 1 or {channels} entries, not {len(requant)}")
    lo, hi = nm.qrange(out_bits)
    if requant.lo < lo or requant.hi > hi:
        raise ValueError(f"requant bounds [{requant.lo}, {requant.hi}] exceed the "
                         f"{out_bits}-bit range [{lo}, {hi}]")


def memory_attrs(width: int, depth: int, rom: bool) -> dict:
    """Synthesis attributes that put a memory where :func:`memory_resources` counts it.

    yosys keeps every ROM in logic unless told ``rom_style = "block"`` (Vivado would pick a
    block RAM for a large one), so a memory at or above the model's threshold asks for a block
    RAM; below it the tools' default (logic or LUT RAM) is what the model counts.
    """
    if width * depth < BRAM_THRESHOLD_BITS:
        return {}
    return {("rom_style" if rom else "ram_style"): "block"}


def pack_rom(rows: np.ndarray, bits: int) -> list[int]:
    """Pack an (n, lanes) int array into n words, lane 0 in the least significant bits."""
    mask = (1 << bits) - 1
    return [sum((int(v) & mask) << (k * bits) for k, v in enumerate(row)) for row in rows]


@dataclass(frozen=True, eq=False)
class MatrixVectorParams:
    """Shape and constants of a :class:`MatrixVectorUnit`.

    Attributes
    ----------
    in_bits, out_bits, wbits : int
        Activation widths in and out, weight width (weights in the narrow range).
    weights : numpy.ndarray of int64
        ``(cout, taps)``, ``taps = K*K*Cin`` in OHWI order (``QConv.weight.reshape(cout, -1)``).
    bias : numpy.ndarray of int64
        ``(cout,)``, each within :func:`dataflows.numerics.bias_bound`.
    requant : dataflows.numerics.RequantSpec
        One entry or one per output channel.
    acc_bits : int
        Accumulator width, at least :func:`dataflows.numerics.accumulator_bits`.
    pe, simd : int
        Output channels and taps per cycle; ``pe`` divides ``cout`` and ``simd`` divides
        ``taps`` (as in FINN: the input stream carries ``simd`` taps per beat, so for a KxK
        conv ``simd`` must also divide ``Cin`` for the window stream to exist).
    pixels : int
        Output pixels per frame (1 for a fully connected layer), for the cycle model.
    weight_style : MemoryStyle
        Where the weight ROMs go: by size (``AUTO``), or forced into block RAM or LUTs (the
        compiler moves poorly packed ROMs into LUTs when block RAM runs out), or ``ULTRA``:
        one memory of every PE row's words side by side in URAM, written through the unit's
        ``load`` port (:mod:`rtl_templates.weight_load`), or ``DDR``: the same words read from
        off-chip memory through the unit's ``ddr`` port, every pixel
        (:mod:`rtl_templates.axi4_reader`).
    ddr_bytes_per_cycle : float
        With ``DDR``: the memory bandwidth the unit may use, bytes per cycle (its cycle model's
        bound; the port itself carries at most one beat a cycle).

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
    pe: int
    simd: int
    pixels: int = 1
    weight_style: MemoryStyle = MemoryStyle.AUTO
    ddr_bytes_per_cycle: float = 0.0

    def __post_init__(self):
        nm.qrange(self.in_bits), nm.qrange(self.out_bits), nm.qrange(self.wbits)
        if not isinstance(self.weight_style, MemoryStyle):
            raise TypeError(f"weight_style must be a MemoryStyle, not {self.weight_style!r}")
        for name in ("acc_bits", "pe", "simd", "pixels"):
            check_int(getattr(self, name), name)
        w = np.asarray(self.weights)
        if w.ndim != 2 or w.size == 0:
            raise ValueError(f"weights must be a non-empty (cout, taps) array, not shape {w.shape}")
        cout, taps = w.shape
        if cout % self.pe:
            raise ValueError(f"pe must divide cout={cout}, not {self.pe!r}")
        if taps % self.simd:
            raise ValueError(f"simd must divide taps={taps}, not {self.simd!r}")
        if np.asarray(self.bias).reshape(-1).shape != (cout,):
            raise ValueError(f"bias must have {cout} entries, not shape {np.shape(self.bias)}")
        w, b = check_weights(w, self.bias, self.wbits, self.in_bits, self.acc_bits, taps)
        check_requant(self.requant, cout, self.out_bits)
        off_chip = self.weight_style in (MemoryStyle.ULTRA, MemoryStyle.DDR)
        if off_chip and cout // self.pe * taps // self.simd == 1:
            raise ValueError(f"a one-word weight memory is constants, not a {self.weight_style.name}"
                             f" memory: weight_style {self.weight_style.name} needs groups * "
                             "steps > 1")
        if (self.weight_style is MemoryStyle.DDR) != (self.ddr_bytes_per_cycle > 0):
            raise ValueError(f"ddr_bytes_per_cycle must be positive exactly for DDR weights, "
                             f"not {self.ddr_bytes_per_cycle!r}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "bias", b)

    @property
    def cout(self) -> int:
        return self.weights.shape[0]

    @property
    def taps(self) -> int:
        return self.weights.shape[1]

    @property
    def groups(self) -> int:
        """Output beats per pixel (the neuron fold), ``cout / pe``."""
        return self.cout // self.pe

    @property
    def steps(self) -> int:
        """Input beats per pixel (the synapse fold), ``taps / simd``."""
        return self.taps // self.simd


class MatrixVectorUnit(ProcessingElement):
    """``pe x simd`` multiply-accumulates per cycle over a stream of input vectors.

    Parameters
    ----------
    params : MatrixVectorParams

    Attributes
    ----------
    i : In(stream of ``simd`` x ``in_bits``)
        ``taps / simd`` beats per output pixel (window beats in TAP_MAJOR order).
    o : Out(stream of ``pe`` x ``out_bits``)
        ``cout / pe`` beats per output pixel, channels ascending.
    load : In(load_signature(pe * simd * wbits)), only with ``weight_style`` ULTRA
        The weight memory's words (:meth:`load_words`) in address order, once after reset.
    ddr : Out(axi4_read_signature(...)), ddr_base : In(AXI_ADDR_BITS), only with DDR
        The AXI4 read channels and the byte address of the weight region
        (:func:`~rtl_templates.axi4_reader.ddr_image` of :meth:`load_words`).
    """

    def __init__(self, params: MatrixVectorParams):
        if not isinstance(params, MatrixVectorParams):
            raise TypeError(f"params must be MatrixVectorParams, not {params!r}")
        self.params = params
        #: Register stages of the adder tree (stage 4).
        self.tree_stages = adder_tree_stages(params.simd)
        #: Cycles from the transfer (issue) of a group's last step to its output transfer:
        #: stage 1, the products', the tree's, the accumulator, the requantizer, the FIFO
        #: write and read.
        self.pipeline = 2 + PRODUCT_STAGES + self.tree_stages + Requantizer.LATENCY + 1
        members = {"i": In(beat_signature(params.in_bits, params.simd)),
                   "o": Out(beat_signature(params.out_bits, params.pe))}
        if params.weight_style is MemoryStyle.ULTRA:
            members["load"] = In(load_signature(self.load_width))
        if params.weight_style is MemoryStyle.DDR:
            members["ddr"] = Out(axi4_read_signature(self.reader_params.data_bits))
            members["ddr_base"] = In(AXI_ADDR_BITS)
        super().__init__(members)

    @property
    def reader_params(self) -> ReaderParams:
        """The DDR weight reader's shape: words of :attr:`load_width`, ``groups * steps``."""
        return ReaderParams(self.load_width, self.params.groups * self.params.steps)

    @property
    def load_width(self) -> int:
        """Bits of a word of the loaded (URAM) weight memory: every PE row's ``simd`` weights."""
        p = self.params
        return p.pe * p.simd * p.wbits

    # -- RTL ----------------------------------------------------------------------------------
    def weight_roms(self) -> list[list[int]]:
        """Per PE row, the ROM words: address ``g * steps + s`` holds the ``simd`` weights of
        channel ``g * pe + row``, taps ``s * simd ..``."""
        p = self.params
        w = p.weights.reshape(p.groups, p.pe, p.steps, p.simd)
        return [pack_rom(w[:, r].reshape(-1, p.simd), p.wbits) for r in range(p.pe)]

    def load_words(self) -> list[int]:
        """The loaded weight memory's words: at address ``a``, PE row ``r``'s ROM word ``a``
        (:meth:`weight_roms`) in bits ``r * simd * wbits ..``."""
        row_bits = self.params.simd * self.params.wbits
        return [sum(w << (r * row_bits) for r, w in enumerate(words))
                for words in zip(*self.weight_roms())]

    def elaborate(self, platform):
        m = Module()
        p = self.params
        G, S, pe, simd = p.groups, p.steps, p.pe, p.simd

        m.submodules.out_fifo = out_fifo = fifo.SyncFIFO(width=p.out_bits * pe,
                                                          depth=OUTPUT_FIFO_DEPTH)
        adv = Signal()
        m.d.comb += [
            adv.eq(out_fifo.w_rdy),
            self.o.payload.eq(out_fifo.r_data),
            self.o.valid.eq(out_fifo.r_rdy),
            out_fifo.r_en.eq(self.o.ready),
        ]

        # Stage 0: issue one step per enabled cycle (group 0 needs an input beat).
        issue = Signal()
        weights_ready = Const(1)      # a weight word is at hand (always, unless from DDR)
        if p.weight_style is MemoryStyle.DDR:
            m.submodules.weight_reader = reader = Axi4Reader(self.reader_params)
            wiring.connect(m, reader.bus, wiring.flipped(self.ddr))
            m.d.comb += [reader.base.eq(self.ddr_base), reader.o.ready.eq(issue)]
            weights_ready = reader.o.valid
        steps = wrapping_counter(m, "step", S, issue)
        groups = wrapping_counter(m, "group", G, issue & steps.last)
        step, group = steps.value, groups.value
        addr = wrapping_counter(m, "addr", G * S, issue).value   # weight ROM address, g * S + s
        from_input = groups.first
        m.d.comb += [
            issue.eq(adv & (~from_input | self.i.valid) & weights_ready),
            self.i.ready.eq(adv & from_input & weights_ready),
        ]

        roms = []
        row_bits = simd * p.wbits
        if p.weight_style is MemoryStyle.ULTRA:
            data = loaded_memory(m, "weights", self.load_width, G * S, self.load, addr, adv)
            roms = [data[r * row_bits:(r + 1) * row_bits] for r in range(pe)]
        elif p.weight_style is MemoryStyle.DDR:
            data = Signal(self.load_width, name="weights_ddr")   # stage 1, as a ROM's data
            with m.If(adv):
                m.d.sync += data.eq(reader.o.payload)
            roms = [data[r * row_bits:(r + 1) * row_bits] for r in range(pe)]
        for r, words in enumerate(self.weight_roms() if not roms else []):
            if G * S == 1:   # one word (a fully connected layer done in one step): a constant
                roms.append(Const(words[0], unsigned(simd * p.wbits)))
                continue
            roms.append(banked_rom_read(m, f"weights_pe{r}", simd * p.wbits, words, addr, adv,
                                        p.weight_style))

        # Stage 1: the activations come from the input register (group 0) or the buffer.
        width = simd * p.in_bits
        x1 = Signal(width)
        v1, first1, last1, own1 = Signal(), Signal(), Signal(), Signal()
        g1 = Signal.like(group)
        with m.If(adv):
            m.d.sync += [v1.eq(issue), first1.eq(steps.first), last1.eq(steps.last),
                         own1.eq(from_input), g1.eq(group), x1.eq(self.i.payload.as_value())]
        if G > 1:
            buf = memory.Memory(shape=unsigned(width), depth=S, init=[],
                                attrs=memory_attrs(width, S, rom=False))
            m.submodules.input_buffer = buf
            wr = buf.write_port()
            rd = buf.read_port(domain="sync")
            m.d.comb += [wr.addr.eq(step), wr.data.eq(self.i.payload.as_value()),
                         wr.en.eq(self.i.valid & self.i.ready),
                         rd.addr.eq(step), rd.en.eq(adv)]
            acts1 = Mux(own1, x1, rd.data)
        else:
            acts1 = x1

        # Stages 2-4: the products (registered_product: operand, multiplier input and product
        # registers), the control delayed alongside.
        ctl = control_pipeline(m, (v1, first1, last1, g1), CONTROL, range(2, 2 + PRODUCT_STAGES),
                               adv)
        products = [[registered_product(m, f"product_pe{r}_{j}",
                                        acts1[j * p.in_bits:(j + 1) * p.in_bits],
                                        roms[r][j * p.wbits:(j + 1) * p.wbits], adv)
                     for j in range(simd)] for r in range(pe)]

        # Stage 5: adder trees, a register after each level (self.tree_stages of them), the
        # control delayed alongside. Stage 6: accumulators (bias on a group's first step).
        ctl += control_pipeline(m, ctl[-1], CONTROL,
                                [f"_tree{t}" for t in range(1, self.tree_stages + 1)], adv)[1:]
        v_sum, first_sum, last_sum, g_sum = ctl[-1]
        v_acc, done = Signal(), Signal()
        g_acc = Signal.like(group)
        m.submodules.requant = rq = Requantizer(p.requant, pe, G, p.acc_bits, p.out_bits)
        # The biases of group g_sum, read a stage earlier (the ROM's output register is the last
        # tree stage's).
        bias = group_constants(m, "biases", lane_constants(p.bias, pe, G), signed(p.acc_bits),
                               ctl[-2][3], adv)
        with m.If(adv):
            m.d.sync += [v_acc.eq(v_sum), done.eq(v_sum & last_sum), g_acc.eq(g_sum)]
        for r in range(pe):
            acc = Signal(signed(p.acc_bits), name=f"acc_pe{r}")
            total = adder_tree(m, products[r], p.acc_bits, f"tree_pe{r}", adv)
            with m.If(adv & v_sum):
                m.d.sync += acc.eq(Mux(first_sum, bias[r], acc) + total)
            m.d.comb += rq.acc[r].eq(acc)
        m.d.comb += [rq.en.eq(adv), rq.valid.eq(v_acc & done), rq.group.eq(g_acc),
                     out_fifo.w_en.eq(adv & rq.result_valid),
                     out_fifo.w_data.eq(rq.result.as_value())]
        return m

    # -- models -------------------------------------------------------------------------------
    def behaviour(self, beats: np.ndarray) -> np.ndarray:
        """Input beats ``(n * taps / simd, simd)`` to output beats ``(n * cout / pe, pe)``.

        The accumulation is :func:`dataflows.tensor_ops.conv2d` (a 1x1 conv over the pixels'
        tap vectors, float64-exact), then bias, width check and
        :meth:`~dataflows.numerics.RequantSpec.apply`, as :func:`dataflows.golden.conv_int`.
        """
        p = self.params
        x = np.asarray(beats, dtype=np.int64).reshape(1, -1, p.taps)
        w = p.weights.reshape(p.cout, 1, 1, p.taps).astype(np.float64)
        acc = ops.exact_int(ops.conv2d(x.astype(np.float64), w)) + p.bias
        nm.check_fits(acc, p.acc_bits, "matrix-vector accumulator")
        return p.requant.apply(acc).reshape(-1, p.pe)

    def cycles_per_frame(self) -> int:
        """``pixels * groups * steps``; with DDR weights at least the frame's weight bytes
        (every pixel reads the region) over the unit's DDR bytes per cycle, itself at most
        the port's beat a cycle."""
        p = self.params
        compute = p.pixels * p.groups * p.steps
        if p.weight_style is not MemoryStyle.DDR:
            return compute
        return max(compute, self.ddr_cycles_per_frame())

    def ddr_bytes_per_frame(self) -> int:
        """Bytes the unit reads from DDR per frame (0 unless its weights are there)."""
        if self.params.weight_style is not MemoryStyle.DDR:
            return 0
        return self.params.pixels * self.reader_params.region_bytes

    def ddr_cycles_per_frame(self) -> int:
        """:func:`~rtl_templates.axi4_reader.ddr_cycles_per_frame`: a pass a pixel."""
        return ddr_cycles_per_frame(self.reader_params, self.params.pixels,
                                    self.params.ddr_bytes_per_cycle)

    def latency(self) -> int:
        """First input transfer to first output: the ``steps`` of group 0, then the pipeline."""
        return self.params.steps - 1 + self.pipeline

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Counts of what :meth:`elaborate` builds.

        DSP: :meth:`multipliers` products (0 when too narrow for a DSP) plus the requantizer's.
        Memory (:func:`memory_resources`, LUTs below the block-RAM threshold): one weight ROM
        per PE row, ``groups * steps`` x ``simd * wbits``; the input buffer, ``steps`` x
        ``simd * in_bits`` (only when ``groups > 1``); the output FIFO in LUT RAM.
        The biases: a ROM of ``groups`` x ``pe * acc_bits`` unless every PE row's bias is
        the same for all groups (:func:`~rtl_templates.requant.group_constants_resources`).
        LUT: adder trees ``pe * (simd - 1) * acc_bits``, accumulators ``pe * acc_bits``,
        counters and control ~30.
        FF: input and buffer registers, the ROM's output registers when it is logic (one per
        bank: :func:`~rtl_templates.rom.rom_resources`), the adder
        trees' registers (every level's, :func:`adder_tree_register_bits`) and accumulators
        ``pe * acc_bits``, control ~30; the products'
        (:func:`~rtl_templates.multiplier.product_cost`; the activation's operand register
        is shared by the ``pe`` rows once synthesis merges the identical flip-flops).
        Checked against yosys ``synth_xilinx`` in the ``synth`` tests.
        """
        p = self.params
        product = product_cost(p.in_bits, p.wbits, PRODUCT_STAGES, family)
        prod_bits = p.in_bits + p.wbits
        res = requantizer_resources(p.requant, p.pe, p.groups, p.acc_bits, p.out_bits, family)
        if p.groups * p.steps > 1:
            res = res + self.weight_memory_resources(family)
        if p.groups > 1:
            res = res + memory_resources(p.simd * p.in_bits, p.steps, family)
        res = res + group_constants_resources(lane_constants(p.bias, p.pe, p.groups),
                                              signed(p.acc_bits), family)
        lut = (p.pe * (p.simd - 1) * p.acc_bits + p.pe * p.acc_bits
               + lutram_luts(p.pe * p.out_bits, OUTPUT_FIFO_DEPTH, family) + 30)
        tree_ff = p.pe * adder_tree_register_bits(p.simd, prod_bits, p.acc_bits)
        ff = p.simd * p.in_bits * (2 if p.groups > 1 else 1) + tree_ff + p.pe * p.acc_bits + 30
        lut += self.multipliers() * product.lut
        ff += (p.simd * product.operand_ff[0]
               + self.multipliers() * (product.operand_ff[1] + product.ff))
        # 3 control bits and the group per product stage
        ff += PRODUCT_STAGES * (3 + max(1, (p.groups - 1).bit_length()))
        return res + Resources(dsp=self.multipliers() * product.dsp, lut=lut, ff=ff)

    def weight_memory_resources(self, family: str | DeviceFamily = "7series",
                                style: MemoryStyle | None = None) -> Resources:
        """The weight memories placed as ``style`` says (default: the unit's own): one ROM
        per PE row, ``groups * steps`` x ``simd * wbits``, with its output register(s)
        (:func:`~rtl_templates.rom.rom_resources`), or for ``ULTRA`` the one loaded memory
        of :attr:`load_width` bits (:func:`~rtl_templates.weight_load.loaded_memory_resources`)."""
        p = self.params
        style = p.weight_style if style is None else style
        if style is MemoryStyle.ULTRA:
            return loaded_memory_resources(self.load_width, p.groups * p.steps, family)
        if style is MemoryStyle.DDR:
            return Axi4Reader(self.reader_params).resources(family) + Resources(
                ff=self.load_width)                     # the word register of stage 1
        return rom_resources(p.simd * p.wbits, p.groups * p.steps, family, style).scaled(p.pe)

    def multipliers(self) -> int:
        """Multipliers the tools keep: ``pe * simd``, except that a one-word weight ROM makes
        every weight a constant, and a product by 0 or by a power of two is only a shift."""
        p = self.params
        if p.groups * p.steps > 1:
            return p.pe * p.simd
        w = np.abs(p.weights)
        return int(((w & (w - 1)) != 0).sum())
