"""What every processing element provides besides its RTL."""

from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.hdl import signed

from .resources import DeviceFamily, Resources

__all__ = ["ProcessingElement", "beat_signature"]


def beat_signature(bits: int, lanes: int) -> stream.Signature:
    """A stream of beats of ``lanes`` signed ``bits``-bit values (docs/streams.md)."""
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits must be a positive int, not {bits!r}")
    if not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes must be a positive int, not {lanes!r}")
    return stream.Signature(data.ArrayLayout(signed(bits), lanes))


class ProcessingElement(wiring.Component):
    """Base class of the PE library: the RTL plus its three models.

    Subclasses implement all four methods below; the base raises rather than returning a
    made-up number, so a missing model is an error, never a silent zero.
    """

    def behaviour(self, *frames):
        """Numpy model: input frames (int64 arrays) to output frame(s), bit-exact."""
        raise NotImplementedError(f"{type(self).__name__} has no behaviour model")

    def cycles_per_frame(self) -> int:
        """Steady-state cycles between frames with no stalls (docs/streams.md)."""
        raise NotImplementedError(f"{type(self).__name__} has no cycle model")

    def latency(self) -> int:
        """Cycles from a frame's first input transfer to its first output transfer."""
        raise NotImplementedError(f"{type(self).__name__} has no latency model")

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """DSP, BRAM18, LUT and FF estimate on ``family``."""
        raise NotImplementedError(f"{type(self).__name__} has no resource model")
