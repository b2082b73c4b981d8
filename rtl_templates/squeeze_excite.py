"""SqueezeExcite: the squeeze-and-excitation block of MobileNet V3 and EfficientNet.

Composition (every arrow a stream of docs/streams.md)::

    i -> Fork -o0-> GlobalAvgPool -> reduce MVU (1x1 on 1x1, fused ReLU) -> expand MVU (1x1)
              |     -> LutActivation (hard sigmoid / sigmoid) [-> WidthConverter] -b-\\
              \\-o1-> frame Fifo (one feature map plus the gate path's slack) --------a-> ChannelScale -> o

The gate of frame ``n`` depends on every pixel of frame ``n``, so its pixels wait in the frame
FIFO until the gate is complete: the block buffers one whole feature map (``H*W*C/simd`` beats
of ``simd * bits`` bits, block RAM once it passes the LUT-RAM threshold) plus the beats of
frame ``n+1`` that arrive while the gate path finishes frame ``n``'s gate.

Lanes: the pool and the reduce MVU read ``simd`` lanes, the expand MVU reads the reduce's
``pe`` lanes, the table runs at the expand's ``pe`` lanes, and a WidthConverter re-folds the
gate to ``simd`` lanes for ChannelScale's ``b`` when ``expand.pe != simd``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dataflows import layers as L
from dataflows.quantize import QLut, QMul, QPool

from .beats import beats_to_frame, frame_to_beats
from .elementwise import ChannelScale, ChannelScaleParams, LutActivation, LutParams
from .fifo import Fifo, FifoParams
from .fire_module import conv_params
from .matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit, check_int
from .pe import ProcessingElement, beat_signature
from .plumbing import Fork, ForkParams
from .pool import GlobalAvgPool, GlobalAvgPoolParams
from .resources import DeviceFamily, Resources
from .width_converter import WidthConverter, WidthConverterParams

__all__ = ["SqueezeExciteParams", "SqueezeExcite", "FRAME_SLACK"]

#: Beats the frame FIFO holds beyond :meth:`SqueezeExcite.gate_ready`. At full rate each beat
#: waits ``gate_ready()`` cycles, so ``gate_ready()`` beats sit in the FIFO when a write comes:
#: one in SyncFIFOBuffered's output register, the rest in its ``depth - 1``-word memory, whose
#: ``w_rdy`` needs a free word. One less and the fork stalls a cycle per frame (measured).
FRAME_SLACK = 1


@dataclass(frozen=True, eq=False)
class SqueezeExciteParams:
    """Shape, constants and folding of a :class:`SqueezeExcite`.

    Attributes
    ----------
    height, width, channels, simd : int
        Input frame (H, W, C) in beats of ``simd`` lanes; the output has the same shape.
    pool : GlobalAvgPoolParams
        The squeeze; ``simd`` lanes.
    reduce : MatrixVectorParams
        FC ``C -> C/r`` (a 1x1 conv on the 1x1 map, ``pixels == 1``), ``simd`` lanes in; the
        fused ReLU is its requant's ``lo == 0``.
    expand : MatrixVectorParams
        FC ``C/r -> C``, ``pixels == 1``, reading the reduce's ``pe`` lanes.
    gate : LutParams
        The table of the hard sigmoid or sigmoid, at ``expand.pe`` lanes.
    scale : ChannelScaleParams
        ``x * gate`` requantized (:class:`dataflows.quantize.QMul`), ``simd`` lanes.

    Raises
    ------
    ValueError, TypeError
        On an inconsistent value; the message quotes it.
    """

    height: int
    width: int
    channels: int
    simd: int
    pool: GlobalAvgPoolParams
    reduce: MatrixVectorParams
    expand: MatrixVectorParams
    gate: LutParams
    scale: ChannelScaleParams

    def __post_init__(self):
        for name in ("height", "width", "channels", "simd"):
            check_int(getattr(self, name), name)
        for name, kind in (("pool", GlobalAvgPoolParams), ("reduce", MatrixVectorParams),
                           ("expand", MatrixVectorParams), ("gate", LutParams),
                           ("scale", ChannelScaleParams)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be {kind.__name__}, not {getattr(self, name)!r}")
        h, w, c, s = self.height, self.width, self.channels, self.simd
        if c % s:
            raise ValueError(f"channels {c!r} do not fold into simd={s!r} lanes")
        for name in ("pool", "scale"):
            p = getattr(self, name)
            if (p.height, p.width, p.channels, p.simd) != (h, w, c, s):
                raise ValueError(f"{name} shape (H, W, C, simd) = "
                                 f"{(p.height, p.width, p.channels, p.simd)!r} must be {(h, w, c, s)!r}")
        rd, ex = self.reduce, self.expand
        if rd.taps != c or rd.simd != s or rd.pixels != 1:
            raise ValueError(f"reduce (taps={rd.taps!r}, simd={rd.simd!r}, pixels={rd.pixels!r}) "
                             f"must read the pooled vector (taps={c}, simd={s}, pixels=1)")
        if ex.taps != rd.cout or ex.simd != rd.pe or ex.pixels != 1:
            raise ValueError(f"expand (taps={ex.taps!r}, simd={ex.simd!r}, pixels={ex.pixels!r}) "
                             f"must read the reduce output (taps={rd.cout}, simd={rd.pe}, pixels=1)")
        if ex.cout != c:
            raise ValueError(f"expand must restore the {c} channels, not {ex.cout!r}")
        if self.gate.simd != ex.pe or self.gate.frame_beats != ex.groups:
            raise ValueError(f"gate (simd={self.gate.simd!r}, frame_beats={self.gate.frame_beats!r})"
                             f" must take the expand output (pe={ex.pe}, {ex.groups} beats)")
        if max(ex.pe, s) % min(ex.pe, s):
            raise ValueError(f"expand pe={ex.pe!r} and simd={s!r}: one must be a multiple of the "
                             "other for the gate's width converter")
        bits = {self.pool.bits, rd.in_bits, rd.out_bits, ex.in_bits, ex.out_bits,
                self.gate.bits, self.scale.bits}
        if len(bits) != 1:
            raise ValueError(f"activation widths disagree between the units: {sorted(bits)!r}")

    @property
    def bits(self) -> int:
        return self.scale.bits

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def frame_beats(self) -> int:
        return self.height * self.width * self.channels // self.simd

    @classmethod
    def from_quantized(cls, qmodel, *, simd: int, reduce_pe: int, expand_pe: int,
                       pool: str = "pool", reduce: str = "reduce", expand: str = "expand",
                       gate: str = "gate", mul: str = "scale") -> "SqueezeExciteParams":
        """Params of the SE block with nodes ``pool`` (GlobalAvgPool), ``reduce`` and
        ``expand`` (1x1 convs, the first with a fused ReLU), ``gate`` (a table activation) and
        ``mul`` (``Mul(inputs=[x, gate])``) in a :class:`~dataflows.quantize.QuantizedModel`."""
        model = qmodel.model
        h, w, c = model.input_shapes(pool)[0]
        if model.inputs_of(mul) != [model.inputs_of(pool)[0], gate]:
            raise ValueError(f"{mul!r} must multiply the pool's input by {gate!r}, not "
                             f"{model.inputs_of(mul)!r}")
        bits, wbits = qmodel.config.abits, qmodel.config.wbits
        q_pool, q_gate, q_mul = (qmodel.params[n] for n in (pool, gate, mul))
        for name, q, kind in ((pool, q_pool, QPool), (gate, q_gate, QLut), (mul, q_mul, QMul)):
            if not isinstance(q, kind):
                raise ValueError(f"node {name!r} must have {kind.__name__} params, not {q!r}")
        if not isinstance(model.layer(pool), L.GlobalAvgPool):
            raise ValueError(f"node {pool!r} must be a GlobalAvgPool, not {model.layer(pool)!r}")
        rd = conv_params(qmodel.params[reduce], bits=bits, wbits=wbits, pe=reduce_pe, simd=simd,
                         pixels=1)
        ex = conv_params(qmodel.params[expand], bits=bits, wbits=wbits, pe=expand_pe,
                         simd=reduce_pe, pixels=1)
        return cls(height=h, width=w, channels=c, simd=simd,
                   pool=GlobalAvgPoolParams(bits, c, h, w, simd, q_pool.requant, q_pool.acc_bits),
                   reduce=rd, expand=ex,
                   gate=LutParams(bits, expand_pe, q_gate.table, frame_beats=ex.groups),
                   scale=ChannelScaleParams(bits, simd, c, h, w, q_mul.requant))


class SqueezeExcite(ProcessingElement):
    """A squeeze-and-excitation block (see the module docstring).

    Timing, with the input at one beat per cycle from cycle 0 (``F = H*W*C/simd``): the pool
    emits the pooled vector during the frame's last pixel, the gate path turns it into the
    gate, whose last beat loads into ChannelScale at :meth:`gate_ready` ``- 1``; from
    :meth:`gate_ready` on the frame streams out of the frame FIFO at one beat per cycle. Each
    beat therefore waits ``gate_ready()`` cycles in the FIFO, which holds that many beats plus
    :data:`FRAME_SLACK` so the fork never stalls: in steady state frame ``n+1`` enters while
    frame ``n`` is scaled, ChannelScale's second gate bank takes gate ``n+1`` while gate ``n``
    is in use, and every unit runs at one frame per ``F`` cycles (the gate path is idle most of
    the frame).

    Parameters
    ----------
    params : SqueezeExciteParams

    Attributes
    ----------
    i, o : stream of ``simd`` lanes
    fork, pool, reduce, expand, gate, convert, frame, scale : ProcessingElement
        ``convert`` (the gate's WidthConverter) is ``None`` when ``expand.pe == simd``.
    frame_depth : int
        Beats of the frame FIFO, ``gate_ready() + FRAME_SLACK``.
    """

    def __init__(self, params: SqueezeExciteParams):
        if not isinstance(params, SqueezeExciteParams):
            raise TypeError(f"params must be SqueezeExciteParams, not {params!r}")
        self.params = p = params
        self.fork = Fork(ForkParams(bits=p.bits, simd=p.simd, channels=p.channels,
                                    pixels=p.height * p.width))
        self.pool = GlobalAvgPool(p.pool)
        self.reduce = MatrixVectorUnit(p.reduce)
        self.expand = MatrixVectorUnit(p.expand)
        self.gate = LutActivation(p.gate)
        self.convert = None
        if p.expand.pe != p.simd:
            self.convert = WidthConverter(WidthConverterParams(
                bits=p.bits, simd_in=p.expand.pe, simd_out=p.simd, channels=p.channels, pixels=1))
        self.scale = ChannelScale(p.scale)
        self.frame_depth = self.gate_ready() + FRAME_SLACK
        self.frame = Fifo(FifoParams(bits=p.bits, lanes=p.simd, depth=self.frame_depth,
                                     frame_beats=p.frame_beats))
        sig = beat_signature(p.bits, p.simd)
        super().__init__({"i": In(sig), "o": Out(sig)})

    def units(self) -> dict[str, ProcessingElement]:
        names = ("fork", "pool", "reduce", "expand", "gate", "convert", "frame", "scale")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units().items():
            m.submodules[name] = unit
        wiring.connect(m, wiring.flipped(self.i), self.fork.i)
        wiring.connect(m, self.fork.o0, self.pool.i)
        wiring.connect(m, self.pool.o, self.reduce.i)
        wiring.connect(m, self.reduce.o, self.expand.i)
        wiring.connect(m, self.expand.o, self.gate.i)
        if self.convert is not None:
            wiring.connect(m, self.gate.o, self.convert.i)
            wiring.connect(m, self.convert.o, self.scale.b)
        else:
            wiring.connect(m, self.gate.o, self.scale.b)
        wiring.connect(m, self.fork.o1, self.frame.i)
        wiring.connect(m, self.frame.o, self.scale.a)
        wiring.connect(m, self.scale.o, wiring.flipped(self.o))
        return m

    # -- models -------------------------------------------------------------------------------
    def behaviour(self, frame: np.ndarray) -> np.ndarray:
        """One (H, W, C) frame to the scaled frame, composed of the sub-PEs' models."""
        p = self.params
        frame = np.asarray(frame, dtype=np.int64)
        if frame.shape != p.shape:
            raise ValueError(f"frame shape must be {p.shape}, not {frame.shape!r}")
        pooled = self.pool.behaviour(frame)                               # (1, 1, C)
        hidden = self.reduce.behaviour(frame_to_beats(pooled, p.simd))    # reduce.pe lanes
        logits = self.expand.behaviour(hidden.reshape(-1, p.expand.simd))  # expand.pe lanes
        gate = beats_to_frame(self.gate.behaviour(logits), (1, 1, p.channels))
        return self.scale.behaviour(frame, gate)

    def gate_beat_times(self) -> list[int]:
        """Cycle of every gate beat's transfer into ChannelScale ``b``, counted from the
        frame's first input transfer, on an empty block with no idle input and no stall.

        * pool: beat ``j`` at ``pool.latency() + j`` (the last pixel's beats, one per cycle);
        * an MVU on one pixel issues group 0's steps as their inputs arrive, then replays the
          other groups back to back: group ``g`` leaves ``g * steps + pipeline`` after the
          last input arrives (``pipeline``: the unit's own);
        * the table adds 1;
        * a narrowing converter loads a beat when it arrives or when its previous beat's last
          slice leaves, whichever is later, and sends ``k`` slices on the following cycles; a
          widening one sends a wide beat the cycle after its ``k``-th narrow beat arrives.
        """
        p = self.params
        t = [self.pool.latency() + j for j in range(p.pool.groups)]
        for mvu in (self.reduce, self.expand):
            q = mvu.params
            last = t[q.steps - 1]
            t = [last + g * q.steps + mvu.pipeline for g in range(q.groups)]
        t = [x + self.gate.latency() for x in t]
        if self.convert is None:
            return t
        k = self.convert.params.ratio
        if not self.convert.params.narrowing:
            return [t[(j + 1) * k - 1] + 1 for j in range(len(t) // k)]
        out, load = [], None
        for x in t:
            load = x if load is None else max(x, load + k)
            out += [load + 1 + s for s in range(k)]
        return out

    def gate_ready(self) -> int:
        """First cycle ChannelScale may take the frame's first pixel beat: the cycle after
        the gate's last beat loads."""
        return self.gate_beat_times()[-1] + 1

    def cycles_per_frame(self) -> int:
        """The slowest unit sets the pace; the frame FIFO (``gate_ready() + FRAME_SLACK``
        beats) keeps the fork moving while the gate is computed, so this is ``F`` unless the
        gate path needs more than ``F`` cycles per frame."""
        return max(u.cycles_per_frame() for u in self.units().values())

    def latency(self) -> int:
        """:meth:`gate_ready` (at least ``F``: the whole frame must arrive before the gate
        exists), then ChannelScale's two pipeline registers."""
        return self.gate_ready() + self.scale.latency()

    def resources(self, family: str | DeviceFamily = "7series") -> Resources:
        """The sum of the sub-PEs' resources (the composite adds only wires). The frame FIFO
        (one feature map plus the gate path's lag) dominates: its memory is counted by
        :func:`~rtl_templates.resources.memory_resources`, BRAM18 above the LUT-RAM threshold."""
        total = Resources()
        for unit in self.units().values():
            total = total + unit.resources(family)
        return total
