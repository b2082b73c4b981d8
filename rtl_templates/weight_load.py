"""The weight-load path: weight memories without initial contents, written once after reset.

URAM288 blocks (UltraScale+) cannot be initialised by the bitstream, so a weight memory placed
there (:attr:`~rtl_templates.resources.MemoryStyle.ULTRA`) is written through the accelerator's
input stream before the first frame: after reset the top's first :attr:`WeightLoader.beats`
input beats are weights, in the order :func:`load_image` lays them out, and only then do
frames flow (docs/streams.md, "Weight load"). A reset starts a new load, which is how a host
replaces the weights at run time.

Three pieces, each beside its cost:

* :func:`load_signature`: a loadable memory's write port, one word per ``valid`` cycle, words
  in address order;
* :func:`loaded_memory`: the memory itself, in 4,096-word URAM banks, read like a ROM
  (registered data the cycle after ``en``), and :func:`loaded_memory_resources`;
* :class:`WeightLoader`: the top-level block that assembles input beats into words for each
  loadable memory in turn and then passes the stream through, and :func:`load_image`, the
  beats a host sends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, ClockSignal, Const, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .pe import beat_signature
from .resources import URAM_DEPTH, DeviceFamily, MemoryStyle, Resources, memory_resources, mux_luts
from .rom import active_rom_files

__all__ = ["load_signature", "loaded_memory", "loaded_memory_resources", "LoadTarget",
           "WeightLoader", "load_image", "load_beats"]


def load_signature(width: int) -> wiring.Signature:
    """A loadable memory's write port, seen from the loader: ``data`` is the next word when
    ``valid`` is high (no ``ready``: a memory takes a word every cycle)."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int, not {width!r}")
    return wiring.Signature({"valid": Out(1), "data": Out(unsigned(width))})


