"""SlidingWindow: a block-RAM line buffer turning a pixel stream into KxK window beats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib.wiring import In, Out

from dataflows.layers import window_output_size

from .address import scaled
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
        Lanes per input beat; divides ``channels``.
    order : WindowOrder
        Order of the taps of one window in the output stream.
    kx_lanes : int
        Horizontal taps per output beat; divides ``kernel``. Above 1, an output beat carries
        ``kx_lanes`` neighbouring pixels' channels (``kx_lanes * simd`` lanes, pixel-major), so
        it needs ``simd == channels`` and ``TAP_MAJOR`` order: the beat is then ``kx_lanes *
        channels`` consecutive taps of an OHWI weight row, and a convolution can fold its SIMD
        over the kernel's columns as well as its channels (a 7x7 kernel on 3 channels gets 3 or
        21 taps per cycle instead of at most 3).
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
    kx_lanes: int = 1

    def __post_init__(self):
        for name in ("bits", "channels", "height", "width", "simd", "kx_lanes"):
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
        if self.kernel % self.kx_lanes:
            raise ValueError(f"kx_lanes {self.kx_lanes!r} does not divide kernel {self.kernel}")
        if self.kx_lanes > 1:
            if self.simd != self.channels or self.order is not WindowOrder.TAP_MAJOR:
                raise ValueError(f"kx_lanes {self.kx_lanes!r} needs simd == channels "
                                 f"({self.channels}) and TAP_MAJOR order, not simd "
                                 f"{self.simd!r} and {self.order}")
            if self.width < self.kx_lanes:
                raise ValueError(f"kx_lanes {self.kx_lanes!r} exceeds the frame width "
                                 f"{self.width}")

    @property
    def groups(self) -> int:
        """Beats per input pixel (channel groups of ``simd`` lanes)."""
        return self.channels // self.simd

    @property
    def out_lanes(self) -> int:
        """Lanes per output beat."""
        return self.simd * self.kx_lanes

    def bank_columns(self, bank: int) -> tuple[int, int]:
        """``(first, count)``: line-buffer bank ``bank`` holds the frame columns at padded
        columns ``px = q * kx_lanes + bank`` (``px = x + left padding``) for ``q`` in
        ``first .. first + count - 1``."""
        n, pl = self.kx_lanes, self.padding[1]
        first = max(0, -((bank - pl) // n))            # ceil((pl - bank) / n)
        last = (pl + self.width - 1 - bank) // n
        return first, last - first + 1

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

    Design: block RAM holds ``row_slots`` frame rows, one word per (row slot, x, channel
    group), split into ``kx_lanes`` banks by padded column (:meth:`SlidingWindowParams.
    bank_columns`), so one read of every bank gives ``kx_lanes`` neighbouring pixels. A writer
    stores incoming beats row after row into the slots in turn; it stalls only when every slot
    holds a row still needed. A reader walks (output row, output column, taps) and starts an
    output row once all the frame rows it needs are complete, so a row is read only after it
    is fully written and released once no later window needs it. The reader is a two-stage
    pipeline (registered read addresses, then the RAMs' output registers, both held under
    backpressure; the banks' words rotated into tap order), so it emits one beat per cycle,
    without bubbles between pixels, rows or frames. A 1x1 window at stride 1 is a plain wire.

    Parameters
    ----------
    params : SlidingWindowParams

    Attributes
    ----------
    i : In(stream)
        Input beats, ``simd`` lanes of ``bits`` bits.
    o : Out(stream)
        Window beats, ``simd * kx_lanes`` lanes.
    """

    def __init__(self, params: SlidingWindowParams):
        if not isinstance(params, SlidingWindowParams):
            raise TypeError(f"params must be SlidingWindowParams, not {params!r}")
        self.params = params
        super().__init__({"i": In(beat_signature(params.bits, params.simd)),
                          "o": Out(beat_signature(params.bits, params.out_lanes))})

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

        k, s, g, n = p.kernel, p.stride, p.groups, p.kx_lanes
        pt, pl, _, _ = p.padding
        slots = p.row_slots
        width = p.bits * p.simd
        columns = [p.bank_columns(b) for b in range(n)]
        row_words = [count * g for _, count in columns]
        rams = [block_ram(m, "buffer" if n == 1 else f"buffer{b}", width, slots * row_words[b])
                for b in range(n)]

        # Rows written minus rows released, as the reader counts them (a row is released when
        # its last window is issued). It goes negative when the reader releases rows no window
        # uses (skipped by the stride, or cut off by floor rounding) before they arrive.
        # `held` is the writer's count: a released row's slot is free only once the read of
        # its last window has left stage A for the RAM.
        coord = signed(max(p.height, p.width + pl, slots).bit_length() + 4)
        occupied = Signal(coord)
        held = Signal(coord)

        # Writer: fills slot after slot, a row at a time; frames need no special case. The
        # padded column px = x + pl of the incoming pixel is kept as (px // n, px % n).
        w_slot = Signal(range(slots))
        w_q = Signal(range((pl + p.width) // n + 1), init=pl // n)
        w_bank = Signal(range(n), init=pl % n)
        w_cg = Signal(range(g))
        last_q, last_bank = divmod(pl + p.width - 1, n)
        take = Signal()
        row_done = Signal()
        m.d.comb += [self.i.ready.eq(held < slots), take.eq(self.i.valid & self.i.ready)]
        for b, (wr, _) in enumerate(rams):
            m.d.comb += [
                wr.addr.eq(scaled(w_slot, row_words[b]) + scaled(w_q - columns[b][0], g) + w_cg),
                wr.data.eq(self.i.payload.as_value()),
                wr.en.eq(take & (w_bank == b)),
            ]
        with m.If(take):
            with m.If(w_cg == g - 1):
                m.d.sync += w_cg.eq(0)
                with m.If((w_q == last_q) & (w_bank == last_bank)):
                    m.d.comb += row_done.eq(1)
                    m.d.sync += [w_q.eq(pl // n), w_bank.eq(pl % n),
                                 w_slot.eq(Mux(w_slot == slots - 1, 0, w_slot + 1))]
                with m.Elif(w_bank == n - 1):
                    m.d.sync += [w_bank.eq(0), w_q.eq(w_q + 1)]
                with m.Else():
                    m.d.sync += w_bank.eq(w_bank + 1)
            with m.Else():
                m.d.sync += w_cg.eq(w_cg + 1)

        # Reader counters: the output row start r0 = oy*s - pt runs as a signed register, the
        # output column's first padded column ox*s as (q0, b0) = divmod(ox*s, n); the slot of
        # the first in-frame row of the current output row is base_slot.
        oy = Signal(range(p.out_height))
        ox = Signal(range(p.out_width))
        r0 = Signal(coord, init=-pt)
        q0 = Signal(coord)
        b0 = Signal(range(n))
        base_slot = Signal(range(slots))
        ky, kxg, cg = Signal(range(k)), Signal(range(k // n)), Signal(range(g))
        if p.order is WindowOrder.TAP_MAJOR:
            taps = [(cg, g), (kxg, k // n), (ky, k)]  # innermost first
        else:
            taps = [(kxg, k), (ky, k), (cg, g)]

        # Per output row: its first in-frame row `base`, the rows it needs counted from there,
        # and the rows it releases when it ends, from tables over oy, registered as the row
        # starts: issuing then waits for one comparison, not for the row arithmetic (which,
        # done from r0 every cycle, was the longest path of a whole network on ECP5).
        rows = range(p.out_height)
        base_of = [max(0, p.row_start(y)) for y in rows]
        need_of = [p.rows_needed(y) for y in rows]
        release_of = [(p.height if y == p.out_height - 1 else max(0, p.row_start(y + 1)))
                      - base_of[y] for y in rows]
        base = Signal(coord, init=base_of[0])
        need = Signal(coord, init=need_of[0])
        release = Signal(coord, init=release_of[0])
        ok = Signal()
        m.d.comb += ok.eq(occupied >= need)

        iy = Signal(coord)
        offset = Signal(coord)
        slot_sum = Signal(range(2 * slots + k))
        slot = Signal(range(slots))
        row_pad = Signal()
        m.d.comb += [
            iy.eq(r0 + ky),
            row_pad.eq((iy < 0) | (iy >= p.height)),
            offset.eq(iy - base),
            slot_sum.eq(base_slot + offset[:slot_sum.shape().width]),
            slot.eq(Mux(slot_sum >= slots, slot_sum - slots, slot_sum)),
        ]

        # Stage A registers the read addresses, pad flags and rotation, so the RAMs' address
        # inputs do not wait for the counters' arithmetic (a slot times a row's words plus a
        # column times the channel groups: two carry chains, which limited the clock). Stage
        # B is the RAMs' output registers with the flags. Each stage loads whenever it is
        # empty or its beat moves on, so reads overlap transfers and backpressure holds both.
        valid_a, valid_b = Signal(), Signal()
        rot_a, rot_b = Signal(range(n)), Signal(range(n))
        advance_a, advance_b = Signal(), Signal()
        issue = Signal()
        m.d.comb += [advance_b.eq(~valid_b | self.o.ready), advance_a.eq(~valid_a | advance_b),
                     issue.eq(advance_a & ok)]
        pad_word = Const(sum((p.pad_value & ((1 << p.bits) - 1)) << (lane * p.bits)
                             for lane in range(p.simd)), width)
        words = []
        for b, (_, rd) in enumerate(rams):
            # Bank b serves the window's padded column q*n + b with q = q0 + kxg, or q + 1
            # when that column lies left of the beat's first one (b < b0).
            first, count = columns[b]
            q = Signal(coord, name=f"q{b}")
            pad = Signal(name=f"pad{b}")
            pad_a, pad_b = Signal(name=f"pad{b}_a"), Signal(name=f"pad{b}_b")
            addr_a = Signal.like(rd.addr, name=f"addr{b}_a")
            m.d.comb += [
                q.eq(q0 + kxg + (b0 > b if n > 1 else 0)),
                pad.eq(row_pad | (q < first) | (q >= first + count)),
                rd.en.eq(advance_b),
                rd.addr.eq(addr_a),
            ]
            with m.If(advance_a):
                m.d.sync += [addr_a.eq(Mux(pad, 0, scaled(slot, row_words[b]) + scaled(q - first, g) + cg)),
                             pad_a.eq(pad)]
            with m.If(advance_b):
                m.d.sync += pad_b.eq(pad_a)
            words.append(Mux(pad_b, pad_word, rd.data))
        with m.If(advance_a):
            m.d.sync += [valid_a.eq(ok), rot_a.eq(b0)]
        with m.If(advance_b):
            m.d.sync += [valid_b.eq(valid_a), rot_b.eq(rot_a)]

        m.d.comb += self.o.valid.eq(valid_b)
        if n == 1:
            m.d.comb += self.o.payload.eq(words[0])
        else:
            with m.Switch(rot_b):   # tap j of the beat is padded column ox*s + j: bank (b0+j)%n
                for r in range(n):
                    with m.Case(r):
                        m.d.comb += self.o.payload.eq(Cat(*(words[(r + j) % n]
                                                            for j in range(n))))

        # Advance the tap counters, then the pixel, then the row; a finished output row
        # releases the frame rows the next one no longer reads (all remaining ones at the end
        # of the frame).
        last_tap = Signal()
        m.d.comb += last_tap.eq(Cat(*(sig == lim - 1 for sig, lim in taps)).all())
        row_end = Signal()
        with m.If(issue):
            carry = Const(1)
            for sig, lim in taps:  # an odometer, innermost first
                with m.If(carry):
                    m.d.sync += sig.eq(Mux(sig == lim - 1, 0, sig + 1))
                carry = carry & (sig == lim - 1)
            with m.If(last_tap):
                with m.If(ox == p.out_width - 1):
                    m.d.sync += [ox.eq(0), q0.eq(0), b0.eq(0)]
                    m.d.comb += row_end.eq(1)
                    oy_next = Mux(oy == p.out_height - 1, 0, oy + 1)
                    m.d.sync += [oy.eq(oy_next), r0.eq(Mux(oy == p.out_height - 1, -pt, r0 + s)),
                                 base.eq(Array(Const(v, coord) for v in base_of)[oy_next]),
                                 need.eq(Array(Const(v, coord) for v in need_of)[oy_next]),
                                 release.eq(Array(Const(v, coord) for v in release_of)[oy_next])]
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
                    if n == 1:
                        m.d.sync += q0.eq(q0 + s)
                    else:   # s < n: at most one wrap
                        with m.If(b0 + s >= n):
                            m.d.sync += [b0.eq(b0 + s - n), q0.eq(q0 + 1)]
                        with m.Else():
                            m.d.sync += b0.eq(b0 + s)

        new_base = Signal(range(2 * slots + 1))
        m.d.comb += new_base.eq(base_slot + release[:new_base.shape().width])
        with m.If(row_end):
            m.d.sync += base_slot.eq(Mux(new_base >= slots, new_base - slots, new_base))
        # Both sums from registers, the late row_end only choosing between them.
        m.d.sync += occupied.eq(Mux(row_end, occupied + row_done - release, occupied + row_done))
        release_a = Signal(coord)       # rows the beat in stage A frees once it is read
        with m.If(advance_a):
            m.d.sync += release_a.eq(Mux(row_end, release, 0))
        m.d.sync += held.eq(held + row_done - Mux(advance_b & valid_a, release_a, 0))
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
                            p.order, p.ceil_mode, p.pad_value, p.kx_lanes)

    def output_beats(self) -> int:
        """Output beats per frame."""
        p = self.params
        return p.out_height * p.out_width * p.kernel * (p.kernel // p.kx_lanes) * p.groups

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
        """The first output row waits for its rows (complete), then one cycle in the address
        register and one in the RAM output register; the 1x1 stride-1 wire has none."""
        p = self.params
        if p.passthrough:
            return 0
        return p.rows_needed(0) * p.width * p.groups + 2

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Line buffer RAM banks plus counters and the address/pad/rotation logic.

        LUT: about two per counter bit (increment, compare) for the ~12 reader/writer
        counters; per bank, one per address bit for each of the read and write address
        adders and one per data bit for the pad mux; with ``kx_lanes = n > 1``, an n-way
        rotation mux per output bit (a LUT6 takes a 4:1 mux: ``ceil((n - 1) / 3)``). FF: the
        counters and the RAMs' output-register flags.
        """
        p = self.params
        if p.passthrough:
            return Resources()
        n = p.kx_lanes
        width = p.bits * p.simd
        depths = [p.row_slots * count * p.groups
                  for _, count in (p.bank_columns(b) for b in range(n))]
        coord = max(p.height, p.width + p.padding[1], p.row_slots).bit_length() + 4
        addr = max(1, (max(depths) - 1).bit_length())
        counter_bits = 6 * coord + 2 * max(1, (p.kernel - 1).bit_length()) + 2 * addr
        rotation = n * width * -(-(n - 1) // 3)
        lut = 2 * counter_bits + n * (2 * addr + width) + rotation
        ff = counter_bits + n * (addr + 2) + 5 * coord + 2
        memory = sum((memory_resources(width, d, family) for d in depths), Resources())
        return memory + Resources(lut=lut, ff=ff)
