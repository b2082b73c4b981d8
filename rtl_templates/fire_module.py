"""FireModule: SqueezeNet's squeeze 1x1 conv, then parallel expand 1x1 and 3x3 convs, concatenated.

Composition (every arrow a stream of docs/streams.md)::

    i -> squeeze MVU (1x1, fused ReLU) -> Fork -o0-> expand1x1 MVU -> Fifo (bypass) -a-> Concat -> o
                                             \\-o1-> SlidingWindow (K3, pad 1, TAP_MAJOR)
                                                     -> expand3x3 MVU ---------------b-/

Why the bypass FIFO: Concat takes a pixel's expand1x1 beats, then its expand3x3 beats, and
stalls the stream it is not reading; the Fork moves a beat only when both branches take it. The
3x3 branch emits its first window of an output row only after the line buffer holds every frame
row that window reads (``rows_needed(0)`` rows, see :func:`bypass_pixels`), so while Concat
waits for that window the 1x1 branch must keep accepting those rows' pixels. A FIFO of
:func:`bypass_pixels` pixels on the expand1x1 output does that, with slack so the line buffer is
never starved (which keeps ``cycles_per_frame`` exact). The 3x3 branch needs no FIFO: its beats
of a pixel are always the later ones Concat reads, and its MVU's 2-entry output FIFO holds the
one beat that may wait while Concat reads the 1x1 beats of the same pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


from .beats import WindowOrder, beats_to_frame, frame_to_beats
from .fifo import Fifo, FifoParams
from .matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit, check_int
from .pe import ProcessingElement, beat_signature
from .plumbing import Concat, ConcatParams, Fork, ForkParams
from .resources import DeviceFamily, Resources
from .sliding_window import SlidingWindow, SlidingWindowParams

__all__ = ["FireParams", "FireModule", "conv_params", "bypass_pixels"]


def conv_params(qconv, *, bits: int, wbits: int, pe: int, simd: int,
                pixels: int) -> MatrixVectorParams:
    """:class:`MatrixVectorParams` of a quantized conv (:class:`dataflows.quantize.QConv`).

    The OHWI weight rows flatten in TAP_MAJOR order (ky, kx, channel), what the MVU reads.
    """
    w = np.asarray(qconv.weight)
    return MatrixVectorParams(in_bits=bits, out_bits=bits, weights=w.reshape(w.shape[0], -1),
                              bias=qconv.bias, requant=qconv.requant, wbits=wbits,
                              acc_bits=qconv.acc_bits, pe=pe, simd=simd, pixels=pixels)


def bypass_pixels(window: SlidingWindowParams, tail_latency: int, cycles_per_pixel: float) -> int:
    """Pixels a bypass FIFO around a line buffer must hold so the fork before it never stalls
    the windowed branch.

    ``pixels = rows_needed(0) * width + ceil(tail_latency / cycles_per_pixel) + 1``:

    * ``rows_needed(0) * width``: when the join waits for the first output pixel of a row, the
      line buffer must first receive every input row that pixel's window reads (for a 3x3
      window with padding 1, the current and the next row: ``2 * width`` pixels), and each of
      those pixels also enters the bypass;
    * ``ceil(tail_latency / cycles_per_pixel)``: pixels the join lags the line-buffer reader
      by (the pipeline after the window, e.g. the expand3x3 MVU), counted at the bottleneck's
      cycles per output pixel;
    * one pixel of slack for the pixel the join is currently reading.

    The in-flight capacity of the units on the bypass (an MVU's pipeline and output FIFO) is
    not counted, so this is conservative. Measured on the 6x6 stride-1 inverted residual test
    block (a bare FIFO on the skip path): below ``2 * width - 1`` = 11 pixels it deadlocks, at
    12-13 it runs but below full rate, from 14 on at full rate; the formula gives 16.
    """
    rows = window.rows_needed(0)
    return rows * window.width + math.ceil(tail_latency / cycles_per_pixel) + 1


@dataclass(frozen=True, eq=False)
class FireParams:
    """Shape, constants and folding of a :class:`FireModule`.

    Attributes
    ----------
    height, width : int
        Frame size (all three convs keep it: 1x1, and 3x3 with padding 1).
    squeeze, expand1x1, expand3x3 : MatrixVectorParams
        The three convs with their folding. ``squeeze.taps`` is the input channel count;
        ``expand1x1.taps == squeeze.cout`` and ``expand3x3.taps == 9 * squeeze.cout``. The
        squeeze output beats feed both expands and the line buffer, so
        ``expand1x1.simd == expand3x3.simd == squeeze.pe``; Concat joins beats of one width, so
        ``expand1x1.pe == expand3x3.pe``. Every unit's ``pixels`` is ``height * width``.

    Raises
    ------
    ValueError, TypeError
        On an inconsistent value; the message quotes it.
    """

    height: int
    width: int
    squeeze: MatrixVectorParams
    expand1x1: MatrixVectorParams
    expand3x3: MatrixVectorParams

    def __post_init__(self):
        check_int(self.height, "height")
        check_int(self.width, "width")
        for name in ("squeeze", "expand1x1", "expand3x3"):
            p = getattr(self, name)
            if not isinstance(p, MatrixVectorParams):
                raise TypeError(f"{name} must be MatrixVectorParams, not {p!r}")
            if p.pixels != self.pixels:
                raise ValueError(f"{name}.pixels must be height*width={self.pixels}, not {p.pixels!r}")
        sq, e1, e3 = self.squeeze, self.expand1x1, self.expand3x3
        if e1.taps != sq.cout:
            raise ValueError(f"expand1x1 must read squeeze's {sq.cout} channels, not {e1.taps!r}")
        if e3.taps != 9 * sq.cout:
            raise ValueError(f"expand3x3 must read 3x3 windows of {sq.cout} channels "
                             f"({9 * sq.cout} taps), not {e3.taps!r}")
        if e1.simd != sq.pe or e3.simd != sq.pe:
            raise ValueError(f"expand simd must equal squeeze pe={sq.pe}, not "
                             f"{e1.simd!r} (1x1) and {e3.simd!r} (3x3)")
        if e1.pe != e3.pe:
            raise ValueError(f"expand1x1 pe {e1.pe!r} and expand3x3 pe {e3.pe!r} must be equal")
        bits = {sq.out_bits, e1.in_bits, e3.in_bits}
        if len(bits) != 1 or e1.out_bits != e3.out_bits:
            raise ValueError(f"activation widths disagree: squeeze out {sq.out_bits!r}, expands "
                             f"in {e1.in_bits!r}/{e3.in_bits!r}, out {e1.out_bits!r}/{e3.out_bits!r}")

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def channels(self) -> int:
        """Input channels."""
        return self.squeeze.taps

    @property
    def out_channels(self) -> int:
        return self.expand1x1.cout + self.expand3x3.cout

    @classmethod
    def from_quantized(cls, qmodel, prefix: str, *, squeeze_pe: int, squeeze_simd: int,
                       expand_pe: int) -> "FireParams":
        """Params of the Fire module whose nodes are ``{prefix}/squeeze1x1``,
        ``{prefix}/expand1x1`` and ``{prefix}/expand3x3`` (the names of
        :mod:`dataflows.zoo.squeezenet`) in a :class:`~dataflows.quantize.QuantizedModel`.

        The expands' ``simd`` is ``squeeze_pe`` (they read the squeeze's beats); both use
        ``expand_pe``.
        """
        names = {k: f"{prefix}/{k}" for k in ("squeeze1x1", "expand1x1", "expand3x3")}
        shape = qmodel.model.out_shape(names["squeeze1x1"])
        h, w = shape.h, shape.w
        bits, wbits = qmodel.config.abits, qmodel.config.wbits

        def mk(name, pe, simd):
            return conv_params(qmodel.params[names[name]], bits=bits, wbits=wbits, pe=pe,
                               simd=simd, pixels=h * w)
        return cls(height=h, width=w, squeeze=mk("squeeze1x1", squeeze_pe, squeeze_simd),
                   expand1x1=mk("expand1x1", expand_pe, squeeze_pe),
                   expand3x3=mk("expand3x3", expand_pe, squeeze_pe))


class FireModule(ProcessingElement):
    """A SqueezeNet Fire module from the primitive PEs (see the module docstring).

    Parameters
    ----------
    params : FireParams

    Attributes
    ----------
    i : In(stream of ``squeeze.simd`` lanes)
        The (height, width, channels) input frame.
    o : Out(stream of ``expand pe`` lanes)
        Per pixel the expand1x1 channels, then the expand3x3 channels.
    squeeze, fork, expand1x1, window, expand3x3, bypass, concat : ProcessingElement
        The sub-PEs, for their models.
    """

    def __init__(self, params: FireParams):
        if not isinstance(params, FireParams):
            raise TypeError(f"params must be FireParams, not {params!r}")
        self.params = p = params
        sq, e1, e3 = p.squeeze, p.expand1x1, p.expand3x3
        bits = sq.out_bits
        self.squeeze = MatrixVectorUnit(sq)
        self.fork = Fork(ForkParams(bits=bits, simd=sq.pe, channels=sq.cout, pixels=p.pixels))
        self.expand1x1 = MatrixVectorUnit(e1)
        self.window = SlidingWindow(SlidingWindowParams(
            bits=bits, channels=sq.cout, height=p.height, width=p.width, kernel=3, stride=1,
            padding=1, simd=sq.pe, order=WindowOrder.TAP_MAJOR))
        self.expand3x3 = MatrixVectorUnit(e3)
        self.concat = Concat(ConcatParams(bits=e1.out_bits, simd=e1.pe, channels_a=e1.cout,
                                          channels_b=e3.cout, pixels=p.pixels))
        self._paced = [self.squeeze, self.fork, self.expand1x1, self.window, self.expand3x3,
                       self.concat]
        self.bypass_depth = max(2, e1.groups * bypass_pixels(
            self.window.params, self.expand3x3.latency(), self.cycles_per_frame() / p.pixels))
        self.bypass = Fifo(FifoParams(bits=e1.out_bits, lanes=e1.pe, depth=self.bypass_depth,
                                      frame_beats=p.pixels * e1.groups))
        super().__init__({"i": In(beat_signature(sq.in_bits, sq.simd)),
                          "o": Out(beat_signature(e1.out_bits, e1.pe))})

    def units(self) -> dict[str, ProcessingElement]:
        return {"squeeze": self.squeeze, "fork": self.fork, "expand1x1": self.expand1x1,
                "bypass": self.bypass, "window": self.window, "expand3x3": self.expand3x3,
                "concat": self.concat}

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units().items():
            m.submodules[name] = unit
        wiring.connect(m, wiring.flipped(self.i), self.squeeze.i)
        wiring.connect(m, self.squeeze.o, self.fork.i)
        wiring.connect(m, self.fork.o0, self.expand1x1.i)
        wiring.connect(m, self.expand1x1.o, self.bypass.i)
        wiring.connect(m, self.bypass.o, self.concat.a)
        wiring.connect(m, self.fork.o1, self.window.i)
        wiring.connect(m, self.window.o, self.expand3x3.i)
        wiring.connect(m, self.expand3x3.o, self.concat.b)
        wiring.connect(m, self.concat.o, wiring.flipped(self.o))
        return m

    # -- models -------------------------------------------------------------------------------
    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        """One (height, width, channels) frame to the (height, width, e1 + e3) output frame,
        composed of the sub-PEs' behaviour models."""
        p = self.params
        frame = np.asarray(frame, dtype=np.int64)
        if frame.shape != (p.height, p.width, p.channels):
            raise ValueError(f"frame shape must be {(p.height, p.width, p.channels)}, "
                             f"not {frame.shape!r}")
        sq = self.squeeze.behaviour(frame_to_beats(frame, p.squeeze.simd))
        s_frame = beats_to_frame(sq, (p.height, p.width, p.squeeze.cout))
        a = self.expand1x1.behaviour(frame_to_beats(s_frame, p.squeeze.pe))
        b = self.expand3x3.behaviour(self.window.behaviour(s_frame))
        return self.concat.behaviour(beats_to_frame(a, (p.height, p.width, p.expand1x1.cout)),
                                     beats_to_frame(b, (p.height, p.width, p.expand3x3.cout)))

    def cycles_per_frame(self) -> int:
        """The slowest sub-unit sets the pace; the composite adds no stall of its own (the
        bypass FIFO keeps the fork moving).

        Exact in steady state, i.e. between the first beats of frames ``k`` and ``k + 1`` for
        ``k >= 1``. The interval after the very first frame is longer: an empty module emits
        pixel 0's expand1x1 beats as soon as they exist (:meth:`latency`), while in steady
        state they wait behind the previous pixel's expand3x3 beats.
        """
        return max(u.cycles_per_frame() for u in self._paced)  # the bypass FIFO: <= concat

    def latency(self) -> int:
        """First input to first output: the first output beat is pixel 0's first expand1x1
        beat, so the path is squeeze, expand1x1 and the bypass FIFO (Fork and Concat are
        combinational). With the input at one beat per cycle the squeeze emits its ``k``-th
        beat at ``squeeze.latency() + k * squeeze.steps`` (a group every ``steps`` cycles); the
        expand1x1's first group reads pixel 0's ``squeeze.groups`` beats, then takes its
        pipeline. The 3x3 branch's beats of pixel 0 follow at :meth:`window_latency`."""
        sq = self.params.squeeze
        return (self.squeeze.latency() + (sq.groups - 1) * sq.steps + self.expand1x1.pipeline
                + self.bypass.latency())

    def window_latency(self) -> int:
        """First input to pixel 0's first expand3x3 beat leaving the 3x3 MVU.

        The squeeze emits its ``k``-th beat at ``squeeze.latency() + k * steps`` (input at one
        beat per cycle); the window needs ``rows_needed(0) * width`` pixels and emits as many
        cycles after the last of them as its own latency model has after its last needed beat;
        the 3x3 MVU then reads one window beat per cycle.
        """
        p, sq, w = self.params, self.params.squeeze, self.window.params
        last = w.rows_needed(0) * p.width * sq.groups - 1
        t_last = self.squeeze.latency() + last * sq.steps
        after_last = self.window.latency() - (w.rows_needed(0) * w.width * w.groups - 1)
        return t_last + after_last + self.expand3x3.latency()

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """The sum of the sub-PEs' resources (the composite adds only wires)."""
        total = Resources()
        for unit in self.units().values():
            total = total + unit.resources(family)
        return total
