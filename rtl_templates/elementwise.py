"""Element-wise PEs: residual Add, LutActivation (table ROM) and ChannelScale (the SE multiply).

All three are short pipelines with one global enable: every stage register moves when the
output register is empty or being read (``advance = ~o.valid | o.ready``), so they sustain one
beat per cycle and hold their output under backpressure. The integer rules are those of
:mod:`dataflows.numerics`; requantization is :class:`rtl_templates.requant.Requantizer` (or,
in the residual Add, its :func:`~rtl_templates.requant.clamp_flags` stages).
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import memory
from amaranth.lib.wiring import In, Out

from dataflows import numerics as nm

from .counter import wrapping_counter
from .multiplier import PRODUCT_STAGES, product_cost, registered_product
from .pe import ProcessingElement, beat_signature, control_pipeline
from .requant import Requantizer, clamp_flags, requantizer_resources, select_clamped
from .resources import DeviceFamily, Resources, lutram_luts, memory_resources
from .rom import lut_ram

__all__ = ["AddParams", "Add", "LutParams", "LutActivation", "ChannelScaleParams",
           "ChannelScale", "check_int"]


# -- shared helpers (also used by rtl_templates.pool) -----------------------------------------
def check_int(value, name: str, low: int = 1) -> int:
    """``value`` as an int ``>= low``; ValueError quoting it otherwise."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise ValueError(f"{name} must be an int of at least {low}, not {value!r}")
    return int(value)


def _check_common(bits, simd) -> None:
    nm.qrange(bits)  # bits in 2..32, TypeError/ValueError quoting it
    check_int(simd, "simd")


# -- Add ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AddParams:
    """Shape and constants of an :class:`Add` (see :class:`dataflows.quantize.QAdd`).

    Attributes
    ----------
    bits, simd : int
        Beat layout of ``a``, ``b`` and ``o``.
    multiplier_a, multiplier_b, shift, lo, hi : int
        ``y = clamp(round_shift(a*Ma + b*Mb, shift), lo, hi)``.
    frame_beats : int
        Beats per frame (H*W*C/simd), for the cycle model.
    """

    bits: int
    simd: int
    multiplier_a: int
    multiplier_b: int
    shift: int
    lo: int
    hi: int
    frame_beats: int = 1

    def __post_init__(self):
        _check_common(self.bits, self.simd)
        for name in ("multiplier_a", "multiplier_b"):
            m = getattr(self, name)
            if isinstance(m, bool) or not isinstance(m, Integral) or not 0 <= m < 2 ** nm.MULT_BITS:
                raise ValueError(f"{name} must be an int in [0, 2**{nm.MULT_BITS}), not {m!r}")
        if isinstance(self.shift, bool) or not isinstance(self.shift, Integral) or \
                not nm.SHIFT_MIN <= self.shift <= nm.SHIFT_MAX:
            raise ValueError(f"shift must be an int in {nm.SHIFT_MIN}..{nm.SHIFT_MAX}, not {self.shift!r}")
        qmin, qmax = nm.qrange(self.bits)
        if not qmin <= self.lo <= self.hi <= qmax:
            raise ValueError(f"bounds must satisfy {qmin} <= lo <= hi <= {qmax}, "
                             f"not [{self.lo!r}, {self.hi!r}]")
        check_int(self.frame_beats, "frame_beats")


def _is_trivial_constant(m: int) -> bool:
    """A product by 0 or a power of two is wiring, not a multiplier."""
    return m == 0 or m & (m - 1) == 0


def _scaled(m: Module, name: str, x, multiplier: int, en) -> Signal:
    """``x * multiplier`` :data:`~rtl_templates.multiplier.PRODUCT_STAGES` enabled cycles
    later: a :func:`~rtl_templates.multiplier.registered_product`, or for a trivial constant
    (wiring, no multiplier) the product through as many registers."""
    factor = Const(multiplier, signed(nm.MULT_BITS + 1))
    if not _is_trivial_constant(multiplier):
        return registered_product(m, name, x, factor, en)
    value = x * factor
    for t in range(PRODUCT_STAGES):
        delayed = Signal(signed(len(x) + len(factor)), name=f"{name}_{t + 1}")
        with m.If(en):
            m.d.sync += delayed.eq(value)
        value = delayed
    return value


