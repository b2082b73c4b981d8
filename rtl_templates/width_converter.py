"""WidthConverter: re-fold a beat stream from one SIMD width to another, order kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Module, Signal
from amaranth.lib.wiring import In, Out

from .beats import beats_to_frame, frame_to_beats
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources

__all__ = ["WidthConverterParams", "WidthConverter"]


@dataclass(frozen=True)
class WidthConverterParams:
    """Shape of a :class:`WidthConverter`.

    Attributes
    ----------
    bits : int
        Bits per value.
    simd_in, simd_out : int
        Lanes of the input and output beats; one must be a multiple of the other (a general
        ratio would need an lcm-wide gearbox; chain two converters through the gcd instead).
    channels : int
        Channels per pixel, a multiple of both widths, so a beat never straddles two pixels.
    pixels : int
        Pixels per frame, for the cycle model.
    """

    bits: int
    simd_in: int
    simd_out: int
    channels: int
    pixels: int

    def __post_init__(self):
        for name in ("bits", "simd_in", "simd_out", "channels", "pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        wide, narrow = max(self.simd_in, self.simd_out), min(self.simd_in, self.simd_out)
        if wide % narrow:
            raise ValueError(f"simd_in={self.simd_in!r} and simd_out={self.simd_out!r}: one "
                             "must be a multiple of the other")
        if self.channels % wide:
            raise ValueError(f"channels={self.channels!r} is not a multiple of "
                             f"simd_in={self.simd_in!r} and simd_out={self.simd_out!r}")

    @property
    def ratio(self) -> int:
        """Narrow beats per wide beat."""
        return max(self.simd_in, self.simd_out) // min(self.simd_in, self.simd_out)

    @property
    def narrowing(self) -> bool:
        return self.simd_in > self.simd_out


class WidthConverter(ProcessingElement):
    """Turn beats of ``simd_in`` lanes into beats of ``simd_out`` lanes, values in stream order.

    Narrowing (``simd_in = k * simd_out``): a register holds one input beat and a counter
    sends its ``k`` slices, lowest lanes first; the next input loads in the cycle the last
    slice leaves, so the output is busy every cycle. Latency 1.

    Widening (``simd_out = k * simd_in``): ``k - 1`` input beats collect in a register; the
    ``k``-th goes with them straight into the output register, so the input is busy every
    cycle while the output register drains. Latency ``k``.

    In both, ``i.ready`` depends on ``o.ready`` through one gate (like a pipeline register),
    never the other way round.

    Parameters
    ----------
    params : WidthConverterParams
    """

    def __init__(self, params: WidthConverterParams):
        if not isinstance(params, WidthConverterParams):
            raise TypeError(f"params must be WidthConverterParams, not {params!r}")
        self.params = params
        super().__init__({"i": In(beat_signature(params.bits, params.simd_in)),
                          "o": Out(beat_signature(params.bits, params.simd_out))})

    def elaborate(self, platform):
        m = Module()
        if self.params.narrowing:
            self._narrow(m)
        else:
            self._widen(m)
        return m

    def _narrow(self, m: Module) -> None:
        p, k = self.params, self.params.ratio
        slice_bits = p.bits * p.simd_out
        held = Signal(p.bits * p.simd_in)
        have = Signal()
        piece = Signal(range(k))
        last = Signal()
        slices = Array(held[t * slice_bits:(t + 1) * slice_bits] for t in range(k))
        m.d.comb += [
            last.eq(piece == k - 1),
            self.o.valid.eq(have),
            self.o.payload.eq(slices[piece]),
            self.i.ready.eq(~have | (last & self.o.ready)),
        ]
        with m.If(self.o.valid & self.o.ready):
            with m.If(last):
                m.d.sync += [piece.eq(0), have.eq(0)]
            with m.Else():
                m.d.sync += piece.eq(piece + 1)
        with m.If(self.i.valid & self.i.ready):  # after the above: a load wins over "empty"
            m.d.sync += [held.eq(self.i.payload.as_value()), have.eq(1)]

    def _widen(self, m: Module) -> None:
        p, k = self.params, self.params.ratio
        beat_bits = p.bits * p.simd_in
        early = [Signal(beat_bits, name=f"early{t}") for t in range(k - 1)]
        fill = Signal(range(k))
        held = Signal(p.bits * p.simd_out)
        have = Signal()
        completing = Signal()
        m.d.comb += [
            completing.eq(fill == k - 1),
            self.o.valid.eq(have),
            self.o.payload.eq(held),
            self.i.ready.eq(~completing | ~have | self.o.ready),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += have.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(completing):
                m.d.sync += [held.eq(Cat(*early, self.i.payload.as_value())), have.eq(1)]
                if k > 1:
                    m.d.sync += fill.eq(0)
            with m.Else():
                m.d.sync += fill.eq(fill + 1)
                for t in range(k - 1):
                    with m.If(fill == t):
                        m.d.sync += early[t].eq(self.i.payload.as_value())

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        # Values keep their place in the frame; only the grouping into beats changes, which
        # the testbench applies with frame_to_beats(.., simd_out).
        frame = np.asarray(frame, dtype=np.int64)
        return beats_to_frame(frame_to_beats(frame, self.params.simd_in), frame.shape)

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.pixels * p.channels // min(p.simd_in, p.simd_out)  # the narrow side is busy

    def latency(self) -> int:
        return 1 if self.params.narrowing else self.params.ratio

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        # Narrowing: FF for one input beat, counter and flag; LUT: a k:1 mux per output bit,
        # ceil(k / 4) LUT6 each, plus a few for the handshake.
        # Widening: FF for k - 1 early beats and the output beat (the data needs no mux, only
        # clock enables: one LUT per early slot), counter and flag.
        p, k = self.params, self.params.ratio
        cbits = max(1, (k - 1).bit_length())
        if p.narrowing:
            return Resources(lut=p.bits * p.simd_out * -(-k // 4) + cbits + 3,
                             ff=p.bits * p.simd_in + cbits + 1)
        return Resources(lut=k + cbits + 3,
                         ff=p.bits * (k - 1) * p.simd_in + p.bits * p.simd_out + cbits + 1)
