"""Pooling PEs: windowed max/average :class:`Pool` and :class:`GlobalAvgPool`.

:class:`Pool` consumes the window stream of a sliding window in ``WindowOrder.CHANNEL_MAJOR``
order (for each output pixel, for each channel group, the K*K taps back to back), so one
running accumulator per lane reduces a window and nothing is buffered. Padding arrives in the
stream as ``qmin`` (max) or 0 (average); the average's divisor per output position (which
depends on ``count_include_pad`` and ``ceil_mode``) comes from :class:`dataflows.quantize.QPool`.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from amaranth.hdl import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from dataflows import golden
from dataflows import layers as L
from dataflows import numerics as nm
from dataflows.quantize import QPool

from .counter import wrapping_counter
from .elementwise import check_int
from .requant import Requantizer, requantizer_resources
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources, lutram_luts, memory_resources
from .rom import lut_ram

__all__ = ["PoolParams", "Pool", "GlobalAvgPoolParams", "GlobalAvgPool"]

def _check_requant(spec, bits: int, entries: int | None = None) -> None:
    if not isinstance(spec, nm.RequantSpec):
        raise ValueError(f"requant must be a RequantSpec, not {spec!r}")
    if entries is not None and len(spec) != entries:
        raise ValueError(f"requant must have {entries} entry, not {len(spec)}")
    qmin, qmax = nm.qrange(bits)
    if not qmin <= spec.lo <= spec.hi <= qmax:
        raise ValueError(f"requant bounds must lie in [{qmin}, {qmax}], not [{spec.lo}, {spec.hi}]")


def _divisor_spec(spec: nm.RequantSpec, lanes: int) -> nm.RequantSpec:
    """The divisor entries' constants as channel groups: entry ``e``'s on every lane."""
    return nm.RequantSpec(np.repeat(spec.multiplier, lanes), np.repeat(spec.shift, lanes),
                          spec.lo, spec.hi)


def _divisor_requantizer(spec: nm.RequantSpec, lanes: int, acc_bits: int,
                         out_bits: int) -> Requantizer:
    """The shared :class:`~rtl_templates.requant.Requantizer` with one "channel group" per
    divisor entry: entry ``e``'s constants on every lane, selected by its ``group`` input."""
    return Requantizer(_divisor_spec(spec, lanes), lanes, len(spec), acc_bits, out_bits)


@dataclass(frozen=True)
class _HeldBeat:
    """A taken beat and its first/last flags, registered while the pipeline advances: the
    pools reduce from these registers, not from the input's path (docs/timing.md).
    ``reduce``: a held beat is reduced this cycle; ``done``: and it ends its window."""

    beat: Signal
    first: Signal
    reduce: Value
    done: Value

    @classmethod
    def of(cls, m: Module, advance, take, payload, first, last) -> _HeldBeat:
        valid, held_first, held_last = (Signal(name=n) for n in ("held", "held_first", "held_last"))
        beat = Signal.like(payload, name="beat")
        with m.If(advance):
            m.d.sync += [valid.eq(take), held_first.eq(first), held_last.eq(last),
                         beat.eq(payload)]
        return cls(beat, held_first, advance & valid, advance & valid & held_last)


