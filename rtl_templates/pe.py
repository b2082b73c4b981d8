"""What every processing element provides besides its RTL."""

from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.hdl import Module, Signal, signed

from .resources import DeviceFamily, Resources

__all__ = ["ProcessingElement", "beat_signature"]


def beat_signature(bits: int, lanes: int) -> stream.Signature:
    """A stream of beats of ``lanes`` signed ``bits``-bit values (docs/streams.md)."""
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits must be a positive int, not {bits!r}")
    if not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"lanes must be a positive int, not {lanes!r}")
    return stream.Signature(data.ArrayLayout(signed(bits), lanes))


def control_pipeline(m: Module, start: tuple, names: tuple[str, ...], labels, en) -> list[tuple]:
    """``start`` (a PE's control values at one stage) and its copies registered once per
    label in ``labels`` while ``en`` is high, each copy named ``name + label``: the valid,
    first, last and group bits that travel beside a datapath's stages."""
    chain = [tuple(start)]
    for label in labels:
        regs = tuple(Signal.like(v, name=f"{n}{label}") for v, n in zip(chain[-1], names))
        with m.If(en):
            m.d.sync += [r.eq(v) for r, v in zip(regs, chain[-1])]
        chain.append(regs)
    return chain


# The attribute holding a PE's signature until its ports are first used.
_PENDING = "_pe_pending_signature"


class ProcessingElement(wiring.Component):
    """Base class of the PE library: the RTL plus its three models.

    Subclasses implement all four methods below; the base raises rather than returning a
    made-up number, so a missing model is an error, never a silent zero.

    The ports (the signature's Signals) are created when first used: by elaboration, by
    ``signature``, or by reading a port. The folding search builds thousands of PEs only to
    ask their cycle and resource models, and creating a stream port's Signals was most of an
    estimate's time (EfficientNet-B0: 28 of 53 s).
    """

    def __init__(self, signature=None):
        self.__dict__[_PENDING] = signature

    def _create_ports(self) -> None:
        if _PENDING in self.__dict__:
            wiring.Component.__init__(self, self.__dict__.pop(_PENDING))

    def __getattr__(self, name):
        # Only called for a missing attribute: a port (or anything else) before the ports
        # exist creates them and looks again.
        if _PENDING in self.__dict__:
            self._create_ports()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def signature(self):
        self._create_ports()
        return super().signature

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
