"""Fifo: a first-in first-out buffer between two streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import fifo
from amaranth.lib.wiring import In, Out

from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources, memory_resources

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
    """A buffered synchronous FIFO (``amaranth.lib.fifo.SyncFIFOBuffered``) on beat streams.

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
        m.submodules.buffer = buffer = fifo.SyncFIFOBuffered(width=p.bits * p.lanes, depth=p.depth)
        m.d.comb += [
            buffer.w_data.eq(self.i.payload.as_value()),
            buffer.w_en.eq(self.i.valid),
            self.i.ready.eq(buffer.w_rdy),
            self.o.payload.eq(buffer.r_data),
            self.o.valid.eq(buffer.r_rdy),
            buffer.r_en.eq(self.o.ready),
        ]
        return m

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        return np.asarray(frame, dtype=np.int64)

    def cycles_per_frame(self) -> int:
        return self.params.frame_beats

    def latency(self) -> int:
        return 2  # memory write, then the output register

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        p = self.params
        width = p.bits * p.lanes
        storage = memory_resources(width, p.depth, family)
        pointers = 2 * max(1, (p.depth - 1).bit_length()) + width  # plus the output register
        return storage + Resources(lut=2 * max(1, (p.depth - 1).bit_length()) + 4, ff=pointers)