@dataclass(frozen=True, eq=False)
class PoolParams:
    """Shape and constants of a :class:`Pool`.

    Attributes
    ----------
    kind : str
        ``"max"`` or ``"avg"``.
    bits, channels, simd : int
        Activation width, channels, lanes per beat (``channels % simd == 0``).
    out_height, out_width : int
        Output pixels per frame (Ho, Wo).
    kernel : int or (int, int)
        Window (kh, kw); the stream carries ``kh*kw`` beats per channel group.
    requant : RequantSpec or None
        Average only: one entry per distinct divisor (``QPool.requant``).
    divisor_index : numpy.ndarray or None
        Average only: (Ho, Wo) entry of ``requant`` per output position (``QPool.index``).
    acc_bits : int or None
        Average only: window-sum width; default :func:`~dataflows.numerics.sum_bits`.
    """

    kind: str
    bits: int
    channels: int
    out_height: int
    out_width: int
    kernel: tuple[int, int]
    simd: int
    requant: nm.RequantSpec | None = None
    divisor_index: np.ndarray | None = None
    acc_bits: int | None = None

    def __post_init__(self):
        if self.kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', not {self.kind!r}")
        nm.qrange(self.bits)
        for name in ("channels", "out_height", "out_width", "simd"):
            check_int(getattr(self, name), name)
        if self.channels % self.simd:
            raise ValueError(f"channels {self.channels!r} do not fold into {self.simd!r} lanes")
        kernel = (self.kernel, self.kernel) if isinstance(self.kernel, Integral) else tuple(self.kernel)
        if len(kernel) != 2:
            raise ValueError(f"kernel must be an int or a pair, not {self.kernel!r}")
        for k in kernel:
            check_int(k, "kernel")
        object.__setattr__(self, "kernel", (int(kernel[0]), int(kernel[1])))
        if self.kind == "max":
            if self.requant is not None or self.divisor_index is not None:
                raise ValueError(f"a max pool takes no requant nor divisor_index, not {self.requant!r}")
            object.__setattr__(self, "acc_bits", self.bits)
            return
        _check_requant(self.requant, self.bits)
        index = np.asarray(self.divisor_index, dtype=np.int64) if self.divisor_index is not None else None
        if index is None or index.shape != (self.out_height, self.out_width):
            raise ValueError(f"divisor_index must be an ({self.out_height}, {self.out_width}) array, "
                             f"not {None if index is None else index.shape}")
        if index.min() < 0 or index.max() >= len(self.requant):
            raise ValueError(f"divisor_index entries must be in 0..{len(self.requant) - 1}, "
                             f"not {int(index.max())}")
        index.flags.writeable = False
        object.__setattr__(self, "divisor_index", index)
        need = nm.sum_bits(self.bits, self.taps)
        acc = need if self.acc_bits is None else self.acc_bits
        if isinstance(acc, bool) or not isinstance(acc, Integral) or acc < need:
            raise ValueError(f"acc_bits must be an int of at least {need}, not {self.acc_bits!r}")
        object.__setattr__(self, "acc_bits", int(acc))

    @property
    def taps(self) -> int:
        return self.kernel[0] * self.kernel[1]

    @property
    def groups(self) -> int:
        return self.channels // self.simd

    @property
    def pixels(self) -> int:
        return self.out_height * self.out_width

    @classmethod
    def average(cls, qpool: QPool, bits: int, channels: int, kernel, simd: int) -> "PoolParams":
        """Parameters of an average pool from the quantizer's :class:`QPool`."""
        ho, wo = qpool.index.shape
        return cls("avg", bits, channels, ho, wo, kernel, simd, qpool.requant, qpool.index,
                   qpool.acc_bits)


