"""Stream plumbing: Fork (one stream to n), Concat (channel concatenation), Split (channel split).

None of these touch values; they route beats. All three are combinational on the data path
(latency 0): a register stage would only add a cycle, and the handshake logic is a handful of
gates. Fork keeps one flag per output so that each output takes a beat exactly once
(FINN/LiteX style) instead of coupling every output's ``valid`` to every other output's
``ready``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib.wiring import In, Out

from .counter import wrapping_counter
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources

__all__ = ["ForkParams", "Fork", "ConcatParams", "Concat", "SplitParams", "Split"]


def _check_positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")


def _check_fold(name: str, channels: int, simd: int) -> None:
    if channels % simd:
        raise ValueError(f"{name}={channels!r} is not a multiple of simd={simd!r}")


def _counter_bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def _track_phase(m: Module, first_part: Signal, first_beats: int, total: int,
                 transfer: Signal) -> None:
    """Keep ``first_part`` (a register, init 1) high for the first ``first_beats`` of every
    ``total`` transfers: set from a counter's registered flags, not compared after it."""
    count = wrapping_counter(m, "count", total, transfer)
    with m.If(transfer):
        m.d.sync += first_part.eq(Mux(count.last, 1,
                                      Mux(count.value == first_beats - 1, 0, first_part)))


@dataclass(frozen=True)
class ForkParams:
    """Shape of a :class:`Fork`.

    Attributes
    ----------
    bits, simd : int
        Beat layout: ``simd`` signed values of ``bits`` bits.
    channels : int
        Channels per pixel (a multiple of ``simd``), for the cycle model.
    pixels : int
        Pixels per frame, for the cycle model.
    outputs : int
        Number of copies, at least 2; ports ``o0`` … ``o{outputs-1}``.
    """

    bits: int
    simd: int
    channels: int
    pixels: int
    outputs: int = 2

    def __post_init__(self):
        for name in ("bits", "simd", "channels", "pixels"):
            _check_positive(name, getattr(self, name))
        _check_fold("channels", self.channels, self.simd)
        if not isinstance(self.outputs, int) or self.outputs < 2:
            raise ValueError(f"outputs must be an int of at least 2, not {self.outputs!r}")

    @property
    def frame_beats(self) -> int:
        return self.pixels * self.channels // self.simd


