"""DDR-streamed weights: an AXI4 read master that streams a weight region, over and over.

A layer whose weights have little reuse (a fully connected classifier reads each weight once a
frame) can read them from off-chip memory every frame instead of holding them on chip. The
:class:`Axi4Reader` reads a region of ``words`` words, each ``beats_per_word`` beats of the
port's ``data_bits``, from address ``base`` in INCR bursts into a prefetch FIFO, and assembles
each word for the matrix-vector unit's ``weights`` stream; at the region's end it starts again
at ``base``. It asks for a burst only when the FIFO has room for all of it (credits), so
``rready`` is always high and it reads exactly what the unit consumes.

The region's layout (:func:`ddr_image`): a word of more than ``data_bits`` takes
``beats_per_word`` beats, least significant ``data_bits`` first; narrower words are packed
``words_per_beat = data_bits // word_bits`` to a beat, word ``j`` of a beat in bits
``j * word_bits ..`` (the region's last beat may be part empty); little-endian bytes. The
words are the unit's loaded memory's
(:meth:`~rtl_templates.matrix_vector_unit.MatrixVectorUnit.load_words`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .counter import wrapping_counter
from .fifo import Fifo, FifoParams
from .resources import DeviceFamily, Resources, mux_luts

__all__ = ["AXI_ADDR_BITS", "MAX_BURST", "axi4_read_signature", "ReaderParams", "Axi4Reader",
           "ddr_image", "reader_port_bits", "ddr_cycles_per_frame"]

#: Address bits of the read port (the Zynq UltraScale+ HP ports take 49; 40 cover every board's DDR).
AXI_ADDR_BITS = 40
#: AXI4 INCR bursts: at most 256 beats, and never across a 4 KB boundary.
MAX_BURST, BOUNDARY_BYTES = 256, 4096
#: The widest read port: the Zynq UltraScale+ HP ports' 128 bits (the 7-series Zynq's are 64).
MAX_PORT_BITS = 128


def axi4_read_signature(data_bits: int, addr_bits: int = AXI_ADDR_BITS) -> wiring.Signature:
    """An AXI4 read master's address and data channels (master's view), the member names
    being the AXI signal names without the ``ar``/``r`` channel's interface prefix."""
    return wiring.Signature({
        "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2),
        "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rvalid": In(1),
        "rready": Out(1)})


def reader_port_bits(word_bits: int) -> int:
    """The read port's data width for words of ``word_bits``: a power of two from 32 to
    :data:`MAX_PORT_BITS`, the smallest that holds a word, else the widest."""
    bits = 32
    while bits < min(word_bits, MAX_PORT_BITS):
        bits *= 2
    return bits