class Add(ProcessingElement):
    """Residual add of two streams at different scales, requantized to a third.

    Pipeline: products ``a*Ma``, ``b*Mb`` (stages 1-3, :func:`_scaled`), their sum (stage
    4), the rounded sum's narrow terms (stage 5, :func:`~rtl_templates.requant.clamp_flags` on
    the sum shifted by the constant ``shift - 1``), then the choice between the rounded value
    and a bound as logic on the stage-5 registers. A beat transfers only when both inputs are
    valid and the pipeline advances. Latency 5, one beat per cycle. (Rounding and clamping on the sum in
    one cycle was four LUT levels on UltraScale+, where 250 MHz allows three.)

    Parameters
    ----------
    params : AddParams
    """

    def __init__(self, params: AddParams):
        if not isinstance(params, AddParams):
            raise TypeError(f"params must be AddParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"a": In(sig), "b": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        advance = ~self.o.valid | self.o.ready
        take = self.a.valid & self.b.valid & advance
        m.d.comb += [self.a.ready.eq(self.b.valid & advance),
                     self.b.ready.eq(self.a.valid & advance)]
        pbits = p.bits + nm.MULT_BITS + 1
        valid = [take] + [Signal(name=f"v{t}") for t in range(1, self.latency() + 1)]
        m.d.comb += self.o.valid.eq(valid[-1])
        with m.If(advance):
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
        for k in range(p.simd):
            pa = _scaled(m, f"pa{k}", self.a.payload[k], p.multiplier_a, advance)
            pb = _scaled(m, f"pb{k}", self.b.payload[k], p.multiplier_b, advance)
            total = Signal(signed(pbits + 1), name=f"sum{k}")
            with m.If(advance):
                m.d.sync += total.eq(pa + pb)
            flags = {"fits": Signal(name=f"fits{k}"), "negative": Signal(name=f"negative{k}"),
                     "under": Signal(name=f"under{k}"), "over": Signal(name=f"over{k}"),
                     "rounded": Signal(p.bits, name=f"rounded{k}")}
            terms = clamp_flags(total >> (p.shift - 1), p.lo, p.hi, p.bits)
            with m.If(advance):
                m.d.sync += [flags[name].eq(terms[name]) for name in flags]
            m.d.comb += self.o.payload[k].eq(select_clamped(flags, p.lo, p.hi))
        return m

    def behaviour(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        p = self.params
        return nm.add_requantize(a, b, p.multiplier_a, p.multiplier_b, p.shift, p.lo, p.hi)

    def cycles_per_frame(self) -> int:
        return self.params.frame_beats

    def latency(self) -> int:
        return PRODUCT_STAGES + 2  # the products, the sum register, rounding and clamp terms

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Per lane: a product per non-trivial constant (:func:`_scaled`); LUTs: sum,
        rounding, clamp; FF: the trivial products' delay lines, sum and clamp registers."""
        p = self.params
        pbits = p.bits + nm.MULT_BITS + 1
        product = product_cost(p.bits, nm.MULT_BITS + 1, PRODUCT_STAGES, family)
        mults = sum(not _is_trivial_constant(mm) for mm in (p.multiplier_a, p.multiplier_b))
        # A constant operand's register is a constant: synthesis removes it.
        per_product = Resources(dsp=product.dsp, lut=product.lut,
                                ff=product.operand_ff[0] + product.ff)
        lut = p.simd * (pbits + 2 * p.bits + (pbits if mults < 2 else 0)) + 4
        ff = (p.simd * ((2 - mults) * PRODUCT_STAGES * pbits + pbits + 1 + p.bits + 4)
              + self.latency())
        return per_product.scaled(p.simd * mults) + Resources(lut=lut, ff=ff)


# -- LutActivation ------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LutParams:
    """Shape and table of a :class:`LutActivation` (see :class:`dataflows.quantize.QLut`).

    Attributes
    ----------
    bits, simd : int
        Beat layout.
    table : numpy.ndarray
        ``2**bits`` entries, entry ``i`` for input ``qmin + i`` (numerics.build_lut).
    frame_beats : int
        Beats per frame, for the cycle model.
    """

    bits: int
    simd: int
    table: np.ndarray
    frame_beats: int = 1

    def __post_init__(self):
        _check_common(self.bits, self.simd)
        if self.bits > 12:
            raise ValueError(f"a table ROM of 2**bits entries needs bits <= 12, not {self.bits!r}")
        table = np.asarray(self.table, dtype=np.int64)
        if table.shape != (2 ** self.bits,):
            raise ValueError(f"a {self.bits}-bit table has {2 ** self.bits} entries, not shape {table.shape}")
        qmin, qmax = nm.qrange(self.bits)
        if table.size and (table.min() < qmin or table.max() > qmax):
            raise ValueError(f"table entries must be in [{qmin}, {qmax}], not [{table.min()}, {table.max()}]")
        table.flags.writeable = False
        object.__setattr__(self, "table", table)
        check_int(self.frame_beats, "frame_beats")


class LutActivation(ProcessingElement):
    """Element-wise activation by table: one ROM per lane, addressed by ``q - qmin``.

    ``q - qmin`` is ``q`` with its sign bit inverted, so the address costs no logic. The ROM's
    synchronous read port is the single pipeline stage: latency 1, one beat per cycle.

    Parameters
    ----------
    params : LutParams
    """

    def __init__(self, params: LutParams):
        if not isinstance(params, LutParams):
            raise TypeError(f"params must be LutParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += self.o.valid.eq(self.i.valid)
        init = [int(v) for v in p.table]
        for k in range(p.simd):
            rom = memory.Memory(shape=signed(p.bits), depth=2 ** p.bits, init=init)
            m.submodules[f"rom{k}"] = rom
            rd = rom.read_port(domain="sync")
            lane = self.i.payload[k].as_unsigned()
            m.d.comb += [rd.addr.eq(lane ^ (1 << (p.bits - 1))), rd.en.eq(advance),
                         self.o.payload[k].eq(rd.data)]
        return m

    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        return nm.apply_lut(frame, self.params.table, self.params.bits)

    def cycles_per_frame(self) -> int:
        return self.params.frame_beats

    def latency(self) -> int:
        return 1  # the ROM's read register

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """One ``2**bits`` x ``bits`` ROM per lane (memory_resources), plus the valid bit."""
        p = self.params
        return memory_resources(p.bits, 2 ** p.bits, family).scaled(p.simd) + Resources(lut=2, ff=1)


# -- ChannelScale -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ChannelScaleParams:
    """Shape and constants of a :class:`ChannelScale` (see :class:`dataflows.quantize.QMul`).

    Attributes
    ----------
    bits, simd : int
        Beat layout of ``a`` (feature map), ``b`` (gate) and ``o``.
    channels, height, width : int
        Feature map shape (H, W, C); the gate is (1, 1, C).
    requant : RequantSpec
        One entry (a scalar ratio) or ``channels`` entries.
    """

    bits: int
    simd: int
    channels: int
    height: int
    width: int
    requant: nm.RequantSpec

    def __post_init__(self):
        _check_common(self.bits, self.simd)
        for name in ("channels", "height", "width"):
            check_int(getattr(self, name), name)
        if self.channels % self.simd:
            raise ValueError(f"channels {self.channels!r} do not fold into {self.simd!r} lanes")
        if not isinstance(self.requant, nm.RequantSpec) or len(self.requant) not in (1, self.channels):
            raise ValueError(f"requant must be a RequantSpec of 1 or {self.channels} entries, "
                             f"not {self.requant!r}")
        qmin, qmax = nm.qrange(self.bits)
        if not qmin <= self.requant.lo <= self.requant.hi <= qmax:
            raise ValueError(f"requant bounds must lie in [{qmin}, {qmax}], "
                             f"not [{self.requant.lo}, {self.requant.hi}]")

    @property
    def groups(self) -> int:
        return self.channels // self.simd


class ChannelScale(ProcessingElement):
    """Scale every pixel of ``a`` by the per-channel gate ``b``: the SE block's multiply.

    The gate (``C/simd`` beats per frame) is stored in one of two banks of a LUT RAM, read
    asynchronously at the pixel beat's channel group. While frame ``n`` is scaled, frame
    ``n+1``'s gate loads into the other bank, so frames follow back to back. ``a`` is accepted
    only once its frame's gate is complete. Pipeline: ``x * g`` (a
    :func:`~rtl_templates.multiplier.registered_product`), then the compute PEs'
    :class:`~rtl_templates.requant.Requantizer` with the channel group's constants.
    Latency (from ``a``'s first transfer) ``PRODUCT_STAGES + Requantizer.LATENCY``.

    Parameters
    ----------
    params : ChannelScaleParams
    """

    def __init__(self, params: ChannelScaleParams):
        if not isinstance(params, ChannelScaleParams):
            raise TypeError(f"params must be ChannelScaleParams, not {params!r}")
        self.params = params
        sig = beat_signature(params.bits, params.simd)
        super().__init__({"a": In(sig), "b": In(sig), "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        g_count = p.groups
        frame_beats = p.height * p.width * g_count
        advance = ~self.o.valid | self.o.ready

        # Two gate banks; full[k] once loaded, cleared after its frame's last pixel beat.
        gates_w, gates_r = lut_ram(m, "gates", p.simd * p.bits, 2 * g_count)
        full = [Signal(name=f"full{bank}") for bank in range(2)]
        wsel, rsel = Signal(), Signal()

        w_full = Mux(wsel, full[1], full[0])
        r_full = Mux(rsel, full[1], full[0])
        load = self.b.valid & ~w_full
        take = self.a.valid & r_full & advance
        loads = wrapping_counter(m, "load_count", g_count, load)
        beats = wrapping_counter(m, "beat_count", frame_beats, take)
        load_count = loads.value
        group = wrapping_counter(m, "group", g_count, take).value
        m.d.comb += [self.b.ready.eq(~w_full), self.a.ready.eq(r_full & advance)]

        m.d.comb += [gates_w.en.eq(load), gates_w.addr.eq(wsel * g_count + load_count),
                     gates_w.data.eq(self.b.payload.as_value()),
                     gates_r.addr.eq(rsel * g_count + group)]
        with m.If(load):
            with m.If(loads.last):
                m.d.sync += wsel.eq(~wsel)
                for bank in range(2):
                    with m.If(wsel == bank):
                        m.d.sync += full[bank].eq(1)
        with m.If(take):
            with m.If(beats.last):
                m.d.sync += rsel.eq(~rsel)
                for bank in range(2):
                    with m.If(rsel == bank):
                        m.d.sync += full[bank].eq(0)

        # x * g (registered_product), then the compute PEs' pipelined requantizer with the
        # constants of the beat's channel group: rounding and clamp as logic after the
        # product register measured 3.32 levels, over UltraScale+'s three.
        prod_valid, prod_group = control_pipeline(m, (take, group), ("v", "group_"),
                                                  range(1, PRODUCT_STAGES + 1), advance)[-1]
        m.submodules.requant = rq = Requantizer(p.requant, p.simd, g_count, 2 * p.bits, p.bits)
        m.d.comb += [rq.en.eq(advance), rq.valid.eq(prod_valid), rq.group.eq(prod_group),
                     self.o.valid.eq(rq.result_valid), self.o.payload.eq(rq.result)]
        for k in range(p.simd):
            head = gates_r.data[k * p.bits:(k + 1) * p.bits].as_signed()
            xg = registered_product(m, f"xg{k}", self.a.payload[k], head, advance)
            m.d.comb += rq.acc[k].eq(xg)
        return m

    def behaviour(self, x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """``x`` an (H, W, C) frame, ``g`` the (1, 1, C) gate: numerics.mul_requantize."""
        spec = self.params.requant
        mult, shift = (spec.multiplier, spec.shift) if len(spec) > 1 else (spec.multiplier[0], spec.shift[0])
        return nm.mul_requantize(x, g, mult, shift, spec.lo, spec.hi)

    def cycles_per_frame(self) -> int:
        p = self.params
        return p.height * p.width * p.groups  # the next gate loads during the current frame

    def latency(self) -> int:
        return PRODUCT_STAGES + Requantizer.LATENCY  # from a's first transfer: x*g, requantizer

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """Per lane the x*g multiplier and its register; the requantizer's model; the two gate
        banks in LUT RAM (``simd * bits`` wide, ``2 * C/simd`` deep)."""
        p = self.params
        requant = requantizer_resources(p.requant, p.simd, p.groups, 2 * p.bits, p.bits, family)
        counters = 2 * max(1, (p.height * p.width * p.groups).bit_length()) + 8
        lut = (p.simd * 2 * p.bits + counters
               + lutram_luts(p.simd * p.bits, 2 * p.groups, family))
        product = product_cost(p.bits, p.bits, PRODUCT_STAGES, family)
        lut += p.simd * product.lut
        ff = (p.simd * (sum(product.operand_ff) + product.ff) + counters
              + PRODUCT_STAGES * (1 + max(1, (p.groups - 1).bit_length())))
        return requant + Resources(dsp=p.simd * product.dsp, lut=lut, ff=ff)