class Fork(ProcessingElement):
    """Copy stream ``i`` to every output ``o0`` … ``o{n-1}``.

    Each output presents the input beat until it takes it, then a registered "taken" flag hides
    the beat from that output; the input advances once every output has taken (or is taking)
    it. So a stalled output never blocks the others from taking the current beat, and no
    output's ``valid`` depends on another output's ``ready``.

    Parameters
    ----------
    params : ForkParams
    """

    def __init__(self, params: ForkParams):
        if not isinstance(params, ForkParams):
            raise TypeError(f"params must be ForkParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        members = {"i": In(sig)}
        members.update({f"o{k}": Out(sig) for k in range(params.outputs)})
        super().__init__(members)

    @property
    def outs(self) -> list:
        return [getattr(self, f"o{k}") for k in range(self.params.outputs)]

    def elaborate(self, platform):
        m = Module()
        outs = self.outs
        taken = [Signal(name=f"taken{k}") for k in range(len(outs))]
        done = [Signal(name=f"done{k}") for k in range(len(outs))]
        for o, t, d in zip(outs, taken, done):
            m.d.comb += [
                o.payload.eq(self.i.payload),
                o.valid.eq(self.i.valid & ~t),
                d.eq(t | o.ready),
            ]
        m.d.comb += self.i.ready.eq(Cat(*done).all())
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [t.eq(0) for t in taken]
        with m.Else():
            for o, t in zip(outs, taken):
                with m.If(o.valid & o.ready):
                    m.d.sync += t.eq(1)
        return m

    def behaviour(self, frame: np.ndarray) -> tuple[np.ndarray, ...]:
        frame = np.asarray(frame, dtype=np.int64)
        return tuple(frame.copy() for _ in range(self.params.outputs))

    def cycles_per_frame(self) -> int:
        return self.params.frame_beats

    def latency(self) -> int:
        return 0  # outputs see the input beat in the cycle it arrives

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        # Per output: a taken flag (FF) and one LUT for its valid and its done term; the AND of
        # the done terms folds into ceil(n/5) LUT6 more (the sixth input chains).
        n = self.params.outputs
        return Resources(lut=n + (n + 4) // 5, ff=n)


@dataclass(frozen=True)
class ConcatParams:
    """Shape of a :class:`Concat`.

    Attributes
    ----------
    bits, simd : int
        Beat layout of all three streams.
    channels_a, channels_b : int
        Channels per pixel of ``a`` and ``b``, each a multiple of ``simd``.
    pixels : int
        Pixels per frame, for the cycle model.
    """

    bits: int
    simd: int
    channels_a: int
    channels_b: int
    pixels: int

    def __post_init__(self):
        for name in ("bits", "simd", "channels_a", "channels_b", "pixels"):
            _check_positive(name, getattr(self, name))
        _check_fold("channels_a", self.channels_a, self.simd)
        _check_fold("channels_b", self.channels_b, self.simd)

    @property
    def beats_a(self) -> int:
        return self.channels_a // self.simd

    @property
    def beats_b(self) -> int:
        return self.channels_b // self.simd


class Concat(ProcessingElement):
    """Concatenate the channels of ``a`` and ``b`` pixel by pixel into ``o``.

    For every pixel the output takes ``channels_a / simd`` beats from ``a``, then
    ``channels_b / simd`` beats from ``b``; a beat counter steers a 2:1 multiplexer and the
    handshakes. The stream not being read is stalled, so two branches forked from one stream
    (a Fire module's expand1x1 and expand3x3) need a FIFO on the branch with the smaller
    latency, deep enough for the difference in beats, or the fork upstream stalls them both.

    Parameters
    ----------
    params : ConcatParams
    """

    def __init__(self, params: ConcatParams):
        if not isinstance(params, ConcatParams):
            raise TypeError(f"params must be ConcatParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"a": In(sig), "b": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        from_a = Signal(init=1)
        transfer = Signal()
        m.d.comb += transfer.eq(self.o.valid & self.o.ready)
        _track_phase(m, from_a, p.beats_a, p.beats_a + p.beats_b, transfer)
        with m.If(from_a):
            m.d.comb += [
                self.o.payload.eq(self.a.payload),
                self.o.valid.eq(self.a.valid),
                self.a.ready.eq(self.o.ready),
            ]
        with m.Else():
            m.d.comb += [
                self.o.payload.eq(self.b.payload),
                self.o.valid.eq(self.b.valid),
                self.b.ready.eq(self.o.ready),
            ]
        return m

    def behaviour(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)],
                              axis=-1)

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.pixels * (p.beats_a + p.beats_b)

    def latency(self) -> int:
        return 0  # a beat of ``a`` passes straight through

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        # A 2:1 mux per payload bit (one LUT6 each, shared with nothing), the beat counter
        # (one FF and about one LUT per bit, its first/last flags and the phase register, each
        # set by a compare of a LUT per six counter bits) and a few LUTs for the handshakes.
        p = self.params
        cbits = _counter_bits(p.beats_a + p.beats_b)
        return Resources(lut=p.bits * p.simd + cbits + 2 * -(-cbits // 6) + 3, ff=cbits + 3)


@dataclass(frozen=True)
class SplitParams:
    """Shape of a :class:`Split`.

    Attributes
    ----------
    bits, simd : int
        Beat layout of all three streams.
    channels_0, channels_1 : int
        Channels per pixel going to ``o0`` (the first ones) and to ``o1`` (the rest); each a
        multiple of ``simd``.
    pixels : int
        Pixels per frame, for the cycle model.
    """

    bits: int
    simd: int
    channels_0: int
    channels_1: int
    pixels: int

    def __post_init__(self):
        for name in ("bits", "simd", "channels_0", "channels_1", "pixels"):
            _check_positive(name, getattr(self, name))
        _check_fold("channels_0", self.channels_0, self.simd)
        _check_fold("channels_1", self.channels_1, self.simd)

    @property
    def beats_0(self) -> int:
        return self.channels_0 // self.simd

    @property
    def beats_1(self) -> int:
        return self.channels_1 // self.simd


class Split(ProcessingElement):
    """Split the channels of ``i`` pixel by pixel: the first ``channels_0`` to ``o0``, the rest
    to ``o1`` (ShuffleNet V2's channel split).

    A beat counter routes each input beat to one output and takes that output's ``ready``; the
    other output sees nothing. So the PE itself never deadlocks: a stalled ``o1`` stops the
    input, and ``o0`` simply waits for the next pixel. What the graph around it must provide:
    when the two outputs are merged again (a Concat after a branch of latency ``L`` beats on
    ``o1``), the other branch needs a FIFO of at least ``L`` beats plus one pixel of ``o0``
    beats, else the Concat waits for ``o1`` while ``o0`` blocks the split.

    Parameters
    ----------
    params : SplitParams
    """

    def __init__(self, params: SplitParams):
        if not isinstance(params, SplitParams):
            raise TypeError(f"params must be SplitParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"i": In(sig), "o0": Out(sig), "o1": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        to_0 = Signal(init=1)
        transfer = Signal()
        _track_phase(m, to_0, p.beats_0, p.beats_0 + p.beats_1, transfer)
        m.d.comb += [
            transfer.eq(self.i.valid & self.i.ready),
            self.o0.payload.eq(self.i.payload),
            self.o1.payload.eq(self.i.payload),
        ]
        with m.If(to_0):
            m.d.comb += [self.o0.valid.eq(self.i.valid), self.i.ready.eq(self.o0.ready)]
        with m.Else():
            m.d.comb += [self.o1.valid.eq(self.i.valid), self.i.ready.eq(self.o1.ready)]
        return m

    def behaviour(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frame = np.asarray(frame, dtype=np.int64)
        c0 = self.params.channels_0
        return frame[..., :c0].copy(), frame[..., c0:].copy()

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.pixels * (p.beats_0 + p.beats_1)

    def latency(self, output: str = "o0") -> int:
        """Cycles to the first beat on ``output``: 0 to ``o0``, one pixel's ``o0`` beats to
        ``o1``."""
        if output not in ("o0", "o1"):
            raise ValueError(f"output must be 'o0' or 'o1', not {output!r}")
        return 0 if output == "o0" else self.params.beats_0

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        # No payload logic (both outputs wire to the input); the beat counter with its flags
        # and phase register (as Concat's) and the handshake steering.
        cbits = _counter_bits(self.params.beats_0 + self.params.beats_1)
        return Resources(lut=cbits + 2 * -(-cbits // 6) + 3, ff=cbits + 3)
