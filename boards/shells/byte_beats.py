"""Bytes to AXI4-Stream beats and back, least significant byte first.

A beat of ``tdata`` ``8 * width`` bits travels over a byte link as ``width`` bytes, byte 0
holding ``tdata[7:0]``: the order of :func:`boards.host.frames.beats_to_bytes`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BytesToBeats", "BeatsToBytes"]


def _check_width(width) -> int:
    if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(f"width must be a positive int of bytes per beat, not {width!r}")
    return width


class BytesToBeats(wiring.Component):
    """Collects ``width`` bytes into one beat.

    Parameters
    ----------
    width : int
        Bytes per beat.

    Attributes
    ----------
    i : In(stream.Signature(8))
    o : Out(stream.Signature(8 * width))
        A byte is taken in the cycle the previous beat leaves, so a stream of bytes passes at
        one byte per cycle.
    """

    def __init__(self, width: int):
        self.width = _check_width(width)
        super().__init__({"i": In(stream.Signature(8)),
                          "o": Out(stream.Signature(8 * self.width))})

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self.width + 1))
        full = count == self.width
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(0)
        m.d.comb += [self.o.valid.eq(full), self.i.ready.eq(~full | self.o.ready)]
        with m.If(self.i.valid & self.i.ready):
            # Bytes enter at the top and move down: after `width` of them byte 0 is lowest.
            m.d.sync += self.o.payload.eq((self.i.payload << (8 * self.width - 8))
                                          | (self.o.payload >> 8))
            m.d.sync += count.eq(Mux(full, 1, count + 1))
        return m


class BeatsToBytes(wiring.Component):
    """Sends one beat as ``width`` bytes, byte 0 first.

    Parameters
    ----------
    width : int
        Bytes per beat.

    Attributes
    ----------
    i : In(stream.Signature(8 * width))
        Taken when its last byte leaves (or at once when idle).
    o : Out(stream.Signature(8))
    """

    def __init__(self, width: int):
        self.width = _check_width(width)
        super().__init__({"i": In(stream.Signature(8 * self.width)),
                          "o": Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(8 * self.width)
        left = Signal(range(self.width + 1))
        last = left == 1
        m.d.comb += [self.o.payload.eq(shift[:8]), self.o.valid.eq(left != 0),
                     self.i.ready.eq((left == 0) | (last & self.o.ready))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [shift.eq(shift >> 8), left.eq(left - 1)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shift.eq(self.i.payload), left.eq(self.width)]
        return m