@dataclass(frozen=True)
class ReaderParams:
    """Shape of an :class:`Axi4Reader`.

    Attributes
    ----------
    word_bits : int
        Bits of a word of the ``o`` stream.
    words : int
        Words in the region (read from the start again after the last).
    data_bits : int
        The read port's width, a power of two from 32 to :data:`MAX_PORT_BITS`
        (default :func:`reader_port_bits`).
    """

    word_bits: int
    words: int
    data_bits: int = 0

    def __post_init__(self):
        for name in ("word_bits", "words"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        if not self.data_bits:
            object.__setattr__(self, "data_bits", reader_port_bits(self.word_bits))
        d = self.data_bits
        if d not in (32, 64, 128):
            raise ValueError(f"data_bits must be 32, 64 or 128, not {d!r}")

    @property
    def beats_per_word(self) -> int:
        return -(-self.word_bits // self.data_bits)

    @property
    def words_per_beat(self) -> int:
        return max(1, self.data_bits // self.word_bits)

    @property
    def beat_bytes(self) -> int:
        return self.data_bits // 8

    @property
    def region_beats(self) -> int:
        return -(-self.words // self.words_per_beat) * self.beats_per_word

    @property
    def region_bytes(self) -> int:
        """Bytes of the weight region, which is also what one pass (a frame's reads for a
        layer that reads its weights once a pixel, times its pixels) moves."""
        return self.region_beats * self.beat_bytes

    @property
    def burst(self) -> int:
        """Beats of a full burst: 256, fewer if that would cross 4 KB or exceed the region."""
        return min(MAX_BURST, BOUNDARY_BYTES // self.beat_bytes, self.region_beats)

    @property
    def bursts(self) -> int:
        return -(-self.region_beats // self.burst)

    @property
    def fifo_depth(self) -> int:
        """Two bursts: one arriving while the other drains."""
        return 2 * self.burst


class Axi4Reader(wiring.Component):
    """Streams a weight region from memory, word by word, forever (see the module).

    Parameters
    ----------
    params : ReaderParams

    Attributes
    ----------
    bus : Out(axi4_read_signature(data_bits))
        The AXI4 read channels; ``araddr`` is ``base`` plus the burst's offset.
    base : In(AXI_ADDR_BITS)
        The region's byte address, 4 KB aligned (set before reset is released).
    o : Out(stream of unsigned(word_bits))
    """

    def __init__(self, params: ReaderParams):
        if not isinstance(params, ReaderParams):
            raise TypeError(f"params must be ReaderParams, not {params!r}")
        self.params = params
        super().__init__({"bus": Out(axi4_read_signature(params.data_bits)),
                          "base": In(AXI_ADDR_BITS),
                          "o": Out(stream.Signature(unsigned(params.word_bits)))})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        bus = self.bus
        # The prefetch FIFO; every beat it will receive was asked for with room reserved.
        m.submodules.prefetch = fifo = Fifo(FifoParams(bits=p.data_bits, lanes=1,
                                                       depth=p.fifo_depth))
        m.d.comb += [bus.rready.eq(1), fifo.i.valid.eq(bus.rvalid),
                     fifo.i.payload.eq(bus.rdata)]

        # Address channel: burst k of the region, its length; credits are the FIFO's slots
        # (and its output register's) not yet promised to a burst.
        burst = wrapping_counter(m, "burst", p.bursts, bus.arvalid & bus.arready)
        last_len = p.region_beats - (p.bursts - 1) * p.burst
        length = Mux(burst.last, last_len, p.burst)
        credits = Signal(range(p.fifo_depth + 2), init=p.fifo_depth + 1)
        taken = fifo.o.valid & fifo.o.ready
        granted = Signal()
        # Low while reset is held (the credits then read their initial value): no request
        # may leave a master in reset.
        running = Signal()
        m.d.sync += running.eq(1)
        m.d.comb += [
            granted.eq(bus.arvalid & bus.arready),
            bus.arvalid.eq(running & (credits >= p.burst)),
            bus.araddr.eq(self.base + burst.value * (p.burst * p.beat_bytes)),
            bus.arlen.eq(length - 1),
            bus.arsize.eq(Const((p.beat_bytes - 1).bit_length(), 3)),
            bus.arburst.eq(1),                                        # INCR
        ]
        m.d.sync += credits.eq(credits - Mux(granted, length, 0) + taken)

        # Words from beats: words_per_beat words a beat, the beat popped after its last word
        # (or the region's last); or beats_per_word beats a word, least significant first.
        k, n = p.beats_per_word, p.words_per_beat
        out = self.o.valid & self.o.ready
        if n > 1:
            index = Signal(range(n))
            word = wrapping_counter(m, "word", p.words, out)
            release = (index == n - 1) | word.last
            m.d.comb += [self.o.valid.eq(fifo.o.valid),
                         self.o.payload.eq(fifo.o.payload.as_value().word_select(index,
                                                                                 p.word_bits)),
                         fifo.o.ready.eq(self.o.ready & release)]
            with m.If(out):
                m.d.sync += index.eq(Mux(release, 0, index + 1))
            return m
        if k == 1:
            m.d.comb += [self.o.payload.eq(fifo.o.payload.as_value()),
                         self.o.valid.eq(fifo.o.valid), fifo.o.ready.eq(self.o.ready)]
            return m
        held = Signal(range(k + 1))
        word = Signal(k * p.data_bits)
        m.d.comb += [self.o.payload.eq(word[:p.word_bits]), self.o.valid.eq(held == k),
                     fifo.o.ready.eq((held < k) | self.o.ready)]
        with m.If(taken):
            m.d.sync += word.word_select(Mux(out, 0, held), p.data_bits).eq(
                fifo.o.payload.as_value())
            m.d.sync += held.eq(Mux(out, 1, held + 1))
        with m.Elif(out):
            m.d.sync += held.eq(0)
        return m

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """The prefetch FIFO's (:class:`~rtl_templates.fifo.Fifo`); a LUT a bit of the burst
        counter (its increment and its terminal flag) and of the credit counter (its adder
        and compare), the address adder's LUTs on the burst counter's bits only (the offset
        is a multiple of 4 KB: the bits below pass through, the carry chain takes the rest);
        when a word is several beats, its register (the word's bits, a clock enable a beat:
        no LUT a bit) and the beat count. Checked against yosys (xcup) in
        ``tests/pe/test_axi4_reader.py``."""
        p = self.params
        fifo = Fifo(FifoParams(bits=p.data_bits, lanes=1, depth=p.fifo_depth)).resources(family)
        counter = max(1, (p.bursts - 1).bit_length())
        credit = (p.fifo_depth + 1).bit_length()
        lut = 3 * counter + 2 * credit
        ff = counter + 2 + credit                      # with the last flag and "running"
        if p.beats_per_word > 1:
            held = (p.beats_per_word + 1).bit_length()
            lut += p.beats_per_word + held
            ff += p.word_bits + held
        if p.words_per_beat > 1:       # the word counter, the index, the word multiplexer
            count, index = max(1, (p.words - 1).bit_length()), (p.words_per_beat - 1).bit_length()
            lut += count + index + p.word_bits * mux_luts(p.words_per_beat, family)
            ff += count + 2 + index
        return fifo + Resources(lut=lut, ff=ff)


def ddr_cycles_per_frame(params: ReaderParams, passes: int, bytes_per_cycle: float) -> int:
    """Cycles ``passes`` reads of the region take at ``bytes_per_cycle`` (at most the port's
    one beat a cycle): the bound DDR puts on a streamed layer's cycles per frame."""
    if not bytes_per_cycle > 0:
        raise ValueError(f"bytes_per_cycle must be positive, not {bytes_per_cycle!r}")
    return math.ceil(passes * params.region_bytes / min(bytes_per_cycle, params.beat_bytes))


def ddr_image(params: ReaderParams, words: list[int]) -> bytes:
    """The weight region's bytes for ``words`` (see the module): what a host writes to the
    buffer at ``base``."""
    if len(words) != params.words:
        raise ValueError(f"{len(words)} words for a region of {params.words}")
    size = params.beats_per_word * params.beat_bytes
    n = params.words_per_beat
    out = bytearray()
    for first in range(0, len(words), n):
        beat = 0
        for j, w in enumerate(words[first:first + n]):
            w = int(w)
            if w < 0 or w >> params.word_bits:
                raise ValueError(f"word {w!r} does not fit {params.word_bits} bits")
            beat |= w << (j * params.word_bits)
        out += beat.to_bytes(size, "little")
    return bytes(out)
