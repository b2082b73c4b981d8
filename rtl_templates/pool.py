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
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from dataflows import golden
from dataflows import layers as L
from dataflows import numerics as nm
from dataflows.quantize import QPool

from .counter import wrapping_counter
from .elementwise import check_int
from .requant import multiplier_dsps, requantize_value
from .pe import ProcessingElement, beat_signature
from .resources import DeviceFamily, Resources, lutram_luts, memory_resources
from .rom import lut_ram

__all__ = ["PoolParams", "Pool", "GlobalAvgPoolParams", "GlobalAvgPool"]

_MULT_SHAPE = signed(nm.MULT_BITS + 1)


def _check_requant(spec, bits: int, entries: int | None = None) -> None:
    if not isinstance(spec, nm.RequantSpec):
        raise ValueError(f"requant must be a RequantSpec, not {spec!r}")
    if entries is not None and len(spec) != entries:
        raise ValueError(f"requant must have {entries} entry, not {len(spec)}")
    qmin, qmax = nm.qrange(bits)
    if not qmin <= spec.lo <= spec.hi <= qmax:
        raise ValueError(f"requant bounds must lie in [{qmin}, {qmax}], not [{spec.lo}, {spec.hi}]")


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

    Max: a running maximum per lane; the window's result goes to the output register at the
    last tap (latency ``K*K``). Average: a running sum per lane; the sum and its divisor's
    entry are registered at the last tap, multiplied by ``M`` in a second stage, then rounded
    and clamped as logic (latency ``K*K + 1``). The divisor entry comes from a ROM indexed by
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
        width = p.acc_bits
        results = []
        for k in range(p.simd):
            x = self.i.payload[k]
            acc = Signal(signed(width), name=f"acc{k}")
            if p.kind == "max":
                result = Mux(first, x, Mux(x > acc, x, acc))
            else:
                result = Mux(first, x, acc + x)
            with m.If(take):
                m.d.sync += acc.eq(result)
            results.append(result)

        if p.kind == "max":
            with m.If(advance):
                m.d.sync += out_valid.eq(take & last)
            for k in range(p.simd):
                out = Signal(signed(p.bits), name=f"out{k}")
                with m.If(take & last):
                    m.d.sync += out.eq(results[k])
                m.d.comb += self.o.payload[k].eq(out)
            return m

        # Average: divisor entry of the current pixel, read one cycle ahead from a ROM.
        spec, entries = p.requant, len(p.requant)
        sel = Signal(range(max(2, entries)), name="entry")
        if entries > 1:
            rom = memory.Memory(shape=unsigned(len(sel)), depth=p.pixels,
                                init=[int(v) for v in p.divisor_index.flat])
            m.submodules.divisor_rom = rom
            rd = rom.read_port(domain="sync")
            pixel_next = Mux(pixel_done, Mux(pixels.last, 0, pixel + 1), pixel)
            m.d.comb += [rd.addr.eq(pixel_next), rd.en.eq(1)]
            entry_now = rd.data
        else:
            entry_now = 0
        sum_valid = Signal()
        mult = Signal(_MULT_SHAPE, name="mult")
        shamt_sel = Signal(range(nm.SHIFT_MAX), name="shamt_sel")
        shamt = Signal(range(nm.SHIFT_MAX), name="shamt")
        for j in range(entries):
            with m.If((sel == j) if entries > 1 else 1):
                m.d.comb += [mult.eq(int(spec.multiplier[j])), shamt_sel.eq(int(spec.shift[j]) - 1)]
        with m.If(advance):
            m.d.sync += [sum_valid.eq(take & last), out_valid.eq(sum_valid), shamt.eq(shamt_sel)]
        with m.If(take & last):
            m.d.sync += sel.eq(entry_now)
        for k in range(p.simd):
            total = Signal(signed(width), name=f"sum{k}")
            prod = Signal(signed(width + nm.MULT_BITS + 1), name=f"prod{k}")
            with m.If(take & last):
                m.d.sync += total.eq(results[k])
            with m.If(advance):
                m.d.sync += prod.eq(total * mult)
            m.d.comb += self.o.payload[k].eq(requantize_value(prod, shamt, spec.lo, spec.hi))
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
        # Max: the output register after the last tap; average adds the multiplier stage.
        return self.params.taps + (0 if self.params.kind == "max" else 1)

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Per lane an accumulator (and, for the average, a multiplier by the divisor's M);
        the divisor-entry ROM via memory_resources; counters."""
        p = self.params
        counters = sum(max(1, (n - 1).bit_length()) for n in (p.taps, p.groups, p.pixels))
        if p.kind == "max":
            return Resources(lut=p.simd * 2 * p.bits + 2 * counters,
                             ff=2 * p.simd * p.bits + counters + 1)
        pbits = p.acc_bits + nm.MULT_BITS + 1
        dsp = p.simd * multiplier_dsps(p.acc_bits, nm.MULT_BITS + 1, family)
        rom = (memory_resources(max(1, (len(p.requant) - 1).bit_length()), p.pixels, family)
               if len(p.requant) > 1 else Resources())
        lut = p.simd * (2 * p.acc_bits + pbits + 2 * p.bits) + 2 * counters + 22 * len(p.requant)
        ff = p.simd * (2 * p.acc_bits + pbits) + counters + 30
        return rom + Resources(dsp=dsp, lut=lut, ff=ff)


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

    The ``C/simd`` partial sums sit in a LUT RAM indexed by the beat's channel group (read
    asynchronously, written back on the same beat; the first pixel overwrites, so the RAM
    needs no clearing between frames).
    During the frame's last pixel each completed sum goes straight into the requantization
    pipeline (sum register, product register, rounding and clamp as logic), so the ``C/simd``
    output beats leave while the next frame starts accumulating: no bubbles.
    Latency ``(H*W - 1) * C/simd + 2``.

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

        sum_valid, out_valid = Signal(), Signal()
        m.d.comb += self.o.valid.eq(out_valid)
        with m.If(advance):
            m.d.sync += [sum_valid.eq(take & last), out_valid.eq(sum_valid)]
        spec = p.requant
        mult = Const(int(spec.multiplier[0]), _MULT_SHAPE)
        sums_w, sums_r = lut_ram(m, "sums", p.simd * p.acc_bits, g_count)
        m.d.comb += [sums_r.addr.eq(group), sums_w.addr.eq(group), sums_w.en.eq(take)]
        for k in range(p.simd):
            lane = slice(k * p.acc_bits, (k + 1) * p.acc_bits)
            new = Signal(signed(p.acc_bits), name=f"acc{k}")
            m.d.comb += [new.eq(Mux(first, self.i.payload[k],
                                    sums_r.data[lane].as_signed() + self.i.payload[k])),
                         sums_w.data[lane].eq(new)]
            total = Signal(signed(p.acc_bits), name=f"sum{k}")
            prod = Signal(signed(p.acc_bits + nm.MULT_BITS + 1), name=f"prod{k}")
            with m.If(take & last):
                m.d.sync += total.eq(new)
            with m.If(advance):
                m.d.sync += prod.eq(total * mult)
            m.d.comb += self.o.payload[k].eq(
                requantize_value(prod, int(spec.shift[0]) - 1, spec.lo, spec.hi))
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
        return (p.height * p.width - 1) * p.groups + 2  # last pixel's first beat, sum, product

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Per lane a multiplier; the C sums in LUT RAM (``simd * acc_bits`` bits wide,
        ``C/simd`` deep)."""
        p = self.params
        pbits = p.acc_bits + nm.MULT_BITS + 1
        counters = max(1, (p.groups - 1).bit_length()) + max(1, (p.height * p.width - 1).bit_length())
        dsp = p.simd * multiplier_dsps(p.acc_bits, nm.MULT_BITS + 1, family)
        lut = (p.simd * (2 * p.acc_bits + pbits + 2 * p.bits) + 2 * counters
               + lutram_luts(p.simd * p.acc_bits, p.groups, family))
        ff = p.simd * (p.acc_bits + pbits) + counters + 2
        return Resources(dsp=dsp, lut=lut, ff=ff)