class Pool(ProcessingElement):
    """Max or average over each window of a channel-major window stream.

    Each beat is registered first, then reduced. Max: a running maximum per lane; the window's
    result goes to the output register at the last tap (latency ``K*K + 1``). Average: a
    running sum per lane; at the last tap the sums go into the compute PEs' pipelined
    :class:`~rtl_templates.requant.Requantizer` with the constants of the window's divisor
    entry (latency ``K*K + Requantizer.LATENCY``). The entry comes from a ROM indexed by
    output position, read one cycle ahead. Input-bound: one window beat per cycle.

    Parameters
    ----------
    params : PoolParams
    """

    def __init__(self, params: PoolParams):
        if not isinstance(params, PoolParams):
            raise TypeError(f"params must be PoolParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        advance = ~self.o.valid | self.o.ready
        take = self.i.valid & advance
        m.d.comb += self.i.ready.eq(advance)

        taps = wrapping_counter(m, "tap", p.taps, take)
        first, last = taps.first, taps.last
        groups = wrapping_counter(m, "group", p.groups, take & last)
        pixel_done = Signal()
        m.d.comb += pixel_done.eq(take & last & groups.last)
        pixels = wrapping_counter(m, "pixel", p.pixels, pixel_done)
        pixel = pixels.value

        out_valid = Signal()
        m.d.comb += self.o.valid.eq(out_valid)
        # The beat and its tap flags are registered before the reduction: a window's taps come
        # from its line buffer through the read mux and the padding select, which left before
        # a max compare measured 5.79 LUT levels (docs/timing.md).
        held = _HeldBeat.of(m, advance, take, self.i.payload, first, last)
        beat, held_first, reduce, done = held.beat, held.first, held.reduce, held.done
        width = p.acc_bits
        results = []
        for k in range(p.simd):
            x = beat[k]
            acc = Signal(signed(width), name=f"acc{k}")
            if p.kind == "max":
                result = Mux(held_first, x, Mux(x > acc, x, acc))
            else:
                result = Mux(held_first, 0, acc) + x
            with m.If(reduce):
                m.d.sync += acc.eq(result)
            results.append(result)

        if p.kind == "max":
            with m.If(advance):
                m.d.sync += out_valid.eq(done)
            for k in range(p.simd):
                out = Signal(signed(p.bits), name=f"out{k}")
                with m.If(done):
                    m.d.sync += out.eq(results[k])
                m.d.comb += self.o.payload[k].eq(out)
            return m

        # Average: the divisor entry of the current pixel, read one cycle ahead from a ROM and
        # registered with the beat, picks the requantizer's constants as a channel group would.
        entries = len(p.requant)
        held_entry = Signal(range(max(2, entries)), name="held_entry")
        if entries > 1:
            rom = memory.Memory(shape=unsigned(len(held_entry)), depth=p.pixels,
                                init=[int(v) for v in p.divisor_index.flat])
            m.submodules.divisor_rom = rom
            rd = rom.read_port(domain="sync")
            pixel_next = Mux(pixel_done, Mux(pixels.last, 0, pixel + 1), pixel)
            m.d.comb += [rd.addr.eq(pixel_next), rd.en.eq(1)]
            with m.If(advance):
                m.d.sync += held_entry.eq(rd.data)
        m.submodules.requant = rq = _divisor_requantizer(p.requant, p.simd, width, p.bits)
        m.d.comb += [rq.en.eq(advance), rq.valid.eq(done), rq.group.eq(held_entry),
                     out_valid.eq(rq.result_valid), self.o.payload.eq(rq.result)]
        m.d.comb += [rq.acc[k].eq(results[k]) for k in range(p.simd)]
        return m

    def behaviour(self, windows: np.ndarray) -> np.ndarray:
        """(Ho, Wo, kh, kw, C) windows (``tensor_ops.windows``, padded with the stream's pad
        value) to the (Ho, Wo, C) pooled frame."""
        p = self.params
        windows = np.asarray(windows, dtype=np.int64)
        expect = (p.out_height, p.out_width, *p.kernel, p.channels)
        if windows.shape != expect:
            raise ValueError(f"windows must have shape {expect}, not {windows.shape}")
        if p.kind == "max":
            return windows.max(axis=(2, 3))
        sums = windows.sum(axis=(2, 3))
        nm.check_fits(sums, p.acc_bits, "pool window sum")
        return p.requant.apply(sums, p.divisor_index[:, :, None])

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.pixels * p.groups * p.taps

    def latency(self) -> int:
        # The input register, then max: the output register; average: the requantizer.
        return self.params.taps + (1 if self.params.kind == "max" else Requantizer.LATENCY)

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Per lane the input register and an accumulator (for the average, the requantizer's
        model besides, and the divisor-entry ROM via memory_resources); counters."""
        p = self.params
        counters = sum(max(1, (n - 1).bit_length()) for n in (p.taps, p.groups, p.pixels))
        if p.kind == "max":
            return Resources(lut=p.simd * 2 * p.bits + 2 * counters,
                             ff=3 * p.simd * p.bits + counters + 4)
        entry_bits = max(1, (len(p.requant) - 1).bit_length())
        rom = (memory_resources(entry_bits, p.pixels, family) + Resources(ff=entry_bits)
               if len(p.requant) > 1 else Resources())
        requant = requantizer_resources(_divisor_spec(p.requant, p.simd), p.simd,
                                        len(p.requant), p.acc_bits, p.bits, family)
        lut = p.simd * (p.acc_bits + 2 * p.bits) + 2 * counters
        ff = p.simd * (p.acc_bits + p.bits) + counters + 3
        return rom + requant + Resources(lut=lut, ff=ff)


@dataclass(frozen=True, eq=False)
class GlobalAvgPoolParams:
    """Shape and constants of a :class:`GlobalAvgPool`.

    Attributes
    ----------
    bits, channels, height, width, simd : int
        Input frame (H, W, C) in beats of ``simd`` lanes.
    requant : RequantSpec
        One entry, for the divisor ``H*W`` (``QPool.requant``).
    acc_bits : int or None
        Sum width; default :func:`~dataflows.numerics.sum_bits` of ``H*W`` taps.
    """

    bits: int
    channels: int
    height: int
    width: int
    simd: int
    requant: nm.RequantSpec
    acc_bits: int | None = None

    def __post_init__(self):
        nm.qrange(self.bits)
        for name in ("channels", "height", "width", "simd"):
            check_int(getattr(self, name), name)
        if self.channels % self.simd:
            raise ValueError(f"channels {self.channels!r} do not fold into {self.simd!r} lanes")
        _check_requant(self.requant, self.bits, entries=1)
        need = nm.sum_bits(self.bits, self.height * self.width)
        acc = need if self.acc_bits is None else self.acc_bits
        if isinstance(acc, bool) or not isinstance(acc, Integral) or acc < need:
            raise ValueError(f"acc_bits must be an int of at least {need}, not {self.acc_bits!r}")
        object.__setattr__(self, "acc_bits", int(acc))

    @property
    def groups(self) -> int:
        return self.channels // self.simd

    @property
    def qpool(self) -> QPool:
        """The :class:`QPool` these parameters stand for."""
        return QPool(np.array([self.height * self.width]), np.zeros((1, 1), dtype=np.int64),
                     self.requant, self.acc_bits)


class GlobalAvgPool(ProcessingElement):
    """Mean over H and W: a per-channel sum over the frame, requantized by ``1 / (H*W)``.

    The ``C/simd`` partial sums sit in a LUT RAM indexed by the beat's channel group: read
    when the beat is taken and registered with it, added and written back a cycle later; the
    first pixel overwrites, so the RAM needs no clearing between frames. With one group the
    sums are a register.
    During the frame's last pixel each completed sum goes straight into the compute PEs'
    pipelined :class:`~rtl_templates.requant.Requantizer`, so the ``C/simd`` output beats
    leave while the next frame starts accumulating: no bubbles.
    Latency ``(H*W - 1) * C/simd + 1 + Requantizer.LATENCY``.

    Parameters
    ----------
    params : GlobalAvgPoolParams
    """

    def __init__(self, params: GlobalAvgPoolParams):
        if not isinstance(params, GlobalAvgPoolParams):
            raise TypeError(f"params must be GlobalAvgPoolParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        pixels, g_count = p.height * p.width, p.groups
        advance = ~self.o.valid | self.o.ready
        take = self.i.valid & advance
        m.d.comb += self.i.ready.eq(advance)

        groups = wrapping_counter(m, "group", g_count, take)
        group = groups.value
        pixel = wrapping_counter(m, "pixel", pixels, take & groups.last)
        first, last = pixel.first, pixel.last

        # Stage 1 registers the beat with its group, its pixel flags and (from the LUT RAM)
        # the group's partial sums; stage 2 adds and writes back. A sum read and added in one
        # cycle measured 3.32 levels (RAM read, then the carry chain), over UltraScale+'s three.
        held = _HeldBeat.of(m, advance, take, self.i.payload, first, last)
        beat, held_first, reduce, done = held.beat, held.first, held.reduce, held.done
        held_group = Signal.like(group, name="held_group")
        with m.If(advance):
            m.d.sync += held_group.eq(group)

        m.submodules.requant = rq = Requantizer(p.requant, p.simd, 1, p.acc_bits, p.bits)
        m.d.comb += [rq.en.eq(advance), rq.valid.eq(done),
                     self.o.valid.eq(rq.result_valid), self.o.payload.eq(rq.result)]
        width = p.simd * p.acc_bits
        stored = Signal(width, name="stored")
        news = Signal(width, name="news")
        if g_count > 1:
            # A group's sum is written back (stage 2) before the group is read again: its next
            # beat is taken at least two advances after this one.
            sums_w, sums_r = lut_ram(m, "sums", width, g_count)
            m.d.comb += [sums_r.addr.eq(group), sums_w.addr.eq(held_group), sums_w.en.eq(reduce),
                         sums_w.data.eq(news)]
            with m.If(advance):
                m.d.sync += stored.eq(sums_r.data)
        else:
            with m.If(reduce):   # one group: the running sums are a register
                m.d.sync += stored.eq(news)
        for k in range(p.simd):
            lane = slice(k * p.acc_bits, (k + 1) * p.acc_bits)
            new = Signal(signed(p.acc_bits), name=f"acc{k}")
            # The first pixel masks the stored sum at the adder's input, where the mask shares
            # the carry chain's LUTs; a select after the adder measured 4.32 levels.
            m.d.comb += [new.eq(Mux(held_first, 0, stored[lane].as_signed()) + beat[k]),
                         news[lane].eq(new), rq.acc[k].eq(new)]
        return m

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, C) frame to the (1, 1, C) mean: :func:`dataflows.golden.pool_int`."""
        p = self.params
        frame = np.asarray(frame, dtype=np.int64)
        if frame.shape != (p.height, p.width, p.channels):
            raise ValueError(f"frame must have shape {(p.height, p.width, p.channels)}, not {frame.shape}")
        return golden.pool_int(L.GlobalAvgPool(), p.qpool, frame, "global_avgpool")

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.height * p.width * p.groups

    def latency(self) -> int:
        p = self.params
        # The last pixel's first beat, its input register, the requantizer.
        return (p.height * p.width - 1) * p.groups + 1 + Requantizer.LATENCY

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """The requantizer's model; the C sums in LUT RAM (``simd * acc_bits`` bits wide,
        ``C/simd`` deep; a register for one group); per lane the input register and adder."""
        p = self.params
        counters = max(1, (p.groups - 1).bit_length()) + max(1, (p.height * p.width - 1).bit_length())
        group_bits = max(1, (p.groups - 1).bit_length())
        sums = lutram_luts(p.simd * p.acc_bits, p.groups, family) if p.groups > 1 else 0
        requant = requantizer_resources(p.requant, p.simd, 1, p.acc_bits, p.bits, family)
        lut = p.simd * (p.acc_bits + 2 * p.bits) + 2 * counters + sums
        ff = p.simd * (p.acc_bits + p.bits) + counters + group_bits + 3
        return requant + Resources(lut=lut, ff=ff)
