"""SlidingWindow: a block-RAM line buffer turning a pixel stream into KxK window beats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib.wiring import In, Out

from dataflows.layers import window_output_size

from .adder_tree import adder_tree, adder_tree_register_bits, adder_tree_stages
from .beats import WindowOrder, window_beats
from .counter import wrapping_counter
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
    is fully written and released once no later window needs it. The reader computes each
    beat's read addresses in a pipeline with one adder between registers (three stages, the
    address tree's, the address register, then the RAMs' output registers, all held under
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

        # Row accounting in free-running counters, compared through their wrapped difference
        # (one subtraction, so no three-operand sums on the issue path): `rows_in` counts
        # completed rows (a cycle late, from `row_done_reg`); the reader may read a beat while
        # rows_in >= `threshold`, the rows released so far plus the rows the current output
        # row needs (it runs ahead of rows_in when the reader releases rows no window uses,
        # skipped by the stride or cut off by floor rounding, before they arrive); the writer
        # may take a beat while its rows (rows_in plus the pending one) < `limit`, the rows
        # freed so far plus `slots`; a released row's slot is freed once the read of its last
        # window has left stage A for the RAM. The writer keeps that difference itself,
        # `room` = limit - rows_in - 1 (and `room_less_one`), stepped by the frees and the
        # completed rows of the cycle before, so `i.ready` is a sign bit of one of two
        # registers (chosen by the pending row), not a compare.
        coord = signed(max(p.height, p.width + pl, slots).bit_length() + 4)
        # The compared differences stay within (-(2k + s), slots]: twice that, signed, keeps
        # the comparisons short (two CARRY4s), which the issue path's depth needs.
        count = (2 * (slots + 2 * k + s)).bit_length() + 1
        rows_in = Signal(count)
        threshold = Signal(count, init=p.rows_needed(0))
        room = Signal(signed(count), init=slots - 1)
        room_less_one = Signal(signed(count), init=slots - 2)

        def wrapped_negative(a, b):
            diff = Signal(signed(count))
            m.d.comb += diff.eq(a - b)
            return diff[-1]

        # Writer: fills slot after slot, a row at a time; frames need no special case. The
        # padded column px = x + pl of the incoming pixel is kept as (px // n, px % n). A
        # bank's words of a row are written in address order (columns ascending, channel
        # groups within), so its write address is a counter stepping on each write to it and
        # wrapping after the last slot's row.
        w_slot = Signal(range(slots))
        w_q = Signal(range((pl + p.width) // n + 1), init=pl // n)
        w_bank = Signal(range(n), init=pl % n)
        w_cg = Signal(range(g))
        last_q, last_bank = divmod(pl + p.width - 1, n)
        take = Signal()
        row_done, row_done_reg = Signal(), Signal()
        m.d.comb += [
            self.i.ready.eq(~Mux(row_done_reg, room_less_one[-1], room[-1])),
            take.eq(self.i.valid & self.i.ready),
        ]
        m.d.sync += row_done_reg.eq(row_done)
        with m.If(row_done_reg):
            m.d.sync += rows_in.eq(rows_in + 1)
        for b, (wr, _) in enumerate(rams):
            w_addr = wrapping_counter(m, f"w_addr{b}", slots * row_words[b], wr.en).value
            m.d.comb += [
                wr.addr.eq(w_addr),
                wr.data.eq(self.i.payload.as_value()),
                wr.en.eq(take & (w_bank == b)),
            ]
        # Whether the beat taken next is its pixel's last channel group, and whether its pixel
        # is the row's last, kept as registers (set from the position before), so a take that
        # ends a row is one LUT after `i.ready`.
        cg_last = Signal(init=int(g == 1))
        px_last = Signal(init=int(p.width == 1))
        before_last_q, before_last_bank = divmod(pl + p.width - 2, n)
        m.d.comb += row_done.eq(take & cg_last & px_last)
        with m.If(take):
            m.d.sync += [w_cg.eq(Mux(cg_last, 0, w_cg + 1)),
                         cg_last.eq(Mux(cg_last, g == 1, w_cg == g - 2))]
            with m.If(cg_last):
                m.d.sync += px_last.eq(Mux(px_last, p.width == 1,
                                           (w_q == before_last_q) & (w_bank == before_last_bank)))
                with m.If(px_last):
                    m.d.sync += [w_q.eq(pl // n), w_bank.eq(pl % n),
                                 w_slot.eq(Mux(w_slot == slots - 1, 0, w_slot + 1))]
                with m.Elif(w_bank == n - 1):
                    m.d.sync += [w_bank.eq(0), w_q.eq(w_q + 1)]
                with m.Else():
                    m.d.sync += w_bank.eq(w_bank + 1)

        # Reader counters: the output row, the output column's first padded column ox*s as
        # (q0, b0) = divmod(ox*s, n), the taps; base_slot is the slot of the first in-frame row
        # of the current output row.
        oy = Signal(range(p.out_height))
        ox = Signal(range(p.out_width))
        q0 = Signal(range((p.out_width - 1) * s // n + 1))
        b0 = Signal(range(n))
        base_slot = Signal(range(slots))
        ky, kxg, cg = Signal(range(k)), Signal(range(k // n)), Signal(range(g))
        if p.order is WindowOrder.TAP_MAJOR:
            taps = [(cg, g), (kxg, k // n), (ky, k)]  # innermost first
        else:
            taps = [(kxg, k), (ky, k), (cg, g)]

        # Per output row, registers loaded as it starts from tables indexed by the row that
        # ends (so no arithmetic on the row number sits before them): its first row r0 (in
        # the padding when negative), lead = r0 minus its first in-frame row, the rows it
        # releases when it ends (and that minus `slots`, so the next base slot is chosen by a
        # sign rather than computed by a compare after a sum), and how far `threshold` moves.
        rows = range(p.out_height)
        base_of = [max(0, p.row_start(y)) for y in rows]
        release_of = [(p.height if y == p.out_height - 1 else max(0, p.row_start(y + 1)))
                      - base_of[y] for y in rows]
        row_tables = {
            "r0": [p.row_start(y) for y in rows],
            "lead": [p.row_start(y) - base_of[y] for y in rows],
            "release": release_of,
            "release_wrap": [r - slots for r in release_of],
            "advance": [release_of[y] + p.rows_needed((y + 1) % p.out_height)
                        - p.rows_needed(y) for y in rows],
        }
        row = {name: Signal(coord, name=name, init=table[0]) for name, table in row_tables.items()}
        following = {name: Array(Const(v, coord) for v in table[1:] + table[:1])
                     for name, table in row_tables.items()}
        last_tap = Signal()
        m.d.comb += last_tap.eq(Cat(*(sig == lim - 1 for sig, lim in taps)).all())

        # The read address is computed in a feed-forward pipeline from the counters, one adder
        # between registers: stage 1 the frame row r0 + ky, the slot base base_slot + lead and
        # the column q0 + kxg; stage 2 padding by row and the slot before its wrap, the
        # column per bank; stage 3 the slot, padding by column, the column offset; then an
        # adder tree (:func:`adder_tree`) over slot * row_words (a table), the column offset
        # times the channel groups (shifts) and the channel group; stage A the address (0
        # where padded). The counters run ahead, a beat per move of the pipeline: the beat in
        # stage A waits there until the rows it reads are complete (its output row's
        # threshold travels with it) and then moves to stage B, the RAMs' output registers, so
        # reads happen, and rows are freed, exactly when a reader with no address pipeline
        # would read and free them, and the pipeline adds no latency once full.
        adv_b, adv = Signal(), Signal()
        valid_a, valid_b, ok_a = Signal(), Signal(), Signal()
        row_end = Signal()

        def stage(name: str, value, shape=None):
            reg = Signal(shape if shape is not None else value.shape(), name=name)
            with m.If(adv):
                m.d.sync += reg.eq(value)
            return reg

        def delayed(name: str, value, cycles: int):
            for c in range(cycles):
                value = stage(f"{name}_d{c}", value)
            return value

        end_of_row = Signal()
        m.d.comb += end_of_row.eq(last_tap & (ox == p.out_width - 1))
        valid1 = stage("valid1", Const(1))
        iy1 = stage("iy1", row["r0"] + ky, coord)
        slot_base1 = stage("slot_base1", base_slot + row["lead"], coord)
        ky1 = stage("ky1", ky)
        qk1 = stage("qk1", q0 + kxg, coord)
        b01, cg1 = stage("b01", b0), stage("cg1", cg)
        end1, release1 = stage("end1", end_of_row), stage("release1", row["release"])
        threshold1 = stage("threshold1", threshold)
        threshold_less_one1 = stage("threshold_less_one1", threshold - 1, unsigned(count))

        valid2 = stage("valid2", valid1)
        row_pad2 = stage("row_pad2", (iy1 < 0) | (iy1 >= p.height))
        slot_sum2 = stage("slot_sum2", slot_base1 + ky1, coord)
        q2 = [stage(f"q2_{b}", qk1 + (b01 > b) if n > 1 else qk1, coord) for b in range(n)]
        cg2, rot2 = stage("cg2", cg1), stage("rot2", b01)
        end2, release2 = stage("end2", end1), stage("release2", release1)
        threshold2 = stage("threshold2", threshold1)
        threshold_less_one2 = stage("threshold_less_one2", threshold_less_one1)

        valid3 = stage("valid3", valid2)
        slot3 = stage("slot3", Mux(slot_sum2 >= slots, slot_sum2 - slots, slot_sum2),
                      range(slots))
        pad3, col3 = [], []
        for b, (first, cols) in enumerate(columns):
            pad3.append(stage(f"pad3_{b}", row_pad2 | (q2[b] < first) | (q2[b] >= first + cols)))
            col3.append(stage(f"col3_{b}", q2[b] - first, coord))
        cg3, rot3 = stage("cg3", cg2), stage("rot3", rot2)
        end3, release3 = stage("end3", end2), stage("release3", release2)
        threshold3 = stage("threshold3", threshold2)
        threshold_less_one3 = stage("threshold_less_one3", threshold_less_one2)

        later = self.tree_stages
        with m.If(adv):
            m.d.sync += valid_a.eq(delayed("valid_t", valid3, later))
        rot_a = stage("rot_a", delayed("rot_t", rot3, later))
        end_a = stage("end_a", delayed("end_t", end3, later))
        release_a = stage("release_a", delayed("release_t", release3, later))
        threshold_t = delayed("threshold_t", threshold3, later)
        threshold_less_one_t = delayed("threshold_less_one_t", threshold_less_one3, later)
        threshold_a = stage("threshold_a", threshold_t)
        threshold_less_one_a = stage("threshold_less_one_a", threshold_less_one_t)
        # ok_a, "the beat in stage A has its rows", is a register computed a cycle ahead for
        # whichever beat stage A holds next, against rows_in as it will be (+1 with
        # row_done_reg: compared with the threshold less one), so the pipeline enable is one
        # LUT from registers.
        m.d.sync += ok_a.eq(Mux(
            adv,
            Mux(row_done_reg, ~wrapped_negative(rows_in, threshold_less_one_t),
                ~wrapped_negative(rows_in, threshold_t)),
            Mux(row_done_reg, ~wrapped_negative(rows_in, threshold_less_one_a),
                ~wrapped_negative(rows_in, threshold_a))))
        m.d.comb += [
            adv_b.eq(~valid_b | self.o.ready),
            adv.eq(adv_b & (~valid_a | ok_a)),
            row_end.eq(adv & end_of_row),
        ]
        rot_b = Signal(range(n))
        with m.If(adv_b):
            m.d.sync += [valid_b.eq(valid_a & ok_a), rot_b.eq(rot_a)]
        # The room grows by a cycle's frees a cycle later (registered with the release, so
        # o.ready is not in front of the adder) and shrinks by the row completed a cycle ago:
        # one addend chosen from registers, then the carry chain. yosys would share two sums
        # selected after their carries back into one adder behind the select anyway.
        frees, frees_reg = Signal(), Signal()
        release_less_one_a = stage("release_less_one_a",
                                   delayed("release_less_one_t", release3 - 1, later), coord)
        freed, freed_less_one = Signal(signed(count)), Signal(signed(count))
        m.d.comb += frees.eq(adv_b & valid_a & ok_a & end_a)
        m.d.sync += [frees_reg.eq(frees), freed.eq(release_a),
                     freed_less_one.eq(release_less_one_a)]
        addend = Mux(frees_reg, Mux(row_done_reg, freed_less_one, freed), -row_done_reg)
        m.d.sync += [room.eq(room + addend), room_less_one.eq(room_less_one + addend)]

        pad_word = Const(sum((p.pad_value & ((1 << p.bits) - 1)) << (lane * p.bits)
                             for lane in range(p.simd)), width)
        terms_of = self.address_terms()
        words = []
        for b, (_, rd) in enumerate(rams):
            aw = len(rd.addr)
            wide = signed(aw + 2)
            row_offsets = Array(Const(x * row_words[b], wide) for x in range(slots))
            terms = [row_offsets[slot3]] + [col3[b] << j for j in terms_of["column_shifts"]]
            if terms_of["channel_group"]:
                terms.append(cg3)
            fixed = []
            for j, term in enumerate(terms):
                t = Signal(wide, name=f"term{b}_{j}")
                m.d.comb += t.eq(term)
                fixed.append(t)
            total = adder_tree(m, fixed, aw + 2, f"addr{b}_tree", adv)
            pad_t = delayed(f"pad{b}_t", pad3[b], later)
            addr_a = stage(f"addr{b}_a", Mux(pad_t, 0, total[:aw]), unsigned(aw))
            pad_a = stage(f"pad{b}_a", pad_t)
            pad_b = Signal(name=f"pad{b}_b")
            with m.If(adv_b):
                m.d.sync += pad_b.eq(pad_a)
            m.d.comb += [rd.en.eq(adv_b), rd.addr.eq(addr_a)]
            words.append(Mux(pad_b, pad_word, rd.data))

        m.d.comb += self.o.valid.eq(valid_b)
        if n == 1:
            m.d.comb += self.o.payload.eq(words[0])
        else:
            with m.Switch(rot_b):   # tap j of the beat is padded column ox*s + j: bank (b0+j)%n
                for r in range(n):
                    with m.Case(r):
                        m.d.comb += self.o.payload.eq(Cat(*(words[(r + j) % n]
                                                            for j in range(n))))

        # Advance the tap counters, then the pixel, then the row, a beat per move of the
        # pipeline; a finished output row releases the frame rows the next one no longer reads
        # (all remaining ones at the end of the frame).
        with m.If(adv):
            carry = Const(1)
            for sig, lim in taps:  # an odometer, innermost first
                with m.If(carry):
                    m.d.sync += sig.eq(Mux(sig == lim - 1, 0, sig + 1))
                carry = carry & (sig == lim - 1)
            with m.If(last_tap):
                with m.If(ox == p.out_width - 1):
                    m.d.sync += [ox.eq(0), q0.eq(0), b0.eq(0),
                                 oy.eq(Mux(oy == p.out_height - 1, 0, oy + 1))]
                    m.d.sync += [reg.eq(following[name][oy]) for name, reg in row.items()]
                    m.d.comb += row_end.eq(1)
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
                    if n == 1:
                        m.d.sync += q0.eq(q0 + s)
                    else:   # s < n: at most one wrap
                        with m.If(b0 + s >= n):
                            m.d.sync += [b0.eq(b0 + s - n), q0.eq(q0 + 1)]
                        with m.Else():
                            m.d.sync += b0.eq(b0 + s)

        # The next output row's base slot: base_slot + release, wrapped by the sign of the
        # sum less `slots`; and the reader's threshold.
        # Both sums lie in [-slots, slots): as narrow as that, the sign is two carry cells up.
        slot_sum = signed(slots.bit_length() + 1)
        plain, wrapped = Signal(slot_sum), Signal(slot_sum)
        m.d.comb += [plain.eq(base_slot + row["release"]),
                     wrapped.eq(base_slot + row["release_wrap"])]
        with m.If(row_end):
            m.d.sync += [base_slot.eq(Mux(wrapped[-1], plain, wrapped)),
                         threshold.eq(threshold + row["advance"])]
        return m

    def address_terms(self) -> dict:
        """The read address's terms besides ``slot * row_words``: the column offset shifted
        to each set bit of the channel groups, and the channel group (when there are
        several)."""
        g = self.params.groups
        return {"column_shifts": [j for j in range(g.bit_length()) if g >> j & 1],
                "channel_group": g > 1}

    @property
    def tree_stages(self) -> int:
        """Register stages of the read address's adder tree."""
        terms = self.address_terms()
        return adder_tree_stages(1 + len(terms["column_shifts"]) + terms["channel_group"])

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
        """The first output row waits for its rows (complete, seen a cycle later), then the
        RAM output register (the address pipeline has filled long before); the 1x1 stride-1
        wire has none."""
        p = self.params
        if p.passthrough:
            return 0
        return p.rows_needed(0) * p.width * p.groups + 2

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Line buffer RAM banks plus counters and the address pipeline.

        LUT: about two per counter bit (increment, compare) for the ~14 reader/writer
        counters and row registers; one per coordinate bit for each of the address pipeline's
        ``6 + 4 * n`` adders and comparators (stages 1-3); per bank, the address tree's
        adders, the address's pad mux, a write-address counter and one LUT per data bit for
        the pad mux; with ``kx_lanes = n > 1``, an n-way rotation mux per output bit (a LUT6
        takes a 4:1 mux: ``ceil((n - 1) / 3)``). FF: the counters, the pipeline's coordinate
        registers (``12 + 2 * n + 2 * tree_stages`` of them), per bank the tree's registers,
        the address and the pad flags.
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
        counter_bits = 11 * coord + 2 * max(1, (p.kernel - 1).bit_length()) + (n + 1) * addr
        rotation = n * width * -(-(n - 1) // 3)
        terms = self.address_terms()
        count = 1 + len(terms["column_shifts"]) + terms["channel_group"]
        tree_ff = adder_tree_register_bits(count, addr + 2, addr + 2)
        lut = (2 * counter_bits + coord * (6 + 4 * n) + rotation
               + n * ((count - 1) * (addr + 2) + 2 * addr + width))
        ff = (counter_bits + coord * (12 + 2 * n + 2 * self.tree_stages)
              + n * (tree_ff + addr + self.tree_stages + 4) + 16)
        memory = sum((memory_resources(width, d, family) for d in depths), Resources())
        return memory + Resources(lut=lut, ff=ff)
