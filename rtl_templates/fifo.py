"""Fifo: a first-in first-out buffer between two streams.

Its ready and its "not empty" are read from registers: counts that lag the handshakes by one
cycle, each stepped by one adder from the previous cycle's write minus read (a register), and
corrected by that step's two bits in one LUT. No handshake reaches a carry chain. Amaranth's
``SyncFIFOBuffered`` computes ``w_rdy`` as ``level != depth`` and steps the level by this
cycle's handshakes, so a concat FIFO of SqueezeNet (13-bit level) measured 4.32 LUT levels on
the VC707's 7-series, over the four its 200 MHz allows (docs/timing.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from .counter import wrapping_counter
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources, memory_resources
from .rom import block_ram

__all__ = ["FifoParams", "Fifo"]


@dataclass(frozen=True)
class FifoParams:
    """Shape of a :class:`Fifo`.

    Attributes
    ----------
    bits, lanes : int
        Beat layout: ``lanes`` signed values of ``bits`` bits.
    depth : int
        Beats it holds.
    frame_beats : int
        Beats per frame, for the cycle model.
    """

    bits: int
    lanes: int
    depth: int
    frame_beats: int = 1

    def __post_init__(self):
        if not isinstance(self.depth, int) or self.depth < 2:
            raise ValueError(f"depth must be an int of at least 2, not {self.depth!r}")
        if not isinstance(self.frame_beats, int) or self.frame_beats < 1:
            raise ValueError(f"frame_beats must be a positive int, not {self.frame_beats!r}")


class Fifo(ProcessingElement):
    """A synchronous FIFO on beat streams: a RAM of ``depth`` beats and its read register.

    The RAM's registered read port is the output register, so the FIFO holds up to
    ``depth + 1`` beats, and a beat written in one cycle can be read in the next.

    The RAM's beats ``A`` and free slots ``B = depth - A`` are kept as of the cycle before,
    as ``A - 1``, ``A - 2``, ``B - 1`` and ``B - 2`` (sign bits: ``A >= 1``, ``A >= 2``, ...),
    each stepped by the previous cycle's write minus read, kept in a register. Today's counts
    are those plus that step, so whether a beat can be read (``A + step >= 1``) and whether one
    can be written (``B - step >= 1``) are a choice of one sign bit by the step's two bits.

    Parameters
    ----------
    params : FifoParams

    Attributes
    ----------
    i : In(stream)
    o : Out(stream)
    """

    def __init__(self, params: FifoParams):
        if not isinstance(params, FifoParams):
            raise TypeError(f"params must be FifoParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.lanes)
        super().__init__({"i": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        wr, rd = block_ram(m, "buffer", p.bits * p.lanes, p.depth)
        counts = signed(max(2, p.depth.bit_length() + 1))
        stored_1 = Signal(counts, name="stored_less_1", init=-1)
        stored_2 = Signal(counts, name="stored_less_2", init=-2)
        room_1 = Signal(counts, name="room_less_1", init=p.depth - 1)
        room_2 = Signal(counts, name="room_less_2", init=p.depth - 2)
        # The previous cycle's write minus read, registered as one signed number: the adders
        # then take their addend straight from flip-flops.
        step = Signal(signed(2), name="step")
        m.d.sync += [stored_1.eq(stored_1 + step), stored_2.eq(stored_2 + step),
                     room_1.eq(room_1 - step), room_2.eq(room_2 - step)]

        # step is 0b00 (0), 0b01 (+1) or 0b11 (-1): its bit 0 says it moved, bit 1 which way.
        moved, fell = step[0], step[1]

        def at_least_one(less_1, less_2, lost):
            # The count as of today >= 1, for a count held as count - 1 and count - 2 as of
            # yesterday: a choice of sign bits by the step's bits, no arithmetic (a negated step
            # measured a carry chain). It gained one (1), kept (count >= 1) or lost one (>= 2).
            return Mux(~moved, ~less_1[-1], Mux(lost, ~less_2[-1], 1))

        can_read, out_valid = Signal(), Signal()
        write, read = Signal(), Signal()
        m.d.comb += [
            self.i.ready.eq(at_least_one(room_1, room_2, lost=~fell)),
            can_read.eq(at_least_one(stored_1, stored_2, lost=fell)),
            write.eq(self.i.valid & self.i.ready),
            read.eq(can_read & (~out_valid | self.o.ready)),
        ]
        m.d.sync += step.eq(write - read)
        wp = wrapping_counter(m, "write_ptr", p.depth, write)
        rp = wrapping_counter(m, "read_ptr", p.depth, read)
        m.d.comb += [
            wr.addr.eq(wp.value), wr.data.eq(self.i.payload.as_value()), wr.en.eq(write),
            rd.addr.eq(rp.value), rd.en.eq(read),
            self.o.payload.eq(rd.data), self.o.valid.eq(out_valid),
        ]
        with m.If(~out_valid | self.o.ready):
            m.d.sync += out_valid.eq(read)
        return m

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(frame, dtype=np.int64)

    def cycles_per_frame(self) -> int:
        return self.params.frame_beats

    def latency(self) -> int:
        return 2  # the RAM write, then its read register

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """The RAM via memory_resources; per pointer an incrementer and its flags, per count
        (four) an adder; the read register in flip-flops unless a block RAM holds it."""
        p = self.params
        width = p.bits * p.lanes
        storage = memory_resources(width, p.depth, family)
        pointer = max(1, (p.depth - 1).bit_length())
        count = max(2, p.depth.bit_length() + 1)
        logic = 2 * pointer + 4 * count
        read_register = 0 if storage.bram18 else width
        return storage + Resources(lut=logic + 4, ff=logic + 7 + read_register)