def _banks(depth: int) -> int:
    return -(-depth // URAM_DEPTH)


def _uram(m: Module, name: str, width: int, depth: int):
    """One URAM-styled simple dual-port RAM (write port, registered read port with enable):
    an Amaranth memory with ``ram_style = "ultra"``, or inside the whole-design emission an
    instance of ``hwgen_uram_block`` (:data:`rtl_templates.rom.ROM_VERILOG`)."""
    addr_bits = max(1, (depth - 1).bit_length())
    w_en, r_en = Signal(name=f"{name}_w_en"), Signal(name=f"{name}_r_en")
    w_addr, r_addr = Signal(addr_bits, name=f"{name}_w_addr"), Signal(addr_bits, name=f"{name}_r_addr")
    w_data, r_data = Signal(width, name=f"{name}_w_data"), Signal(width, name=f"{name}_r_data")
    if active_rom_files() is None:
        ram = memory.Memory(shape=unsigned(width), depth=depth, init=[],
                            attrs={"ram_style": "ultra"})
        m.submodules[name] = ram
        wr, rd = ram.write_port(), ram.read_port(domain="sync")
        m.d.comb += [wr.en.eq(w_en), wr.addr.eq(w_addr), wr.data.eq(w_data),
                     rd.en.eq(r_en), rd.addr.eq(r_addr), r_data.eq(rd.data)]
    else:
        m.submodules[name] = Instance(
            "hwgen_uram_block", p_WIDTH=width, p_DEPTH=depth, p_ADDR_BITS=addr_bits,
            i_clk=ClockSignal("sync"), i_w_en=w_en, i_w_addr=w_addr, i_w_data=w_data,
            i_r_en=r_en, i_r_addr=r_addr, o_r_data=r_data)
    return w_en, w_addr, w_data, r_en, r_addr, r_data


def loaded_memory(m: Module, name: str, width: int, depth: int, load, addr, en):
    """A ``depth`` x ``width`` weight memory in URAM written through ``load`` (an
    ``In(load_signature(width))`` port: word ``k`` of a load goes to address ``k``; a longer
    load wraps) and read at ``addr`` when ``en``; returns the registered data, valid the cycle
    after ``en`` as :func:`~rtl_templates.rom.rom_read`'s. Deeper than 4,096 words it is banks
    of 4,096, each read into its own register, the data chosen by the registered bank number."""
    banks = _banks(depth)
    w_addr = Signal(range(depth), name=f"{name}_load_addr")
    with m.If(load.valid):
        m.d.sync += w_addr.eq(Mux(w_addr == depth - 1, 0, w_addr + 1))
    if banks == 1:
        we, wa, wd, re, ra, rd = _uram(m, name, width, depth)
        m.d.comb += [we.eq(load.valid), wa.eq(w_addr), wd.eq(load.data), re.eq(en), ra.eq(addr)]
        return rd
    low = (URAM_DEPTH - 1).bit_length()
    bank = Signal(range(banks), name=f"{name}_bank")
    with m.If(en):
        m.d.sync += bank.eq(addr[low:])
    data = []
    for b in range(banks):
        size = min(URAM_DEPTH, depth - b * URAM_DEPTH)
        we, wa, wd, re, ra, rd = _uram(m, f"{name}_bank{b}", width, size)
        m.d.comb += [we.eq(load.valid & (w_addr[low:] == b)), wa.eq(w_addr[:low]),
                     wd.eq(load.data), re.eq(en), ra.eq(addr[:low])]
        data.append(rd)
    return Array(data)[bank]


def loaded_memory_resources(width: int, depth: int,
                            family: str | DeviceFamily = "ultrascale") -> Resources:
    """What :func:`loaded_memory` builds: its URAMs (:func:`~rtl_templates.resources.uram_count`
    per bank; the read register is the URAM's own), the load address counter, and for banks
    the bank register and the data multiplexer. Checked against yosys (``synth_xilinx
    -family xcup``) in ``tests/pe/test_weight_load.py``."""
    banks = _banks(depth)
    sizes = [min(URAM_DEPTH, depth - b * URAM_DEPTH) for b in range(banks)]
    urams = sum((memory_resources(width, s, family, MemoryStyle.ULTRA) for s in sizes), Resources())
    addr_bits = max(1, (depth - 1).bit_length())
    bank_ff = (banks - 1).bit_length()
    return urams + Resources(lut=addr_bits + width * mux_luts(banks, family) + banks,
                             ff=addr_bits + bank_ff)


@dataclass(frozen=True)
class LoadTarget:
    """One loadable memory the :class:`WeightLoader` writes: ``depth`` words of ``width`` bits,
    the ``name`` of its stage (the order of targets is the order of the load)."""

    name: str
    width: int
    depth: int

    def __post_init__(self):
        for what in ("width", "depth"):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int, not {value!r}")

    def chunks(self, beat_bits: int) -> int:
        """Input beats per word: ``ceil(width / beat_bits)``."""
        return -(-self.width // beat_bits)


def load_beats(targets: list[LoadTarget], beat_bits: int) -> int:
    """Input beats of a whole weight load."""
    return sum(t.depth * t.chunks(beat_bits) for t in targets)


class WeightLoader(wiring.Component):
    """Between the top's input stream and the core: the first :attr:`beats` beats after reset
    are weights, then ``i`` passes to ``o`` combinationally (no cycle added to a frame).

    A word of target ``k`` is ``chunks = ceil(width / beat_bits)`` beats, least significant
    ``beat_bits`` first (``beat_bits = bits * lanes``, the whole beat); the bits above
    ``width`` in the last chunk are ignored. Targets are loaded in order, each's words in
    address order. While loading, ``i.ready`` is high and ``o.valid`` low.

    Parameters
    ----------
    bits, lanes : int
        The input stream's beat shape.
    targets : list of LoadTarget
        At least one.

    Attributes
    ----------
    i : In(beat stream)
    o : Out(beat stream)
    load<k> : Out(load_signature(targets[k].width))
    loading : Out(1)
        High until the load is complete.
    """

    def __init__(self, bits: int, lanes: int, targets: list[LoadTarget]):
        targets = list(targets)
        if not targets or not all(isinstance(t, LoadTarget) for t in targets):
            raise ValueError(f"targets must be a non-empty list of LoadTarget, not {targets!r}")
        self.bits, self.lanes, self.targets = bits, lanes, targets
        self.beat_bits = bits * lanes
        members = {"i": In(beat_signature(bits, lanes)), "o": Out(beat_signature(bits, lanes)),
                   "loading": Out(1)}
        members.update({f"load{k}": Out(load_signature(t.width)) for k, t in enumerate(targets)})
        super().__init__(members)

    @property
    def beats(self) -> int:
        return load_beats(self.targets, self.beat_bits)

    def elaborate(self, platform):
        m = Module()
        B, targets = self.beat_bits, self.targets
        most = max(t.chunks(B) for t in targets)
        loading = Signal(init=1)
        target = Signal(range(len(targets)))
        chunk = Signal(range(most))
        word = Signal(range(max(t.depth for t in targets)))
        assembled = Signal(most * B)
        done = Signal()        # a word completed on the previous cycle
        last_chunk = Array(Const(t.chunks(B) - 1, chunk.shape()) for t in targets)[target]
        last_word = Array(Const(t.depth - 1, word.shape()) for t in targets)[target]
        done_target = Signal.like(target)
        take = loading & self.i.valid
        m.d.comb += [self.loading.eq(loading),
                     self.i.ready.eq(loading | self.o.ready),
                     self.o.valid.eq(self.i.valid & ~loading),
                     self.o.payload.eq(self.i.payload)]
        m.d.sync += done.eq(0)
        with m.If(take):
            m.d.sync += assembled.word_select(chunk, B).eq(self.i.payload.as_value())
            with m.If(chunk == last_chunk):
                m.d.sync += [chunk.eq(0), done.eq(1), done_target.eq(target)]
                with m.If(word == last_word):
                    m.d.sync += word.eq(0)
                    with m.If(target == len(targets) - 1):
                        m.d.sync += loading.eq(0)
                    with m.Else():
                        m.d.sync += target.eq(target + 1)
                with m.Else():
                    m.d.sync += word.eq(word + 1)
            with m.Else():
                m.d.sync += chunk.eq(chunk + 1)
        for k, t in enumerate(targets):
            port = getattr(self, f"load{k}")
            m.d.comb += [port.valid.eq(done & (done_target == k)), port.data.eq(assembled[:t.width])]
        return m


def load_image(memories: list[tuple[LoadTarget, list[int]]], bits: int, lanes: int) -> np.ndarray:
    """The input beats of a weight load, ``(beats, lanes)`` signed ``bits``-bit values (the
    form :func:`boards.host.frames.beats_to_bytes` turns into what a host sends): for each
    target its words in address order, each word ``chunks`` beats, low bits first."""
    B = bits * lanes
    rows = []
    for target, words in memories:
        if len(words) != target.depth:
            raise ValueError(f"{target.name}: {len(words)} words for a memory of {target.depth}")
        n = target.chunks(B)
        for w in words:
            w = int(w)
            if w < 0 or w >> target.width:
                raise ValueError(f"{target.name}: word {w!r} does not fit {target.width} bits")
            rows.extend((w >> (c * B)) & ((1 << B) - 1) for c in range(n))
    if not rows:
        return np.zeros((0, lanes), dtype=np.int64)
    # Each beat's lanes, sign-extended from bits: chunk bits k*bits .. (k+1)*bits - 1.
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    beats = np.array([[((r >> (k * bits)) & mask) for k in range(lanes)] for r in rows],
                     dtype=np.int64)
    return np.where(beats >= half, beats - (1 << bits), beats)
