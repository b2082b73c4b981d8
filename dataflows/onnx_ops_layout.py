"""Converters of layout ops: channel split and slice, channel shuffle, flatten and reshape,
plus the ops that reach the converter only when no rewrite pass absorbed them, whose
converters explain why (see :mod:`dataflows.onnx_convert`)."""

from __future__ import annotations

import math

import numpy as np

from . import layers as L
from .onnx_convert import Converter, ConverterFn, Tensor, ints, registrar
from .onnx_ir import HW, OnnxNode

__all__ = ["CONVERTERS", "unfolded"]

CONVERTERS: dict[str, ConverterFn] = {}
converts = registrar(CONVERTERS)


# -- channel slicing -----------------------------------------------------------------------

def _channel_range(c: Converter, node: OnnxNode, x: Tensor, start: int, stop: int,
                   out: int = 0, name: str | None = None) -> None:
    if start == 0 and stop == c.hwc(x).c:
        c.alias(node, x, out=out)
    else:
        c.add(node, L.ChannelSplit(start, stop), [x], rank=x.rank, name=name, out=out)


@converts("Split")
def _split(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0)
    shape = c.onnx_shape(x)
    axis = node.attr("axis", 0) % len(shape)
    if axis != 1 or x.perm is not None:
        raise node.fail(f"axis {node.attr('axis', 0)} is not supported (only channels, axis 1)")
    channels, n = shape[1], len(node.outputs)
    if node.input(1):
        sizes = ints(c.g.const(node, 1, "split"))
    elif "split" in node.attrs:
        sizes = ints(node.attrs["split"])
    else:  # equal parts, the last one smaller if need be (opset 18's num_outputs)
        if c.g.opset >= 18 and node.attr("num_outputs") != n:
            raise node.fail(f"num_outputs={node.attr('num_outputs')} must be given and equal "
                            f"the {n} outputs")
        part = -(-channels // n)
        sizes = [min(part, channels - i * part) for i in range(n)]
    if len(sizes) != n or sum(sizes) != channels or min(sizes) < 1:
        raise node.fail(f"split sizes {sizes} do not divide {channels} channels into {n} parts")
    start = 0
    for i, (size, tensor) in enumerate(zip(sizes, node.outputs)):
        if c.g.consumers(tensor) or tensor == c.g.output:
            _channel_range(c, node, x, start, start + size, out=i, name=tensor)
        start += size


@converts("Slice")
def _slice(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0)
    shape = c.onnx_shape(x)
    if node.input(1):
        starts, ends = ints(c.g.const(node, 1, "starts")), ints(c.g.const(node, 2, "ends"))
        axes = ints(c.g.const(node, 3, "axes")) if node.input(3) else list(range(len(starts)))
        steps = ints(c.g.const(node, 4, "steps")) if node.input(4) else [1] * len(starts)
    else:
        starts, ends = ints(node.attrs["starts"]), ints(node.attrs["ends"])
        axes, steps = ints(node.attr("axes", range(len(starts)))), [1] * len(starts)
    start, stop = 0, shape[1]
    for axis, begin, end, step in zip(axes, starts, ends, steps):
        axis %= len(shape)
        got = slice(begin, end, step).indices(shape[axis])
        if axis == 1 and step == 1 and got[0] < got[1] and x.perm is None:
            start, stop = got[:2]
        elif got != (0, shape[axis], 1):
            raise node.fail(f"slicing axis {axis} as [{begin}:{end}:{step}] is not supported "
                            f"(only a contiguous channel range, axis 1)")
    _channel_range(c, node, x, start, stop)


@converts(HW + "ChannelShuffle")
def _channel_shuffle(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0, rank=4)
    n, ch, h, w = c.onnx_shape(x)
    shape1 = c.g.const(node, 1, "the first reshape's target")
    shape2 = c.g.const(node, 2, "the second reshape's target")
    if np.size(shape1) != 5 or np.size(shape2) != 4:
        raise node.fail(f"reshape targets {ints(shape1)} and {ints(shape2)} are not a "
                        f"channel shuffle's (N, g, C/g, H, W) and (N, C, H, W)")
    groups = ints(shape1)[1]
    first = _target_shape(node, (n, ch, h, w), shape1)
    if groups < 1 or ch % groups or first != (1, groups, ch // groups, h, w):
        raise node.fail(f"reshape to {list(first)} before the transpose does not split "
                        f"{ch} channels into groups")
    second = _target_shape(node, (1, ch // groups, groups, h, w), shape2)
    if second != (1, ch, h, w):
        raise node.fail(f"reshape to {list(second)} after the transpose is not back to "
                        f"{[1, ch, h, w]}")
    c.add(node, L.ChannelShuffle(groups), [x])


# -- flattening and reshaping --------------------------------------------------------------

def _target_shape(node: OnnxNode, shape, target) -> tuple[int, ...]:
    """Reshape's output shape: 0 copies a dimension, -1 takes what is left."""
    if len(ints(target)) > len(shape) and 0 in ints(target)[len(shape):]:
        raise node.fail(f"reshape target {ints(target)} copies a dimension {list(shape)} lacks")
    out = [shape[i] if t == 0 else t for i, t in enumerate(ints(target))]
    if out.count(-1) > 1 or any(t < -1 for t in out):
        raise node.fail(f"reshape target {ints(target)} is invalid")
    if -1 in out:
        known = math.prod(t for t in out if t != -1)
        out[out.index(-1)] = math.prod(shape) // known if known else 0
    if math.prod(out) != math.prod(shape):
        raise node.fail(f"cannot reshape {list(shape)} to {ints(target)}")
    return tuple(out)


def _reshaped(c: Converter, node: OnnxNode, shape) -> tuple[int, ...]:
    """Output shape of a Flatten, Reshape, Squeeze or Unsqueeze applied to ``shape``."""
    if node.op == "Flatten":
        axis = node.attr("axis", 1) % (len(shape) + 1)
        return (math.prod(shape[:axis]), math.prod(shape[axis:]))
    if node.op == "Reshape":
        return _target_shape(node, shape, c.g.const(node, 1, "the target shape"))
    axes = node.attr("axes")
    if axes is None and node.input(1):
        axes = c.g.const(node, 1, "axes")
    if node.op == "Squeeze":
        drop = {a % len(shape) for a in ints(axes)} if axes is not None else \
            {i for i, d in enumerate(shape) if d == 1}
        if any(shape[a] != 1 for a in drop):
            raise node.fail(f"cannot squeeze axes {sorted(drop)} of {list(shape)}")
        return tuple(d for i, d in enumerate(shape) if i not in drop)
    out = list(shape)
    rank = len(shape) + len(ints(axes))
    for a in sorted(a % rank for a in ints(axes)):
        out.insert(a, 1)
    return tuple(out)


@converts("Flatten", "Reshape", "Squeeze", "Unsqueeze")
def _reshape(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0)
    shape = c.onnx_shape(x)
    out = _reshaped(c, node, shape)
    if out == shape:
        c.alias(node, x)
    elif x.rank == 4 and out == (1, math.prod(shape)):
        _, ch, h, w = shape
        perm = None
        if ch > 1 and h * w > 1:  # ONNX flattens C, H, W; hwgen H, W, C
            perm = np.arange(h * w * ch).reshape(h, w, ch).transpose(2, 0, 1).reshape(-1)
        c.add(node, L.Flatten(), [x], rank=2, perm=perm)
    elif x.rank == 2 and x.perm is None and out == (1, shape[1], 1, 1):
        c.alias(node, x, rank=4)
    else:
        raise node.fail(f"reshaping {list(shape)} to {list(out)} is not supported (only "
                        f"flattening to (N, C*H*W) or between (N, C) and (N, C, 1, 1))")


@converts(HW + "FlattenHWC")
def _flatten_hwc(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0, rank=4)
    _, ch, h, w = c.onnx_shape(x)
    out = _reshaped(c, node.attrs["flatten"], (1, h, w, ch))
    if out != (1, h * w * ch):
        raise node.fail(f"{node.attrs['flatten'].op} of the NHWC transpose gives {list(out)}; "
                        f"only flattening to (N, H*W*C) is supported")
    c.add(node, L.Flatten(), [x], rank=2)


# -- ops left only when no pattern matched -------------------------------------------------

@converts("BatchNormalization")
def _batchnorm(c: Converter, node: OnnxNode) -> None:
    prod = c.g.producer(node.inputs[0])
    source = "the graph input" if prod is None else f"node {prod.name!r} ({prod.op})"
    if node.flag("training_mode", 0):
        raise node.fail("training_mode=1 is not supported")
    raise node.fail(f"batch norm must directly follow a Conv or Gemm whose output only it "
                    f"reads, to be folded; it follows {source}")


@converts("Transpose")
def _transpose(c: Converter, node: OnnxNode) -> None:
    raise node.fail(f"perm {node.attr('perm')} is not supported (only in a channel shuffle "
                    f"Reshape-Transpose-Reshape or as NHWC right before a flatten)")


@converts("Pad")
def _pad(c: Converter, node: OnnxNode) -> None:
    raise node.fail("only a constant zero pad of H and W read only by Conv nodes is supported")


@converts("Gemm", "MatMul")
def _matmul(c: Converter, node: OnnxNode) -> None:
    raise node.fail("only a product of a (N, K) input and a constant 2-D weight is supported")


@converts("Sub", "Div")
def _sub_div(c: Converter, node: OnnxNode) -> None:
    raise node.fail("only supported with a constant right after a Conv or Gemm, where it is "
                    "folded into the weights")


def unfolded(c: Converter, node: OnnxNode) -> None:
    """The converter of the constant folder's ops when they compute on feature maps."""
    raise node.fail("supported only on constants or static shapes, to compute a shape")
