"""SlidingWindow: a block-RAM line buffer turning a pixel stream into KxK window beats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from dataflows.layers import window_output_size

from .beats import WindowOrder, window_beats
from .rom import block_ram
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources, memory_resources

__all__ = ["SlidingWindowParams", "SlidingWindow"]


def _positive_int(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")


@dataclass(frozen=True)
class SlidingWindowParams:
    """Shape of a :class:`SlidingWindow`.

    Attributes
    ----------
    bits : int
        Width of one signed value.
    channels, height, width : int
        Input frame shape (H, W, C).
    kernel : int
        Window side K, one of 1, 3, 5, 7.
    stride : int
        1 or 2.
    padding : int or (top, left, bottom, right)
        Padding around the frame; each side at most ``kernel - 1``. An int pads all sides.
    ceil_mode : bool
        Output size rounded up as PyTorch's ``ceil_mode`` (the extra border holds ``pad_value``).
    simd : int
        Lanes per beat; divides ``channels``.
    order : WindowOrder
        Order of the taps of one window in the output stream.
    pad_value : int
        Value of the padding (0 for convolutions, the type minimum for max pooling).

    Raises
    ------
    ValueError
        On any value out of range; the message quotes it.
    """

    bits: int
    channels: int
    height: int
    width: int
    kernel: int
    stride: int = 1
    padding: int | tuple[int, int, int, int] = 0
    ceil_mode: bool = False
    simd: int = 1
    order: WindowOrder = WindowOrder.TAP_MAJOR
    pad_value: int = 0

    def __post_init__(self):
        for name in ("bits", "channels", "height", "width", "simd"):
            _positive_int(name, getattr(self, name))
        if self.kernel not in (1, 3, 5, 7) or isinstance(self.kernel, bool):
            raise ValueError(f"kernel must be 1, 3, 5 or 7, not {self.kernel!r}")
        if self.stride not in (1, 2) or isinstance(self.stride, bool):
            raise ValueError(f"stride must be 1 or 2, not {self.stride!r}")
        padding = self.padding
        if isinstance(padding, int) and not isinstance(padding, bool):
            padding = (padding,) * 4
        if (not isinstance(padding, (tuple, list)) or len(padding) != 4
                or any(not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < self.kernel
                       for p in padding)):
            raise ValueError(f"padding must be an int or (top, left, bottom, right) of ints in "
                             f"[0, kernel - 1 = {self.kernel - 1}], not {self.padding!r}")
        object.__setattr__(self, "padding", tuple(padding))
        if not isinstance(self.ceil_mode, bool):
            raise ValueError(f"ceil_mode must be a bool, not {self.ceil_mode!r}")
        if self.channels % self.simd:
            raise ValueError(f"simd {self.simd!r} does not divide channels {self.channels!r}")
        if not isinstance(self.order, WindowOrder):
            raise ValueError(f"order must be a WindowOrder, not {self.order!r}")
        lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        if not isinstance(self.pad_value, int) or not lo <= self.pad_value <= hi:
            raise ValueError(f"pad_value must be an int in [{lo}, {hi}], not {self.pad_value!r}")
        pt, pl, pb, pr = self.padding
        if self.height + pt + pb < self.kernel or self.width + pl + pr < self.kernel:
            raise ValueError(f"kernel {self.kernel} is larger than the padded "
                             f"{self.height}x{self.width} frame with padding {self.padding!r}")

    @property
    def groups(self) -> int:
        """Beats per input pixel (channel groups of ``simd`` lanes)."""
        return self.channels // self.simd

    @property
    def out_height(self) -> int:
        pt, _, pb, _ = self.padding
        return window_output_size(self.height, self.kernel, self.stride, pt, pb, self.ceil_mode)

    @property
    def out_width(self) -> int:
        _, pl, _, pr = self.padding
        return window_output_size(self.width, self.kernel, self.stride, pl, pr, self.ceil_mode)

    @property
    def passthrough(self) -> bool:
        """A 1x1 window at stride 1 is the input stream itself."""
        return self.kernel == 1 and self.stride == 1

    def row_start(self, oy: int) -> int:
        """First input row (may be negative, in the padding) of output row ``oy``."""
        return oy * self.stride - self.padding[0]

    def rows_needed(self, oy: int) -> int:
        """Input rows output row ``oy`` reads, counted from its first row inside the frame."""
        r0 = self.row_start(oy)
        return min(self.height - 1, r0 + self.kernel - 1) - max(0, r0) + 1

    @property
    def row_slots(self) -> int:
        """Frame rows the line buffer holds.

        ``kernel + stride`` lets the writer fill the next output row's new input rows while the
        current one is read. At a frame boundary the buffer must also hold the rows still in use
        by the last output row together with the next frame's first rows, so frames follow each
        other without a gap; with "same" padding that is no more than ``kernel + stride``.
        """
        last_rows = self.height - max(0, self.row_start(self.out_height - 1))
        return max(self.kernel + self.stride, last_rows + self.rows_needed(0))


class SlidingWindow(ProcessingElement):
    """Line buffer producing, for every output pixel, its KxK window as beats.

    Input ``i`` carries the (height, width, channels) frame as beats of ``simd`` channels
    (:func:`rtl_templates.beats.frame_to_beats` order); output ``o`` carries every output
    pixel's window, output pixels row-major, taps in ``order``
    (:func:`rtl_templates.beats.window_beats`), padding positions as ``pad_value``.

    Design: a block RAM holds ``row_slots`` frame rows, one word per (row slot, x, channel
    group). A writer stores incoming beats row after row into the slots in turn; it stalls only
    when every slot holds a row still needed. A reader walks (output row, output column, taps)
    and starts an output row once all the frame rows it needs are complete, so a row is read
    only after it is fully written and released once no later window needs it. The reader is a
    two-stage pipeline (address, then the RAM's output register, held under backpressure), so it
    emits one beat per cycle, without bubbles between pixels, rows or frames. A 1x1 window at
    stride 1 is a plain wire.

    Parameters
    ----------
    params : SlidingWindowParams

    Attributes
    ----------
    i : In(stream)
        Input beats, ``simd`` lanes of ``bits`` bits.
    o : Out(stream)
        Window beats, same layout.
    """

    def __init__(self, params: SlidingWindowParams):
        if not isinstance(params, SlidingWindowParams):
            raise TypeError(f"params must be SlidingWindowParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})

    # -- RTL -----------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        p = self.params
        if p.passthrough:
            m.d.comb += [
                self.o.payload.eq(self.i.payload),
                self.o.valid.eq(self.i.valid),
                self.i.ready.eq(self.o.ready),
            ]
            return m

        k, s, g = p.kernel, p.stride, p.groups
        pt, pl, _, _ = p.padding
        slots, row_words = p.row_slots, p.width * p.groups
        width = p.bits * p.simd
        wr, rd = block_ram(m, "buffer", width, slots * row_words)

        # Rows written minus rows released. It goes negative when the reader releases rows no
        # window uses (skipped by the stride, or cut off by floor rounding) before they arrive.
        coord = signed(max(p.height, p.width, slots).bit_length() + 4)
        occupied = Signal(coord)

        # Writer: fills slot after slot, a row at a time; frames need no special case.
        w_slot = Signal(range(slots))
        w_word = Signal(range(row_words))
        row_done = Signal()
        m.d.comb += [
            self.i.ready.eq(occupied < slots),
            wr.addr.eq(w_slot * row_words + w_word),
            wr.data.eq(self.i.payload.as_value()),
            wr.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            with m.If(w_word == row_words - 1):
                m.d.comb += row_done.eq(1)
                m.d.sync += [w_word.eq(0), w_slot.eq(Mux(w_slot == slots - 1, 0, w_slot + 1))]
            with m.Else():
                m.d.sync += w_word.eq(w_word + 1)

        # Reader counters: output row start r0 = oy*s - pt and column start c0 = ox*s - pl run
        # as signed registers; the slot of the first in-frame row of the current output row is
        # base_slot.
        oy = Signal(range(p.out_height))
        ox = Signal(range(p.out_width))
        r0 = Signal(coord, init=-pt)
        c0 = Signal(coord, init=-pl)
        base_slot = Signal(range(slots))
        ky, kx, cg = Signal(range(k)), Signal(range(k)), Signal(range(g))
        if p.order is WindowOrder.TAP_MAJOR:
            taps = [(cg, g), (kx, k), (ky, k)]  # innermost first
        else:
            taps = [(kx, k), (ky, k), (cg, g)]

        base = Mux(r0 < 0, 0, r0)
        hi = Mux(r0 + (k - 1) > p.height - 1, p.height - 1, r0 + (k - 1))
        need = Signal(coord)
        m.d.comb += need.eq(hi - base + 1)
        ok = Signal()
        m.d.comb += ok.eq(occupied >= need)

        iy = Signal(coord)
        ix = Signal(coord)
        offset = Signal(coord)
        slot_sum = Signal(range(2 * slots + k))
        slot = Signal(range(slots))
        pad = Signal()
        m.d.comb += [
            iy.eq(r0 + ky),
            ix.eq(c0 + kx),
            pad.eq((iy < 0) | (iy >= p.height) | (ix < 0) | (ix >= p.width)),
            offset.eq(iy - base),
            slot_sum.eq(base_slot + offset[:slot_sum.shape().width]),
            slot.eq(Mux(slot_sum >= slots, slot_sum - slots, slot_sum)),
        ]

        # Stage B is the RAM output register plus valid and pad flags; it loads whenever it is
        # empty or its beat leaves, so reads overlap transfers and backpressure holds it.
        valid_b = Signal()
        pad_b = Signal()
        advance = Signal()
        issue = Signal()
        m.d.comb += [
            advance.eq(~valid_b | self.o.ready),
            issue.eq(advance & ok),
            rd.en.eq(advance),
            rd.addr.eq(Mux(pad, 0, slot * row_words + ix * g + cg)),
        ]
        with m.If(advance):
            m.d.sync += [valid_b.eq(ok), pad_b.eq(pad)]

        pad_word = sum((p.pad_value & ((1 << p.bits) - 1)) << (lane * p.bits)
                       for lane in range(p.simd))
        m.d.comb += [
            self.o.valid.eq(valid_b),
            self.o.payload.eq(Mux(pad_b, Const(pad_word, width), rd.data)),
        ]

        # Advance the tap counters, then the pixel, then the row; a finished output row
        # releases the frame rows the next one no longer reads (all remaining ones at the end
        # of the frame).
        last_tap = Signal()
        m.d.comb += last_tap.eq(Cat(*(sig == lim - 1 for sig, lim in taps)).all())
        release = Signal(coord)
        row_end = Signal()
        with m.If(issue):
            carry = Const(1)
            for sig, lim in taps:  # an odometer, innermost first
                with m.If(carry):
                    m.d.sync += sig.eq(Mux(sig == lim - 1, 0, sig + 1))
                carry = carry & (sig == lim - 1)
            with m.If(last_tap):
                with m.If(ox == p.out_width - 1):
                    m.d.sync += [ox.eq(0), c0.eq(-pl)]
                    m.d.comb += row_end.eq(1)
                    with m.If(oy == p.out_height - 1):
                        m.d.sync += [oy.eq(0), r0.eq(-pt)]
                        m.d.comb += release.eq(p.height - base)
                    with m.Else():
                        next_r0 = r0 + s
                        m.d.sync += [oy.eq(oy + 1), r0.eq(next_r0)]
                        m.d.comb += release.eq(Mux(next_r0 < 0, 0, next_r0) - base)
                with m.Else():
                    m.d.sync += [ox.eq(ox + 1), c0.eq(c0 + s)]

        new_base = Signal(range(2 * slots + 1))
        m.d.comb += new_base.eq(base_slot + release[:new_base.shape().width])
        with m.If(row_end):
            m.d.sync += base_slot.eq(Mux(new_base >= slots, new_base - slots, new_base))
        m.d.sync += occupied.eq(occupied + row_done - Mux(row_end, release, 0))
        return m

    # -- models --------------------------------------------------------------------------------

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        """Window beats of one (height, width, channels) frame: an (n, simd) int64 array."""
        p = self.params
        frame = np.asarray(frame, dtype=np.int64)
        if frame.shape != (p.height, p.width, p.channels):
            raise ValueError(f"frame shape must be {(p.height, p.width, p.channels)}, "
                             f"not {frame.shape!r}")
        return window_beats(frame, (p.kernel,) * 2, (p.stride,) * 2, p.padding, p.simd,
                            p.order, p.ceil_mode, p.pad_value)

    def output_beats(self) -> int:
        """Output beats per frame."""
        p = self.params
        return p.out_height * p.out_width * p.kernel ** 2 * p.groups

    def input_beats(self) -> int:
        """Input beats per frame."""
        p = self.params
        return p.height * p.width * p.groups

    def cycles_per_frame(self) -> int:
        """The busier side sets the pace: one beat per cycle on it, no gaps between frames.

        The writer never waits for the reader (``row_slots`` leaves room for the next output
        row's, and the next frame's, rows) and the reader never waits for the writer once the
        window side outweighs the input side, as it does for every K>1 layer.
        """
        return max(self.output_beats(), self.input_beats())

    def latency(self) -> int:
        """The first output row waits for its rows (complete), then one cycle to issue the read
        and one in the RAM output register; the 1x1 stride-1 wire has none."""
        p = self.params
        if p.passthrough:
            return 0
        return p.rows_needed(0) * p.width * p.groups + 1

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Line buffer RAM plus counters and the address/pad logic.

        LUT: about two per counter bit (increment, compare) for the ~12 reader/writer
        counters, one per address bit for the slot*row+x*groups+group adders, and one per
        output bit for the pad mux. FF: the counters and the RAM output register's flags.
        """
        p = self.params
        if p.passthrough:
            return Resources()
        width = p.bits * p.simd
        depth = p.row_slots * p.width * p.groups
        coord = max(p.height, p.width, p.row_slots).bit_length() + 4
        addr = max(1, (depth - 1).bit_length())
        counter_bits = 6 * coord + 2 * max(1, (p.kernel - 1).bit_length()) + 2 * addr
        lut = 2 * counter_bits + 2 * addr + width
        ff = counter_bits + 2
        return memory_resources(width, depth, family) + Resources(lut=lut, ff=ff)
