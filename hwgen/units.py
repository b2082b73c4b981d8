"""The PEs of one stage at a given folding: where a stage meets :mod:`rtl_templates`.

Every cycle and resource figure the compiler uses comes from these PEs' own models
(``cycles_per_frame``, ``latency``, ``resources``), so the folding search, the report and the
RTL can never disagree about what a stage is.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dataflows import numerics as nm
from rtl_templates.beats import WindowOrder
from rtl_templates.channel_shuffle import ChannelShuffle, ChannelShuffleParams
from rtl_templates.depthwise_unit import DepthwiseParams, DepthwiseUnit
from rtl_templates.elementwise import (Add, AddParams, ChannelScale, ChannelScaleParams,
                                       LutActivation, LutParams)
from rtl_templates.fifo import Fifo, FifoParams
from rtl_templates.matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit
from rtl_templates.pe import ProcessingElement
from rtl_templates.plumbing import (Concat, ConcatParams, Fork, ForkParams, Split, SplitParams)
from rtl_templates.pool import GlobalAvgPool, GlobalAvgPoolParams, Pool, PoolParams
from rtl_templates.resources import MemoryStyle, Resources
from rtl_templates.sliding_window import SlidingWindow, SlidingWindowParams
from rtl_templates.weight_load import LoadTarget
from rtl_templates.width_converter import WidthConverter, WidthConverterParams

from .hwgraph import Op, Stage
from .lower import dense_weights

__all__ = ["stage_units", "stage_resources", "needs_window", "weights_of", "window_lanes",
           "load_target", "load_words", "reads_ddr"]


def needs_window(stage: Stage) -> bool:
    """A conv reads windows unless it is 1x1, stride 1, unpadded (then it reads pixels)."""
    if stage.op in (Op.DEPTHWISE, Op.MAXPOOL, Op.AVGPOOL):
        return True
    if stage.op is not Op.CONV:
        return False
    s = stage.spec
    return s.kernel != (1, 1) or s.stride != (1, 1) or any(s.padding)


def window_lanes(stage: Stage, simd: int) -> tuple[int, int]:
    """``(lanes, kx_lanes)`` of the window feeding a conv's MVU at ``simd`` taps per cycle:
    a SIMD beyond the input channels is all of them times ``kx_lanes`` kernel columns."""
    cin = stage.in_shapes[0].c
    return (cin, simd // cin) if simd > cin else (simd, 1)


def weights_of(stage: Stage) -> np.ndarray:
    """(cout, taps) weight matrix in the order the MVU reads (taps: ky, kx, channel)."""
    cached = stage.cache.get("weights")
    if cached is None:
        q = stage.qparams
        w = np.asarray(q.weight)
        if w.ndim == 4:
            w = dense_weights(stage.spec, w, stage.in_channels)
        cached = stage.cache["weights"] = w.reshape(w.shape[0], -1)
    return cached


def _window(stage: Stage, lanes: int, order: WindowOrder, pad_value: int = 0,
            kx_lanes: int = 1) -> SlidingWindow:
    s, shape = stage.spec, stage.in_shapes[0]
    return SlidingWindow(SlidingWindowParams(
        bits=stage.in_bits[0], channels=shape.c, height=shape.h, width=shape.w,
        kernel=s.kernel[0], stride=s.stride[0], padding=tuple(s.padding),
        ceil_mode=bool(getattr(s, "ceil_mode", False)), simd=lanes, order=order,
        pad_value=pad_value, kx_lanes=kx_lanes))


def stage_units(stage: Stage, pe: int | None = None, simd: int | None = None
                ) -> list[tuple[str, ProcessingElement]]:
    """The chain of PEs (input first) implementing ``stage`` at folding ``(pe, simd)``
    (default: the stage's own). Cached: the folding search asks for the same ones often."""
    pe = stage.pe if pe is None else pe
    simd = stage.simd if simd is None else simd
    cache = stage.cache.setdefault("units", {})
    key = (pe, simd, stage.fifo_depth, stage.weight_style, stage.ddr_bytes_per_cycle)
    if key not in cache:
        cache[key] = _build(stage, pe, simd)
    return cache[key]


def stage_resources(stage: Stage, family="7series") -> Resources:
    """The resources of ``stage``'s PEs at its folding, summed."""
    return sum((unit.resources(family) for _, unit in stage_units(stage)), Resources())


def load_target(stage: Stage) -> LoadTarget | None:
    """The weight memory the weight load writes for ``stage`` (its weights in URAM), or None."""
    if stage.weight_style is not MemoryStyle.ULTRA:
        return None
    mvu = stage_units(stage)[-1][1]
    return LoadTarget(stage.name, mvu.load_width, mvu.params.groups * mvu.params.steps)


def reads_ddr(stage: Stage) -> bool:
    """Whether ``stage`` reads its weights from DDR every frame."""
    return stage.weight_style is MemoryStyle.DDR


def load_words(stage: Stage) -> list[int]:
    """The words :func:`load_target`'s memory holds, in address order."""
    return stage_units(stage)[-1][1].load_words()


@lru_cache(maxsize=None)
def _acc_bits(in_bits: int, wbits: int, taps: int, acc_bits: int) -> int:
    return max(acc_bits, nm.accumulator_bits(in_bits, wbits, taps))


def _build(stage: Stage, pe: int, simd: int) -> list[tuple[str, ProcessingElement]]:
    op, out, q = stage.op, stage.out_shape, stage.qparams
    bits, in_bits = stage.bits, stage.in_bits[0]
    pixels = out.h * out.w
    if op in (Op.CONV, Op.FC):
        w = weights_of(stage)
        wbits = stage.wbits
        mvu = MatrixVectorUnit(MatrixVectorParams(
            in_bits=in_bits, out_bits=bits, weights=w, bias=q.bias, requant=q.requant,
            wbits=wbits, acc_bits=_acc_bits(in_bits, wbits, w.shape[1], q.acc_bits),
            pe=pe, simd=simd, pixels=pixels,
            weight_style=stage.weight_style, ddr_bytes_per_cycle=stage.ddr_bytes_per_cycle))
        if needs_window(stage):
            lanes, kx_lanes = window_lanes(stage, simd)
            window = _window(stage, lanes, WindowOrder.TAP_MAJOR, kx_lanes=kx_lanes)
            return [("window", window), ("mvu", mvu)]
        return [("mvu", mvu)]
    if op is Op.DEPTHWISE:
        w = np.asarray(q.weight)
        dw = DepthwiseUnit(DepthwiseParams(
            in_bits=in_bits, out_bits=bits, weights=w.reshape(w.shape[0], -1), bias=q.bias,
            requant=q.requant, wbits=stage.wbits, acc_bits=q.acc_bits,
            kernel=stage.spec.kernel[0], pe=pe, pixels=pixels))
        return [("window", _window(stage, pe, WindowOrder.CHANNEL_MAJOR)), ("dw", dw)]
    if op in (Op.MAXPOOL, Op.AVGPOOL):
        kind = "max" if op is Op.MAXPOOL else "avg"
        extra = {} if kind == "max" else {"requant": q.requant, "divisor_index": q.index,
                                          "acc_bits": q.acc_bits}
        pool = Pool(PoolParams(kind=kind, bits=bits, channels=out.c, out_height=out.h,
                               out_width=out.w, kernel=tuple(stage.spec.kernel), simd=simd,
                               **extra))
        pad = nm.qrange(in_bits)[0] if kind == "max" else 0
        return [("window", _window(stage, simd, WindowOrder.CHANNEL_MAJOR, pad)), ("pool", pool)]
    shape = stage.in_shapes[0]
    in_pixels = shape.h * shape.w
    if op is Op.GLOBAL_AVGPOOL:
        return [("gap", GlobalAvgPool(GlobalAvgPoolParams(
            bits=bits, channels=shape.c, height=shape.h, width=shape.w, simd=simd,
            requant=q.requant, acc_bits=q.acc_bits)))]
    if op is Op.ADD:
        return [("add", Add(AddParams(bits=bits, simd=simd, multiplier_a=q.multiplier_a,
                                      multiplier_b=q.multiplier_b, shift=q.shift, lo=q.lo,
                                      hi=q.hi, frame_beats=pixels * out.c // simd)))]
    if op is Op.CONCAT:
        a, b = stage.in_shapes
        return [("concat", Concat(ConcatParams(bits=bits, simd=simd, channels_a=a.c,
                                               channels_b=b.c, pixels=pixels)))]
    if op is Op.SPLIT:
        return [("split", Split(SplitParams(bits=bits, simd=simd,
                                            channels_0=stage.split_channels[0],
                                            channels_1=stage.split_channels[1],
                                            pixels=in_pixels)))]
    if op is Op.SHUFFLE:
        return [("shuffle", ChannelShuffle(ChannelShuffleParams(
            bits=bits, simd=simd, channels=out.c, groups=stage.spec.groups, pixels=pixels)))]
    if op is Op.LUT:
        return [("lut", LutActivation(LutParams(bits=bits, simd=simd, table=stage.lut_table,
                                                frame_beats=pixels * out.c // simd)))]
    if op is Op.SCALE:
        return [("scale", ChannelScale(ChannelScaleParams(
            bits=bits, simd=simd, channels=out.c, height=out.h, width=out.w,
            requant=q.requant)))]
    if op is Op.FORK:
        return [("fork", Fork(ForkParams(bits=bits, simd=simd, channels=shape.c,
                                         pixels=in_pixels, outputs=stage.outputs)))]
    if op is Op.WIDTH:
        return [("width", WidthConverter(WidthConverterParams(
            bits=bits, simd_in=stage.simd_in, simd_out=simd, channels=shape.c,
            pixels=in_pixels)))]
    if op is Op.FIFO:
        return [("fifo", Fifo(FifoParams(bits=bits, lanes=simd, depth=stage.fifo_depth,
                                         frame_beats=in_pixels * shape.c // simd)))]
    raise AssertionError(f"no units for {op}")
