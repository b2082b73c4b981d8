"""Converters of compute ops: convolution, fully connected, pooling, activations,
element-wise arithmetic and concatenation (see :mod:`dataflows.onnx_convert`)."""

from __future__ import annotations

import math

import numpy as np

from . import layers as L
from .onnx_convert import Converter, ConverterFn, ints, registrar
from .onnx_ir import HW, OnnxNode
from .onnx_patterns import HARD_SIGMOID_ALPHA

__all__ = ["CONVERTERS"]

CONVERTERS: dict[str, ConverterFn] = {}
converts = registrar(CONVERTERS)


def _window_padding(node: OnnxNode, size_hw, kernel, stride) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``."""
    if len(stride) != 2 or min(stride) < 1:
        raise node.fail(f"strides {list(stride)} must be two positive ints")
    auto = node.attr("auto_pad", "NOTSET")
    if auto == "VALID":
        return (0, 0, 0, 0)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        before, after = [], []
        for n, k, s in zip(size_hw, kernel, stride):
            total = max((-(-n // s) - 1) * s + k - n, 0)
            small, big = total // 2, total - total // 2
            before.append(small if auto == "SAME_UPPER" else big)
            after.append(big if auto == "SAME_UPPER" else small)
        return (before[0], before[1], after[0], after[1])
    if auto != "NOTSET":
        raise node.fail(f"auto_pad {auto!r} is not supported")
    pads = ints(node.attr("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise node.fail(f"pads {pads} do not describe a 2-D window")
    return tuple(pads)  # ONNX order (H begin, W begin, H end, W end) is ours


def _check_unit_dilations(node: OnnxNode) -> None:
    dilations = ints(node.attr("dilations", [1, 1]))
    if any(d != 1 for d in dilations):
        raise node.fail(f"dilations {dilations} are not supported (only 1)")


@converts("Conv")
def _conv(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0, rank=4)
    w = np.asarray(c.g.const(node, 1, "the weight"), np.float32)
    if w.ndim != 4:
        raise node.fail(f"weight of shape {list(w.shape)} is not 2-D convolution (O, I, kh, kw)")
    _check_unit_dilations(node)
    kernel = tuple(w.shape[2:])
    if "kernel_shape" in node.attrs and tuple(ints(node.attrs["kernel_shape"])) != kernel:
        raise node.fail(f"kernel_shape {node.attrs['kernel_shape']} differs from the weight's "
                        f"{list(kernel)}")
    stride = tuple(ints(node.attr("strides", [1, 1])))
    shape = c.hwc(x)
    padding = _window_padding(node, shape[:2], kernel, stride)
    bias = c.g.const(node, 2, "the bias") if node.input(2) else None
    layer = L.Conv2d(w.shape[0], kernel=kernel, stride=stride, padding=padding,
                     groups=int(node.attr("group", 1)), bias=bias is not None)
    c.add(node, layer, [x], weight=w.transpose(0, 2, 3, 1), bias=bias)


@converts(HW + "Linear")
def _linear(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0, rank=2)
    w = c.g.constants[node.inputs[1]]
    size = c.onnx_shape(x)[1]
    if w.shape[1] != size:
        raise node.fail(f"weight of shape {list(w.shape)} does not take {size} inputs")
    if x.perm is not None:  # undo ONNX's C, H, W flatten order: column f reads hwgen perm[f]
        permuted = np.empty_like(w)
        permuted[:, x.perm] = w
        w = permuted
    bias = c.g.constants[node.inputs[2]] if node.input(2) else None
    c.add(node, L.Linear(w.shape[0], bias=bias is not None), [x], rank=2, weight=w, bias=bias)


def _pool(c: Converter, node: OnnxNode, cls, **extra) -> None:
    x = c.fmap(node, 0, rank=4)
    if len(node.outputs) > 1 and c.g.consumers(node.outputs[1]):
        raise node.fail("the Indices output is not supported")
    kernel = tuple(ints(node.attr("kernel_shape", [])))
    if len(kernel) != 2:
        raise node.fail(f"kernel_shape {list(kernel)} is not a 2-D window")
    _check_unit_dilations(node)
    stride = tuple(ints(node.attr("strides", [1, 1])))
    padding = _window_padding(node, c.hwc(x)[:2], kernel, stride)
    c.add(node, cls(kernel=kernel, stride=stride, padding=padding,
                    ceil_mode=node.flag("ceil_mode", 0), **extra), [x])


@converts("MaxPool")
def _max_pool(c: Converter, node: OnnxNode) -> None:
    _pool(c, node, L.MaxPool)


@converts("AveragePool")
def _avg_pool(c: Converter, node: OnnxNode) -> None:
    _pool(c, node, L.AvgPool, count_include_pad=node.flag("count_include_pad", 0))


@converts("GlobalAveragePool")
def _global_avg_pool(c: Converter, node: OnnxNode) -> None:
    c.add(node, L.GlobalAvgPool(), [c.fmap(node, 0, rank=4)])


@converts("ReduceMean")
def _reduce_mean(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0, rank=4)
    axes = node.attr("axes")
    if axes is None and node.input(1):
        axes = c.g.const(node, 1, "axes")
    if axes is None or sorted(a % 4 for a in ints(axes)) != [2, 3]:
        raise node.fail(f"axes {None if axes is None else ints(axes)} are not supported "
                        f"(only [2, 3], a global average pool)")
    c.add(node, L.GlobalAvgPool(), [x], rank=4 if node.flag("keepdims", 1) else 2)


# -- activations ---------------------------------------------------------------------------

def _activation(c: Converter, node: OnnxNode, kind: str) -> None:
    x = c.fmap(node, 0)
    c.add(node, L.Activation(kind), [x], rank=x.rank, perm=x.perm)


@converts("Relu", "Sigmoid", "HardSwish", HW + "Activation")
def _simple_activation(c: Converter, node: OnnxNode) -> None:
    kind = {"Relu": "relu", "Sigmoid": "sigmoid", "HardSwish": "hard_swish"}.get(node.op)
    _activation(c, node, kind or node.attrs["kind"])


@converts("HardSigmoid")
def _hard_sigmoid(c: Converter, node: OnnxNode) -> None:
    alpha, beta = node.attr("alpha", 0.2), node.attr("beta", 0.5)
    if abs(alpha - HARD_SIGMOID_ALPHA) > 1e-6 or abs(beta - 0.5) > 1e-6:
        raise node.fail(f"alpha={alpha:g}, beta={beta:g} are not supported "
                        f"(only alpha=1/6, beta=0.5)")
    _activation(c, node, "hard_sigmoid")


@converts("Clip")
def _clip(c: Converter, node: OnnxNode) -> None:
    bounds = []
    for i, key, default in ((1, "min", -math.inf), (2, "max", math.inf)):
        if node.input(i):
            value = np.asarray(c.g.const(node, i, key)).reshape(-1)
            if value.size != 1:
                raise node.fail(f"{key} must be a scalar, not of shape {list(value.shape)}")
            bounds.append(float(value[0]))
        else:
            bounds.append(float(node.attr(key, default)))
    lo, hi = bounds
    kind = "relu6" if (lo, hi) == (0.0, 6.0) else "relu" if (lo, hi) == (0.0, math.inf) else None
    if kind is None:
        raise node.fail(f"range [{lo:g}, {hi:g}] is not supported (only [0, 6] as ReLU6 or "
                        f"[0, inf] as ReLU)")
    _activation(c, node, kind)


# -- element-wise --------------------------------------------------------------------------

def _constant_operand(c: Converter, node: OnnxNode, neutral: float, what: str) -> bool:
    """Alias the node away if its constant operand is neutral; False if none is constant."""
    consts = [t for t in node.inputs if t in c.g.constants]
    if not consts:
        return False
    if len(consts) == 2:
        raise node.fail("both inputs are constants")
    value = np.asarray(c.g.constants[consts[0]])
    other = node.inputs[1] if node.inputs[0] == consts[0] else node.inputs[0]
    x = c.fmap(node, node.inputs.index(other))
    if value.size and np.all(value == neutral) and np.broadcast_shapes(
            value.shape, c.onnx_shape(x)) == c.onnx_shape(x):
        c.alias(node, x)
        return True
    raise node.fail(f"{what} a constant of shape {list(value.shape)} is only supported right "
                    f"after a Conv or Gemm whose output only it reads, where it is folded into "
                    f"the weights")


@converts("Add", "Sum")
def _add(c: Converter, node: OnnxNode) -> None:
    if node.op == "Sum" and len(node.inputs) != 2:  # old exporters' residual adds
        if len(node.inputs) != 1:
            raise node.fail(f"{len(node.inputs)} inputs are not supported (only 1 or 2)")
        return c.alias(node, c.fmap(node, 0))
    if _constant_operand(c, node, 0.0, "adding"):
        return
    a, b = c.fmap(node, 0), c.fmap(node, 1)
    sa, sb = c.onnx_shape(a), c.onnx_shape(b)
    if sa != sb:
        raise node.fail(f"inputs of shapes {list(sa)} and {list(sb)} differ; broadcasting "
                        f"is not supported")
    if a.perm is not None or b.perm is not None:
        raise node.fail("adding vectors flattened in C, H, W order is not supported")
    c.add(node, L.Add(), [a, b], rank=a.rank)


@converts("Mul")
def _mul(c: Converter, node: OnnxNode) -> None:
    if _constant_operand(c, node, 1.0, "multiplying by"):
        return
    a, b = c.fmap(node, 0), c.fmap(node, 1)
    sa, sb = c.onnx_shape(a), c.onnx_shape(b)
    gate = (1, sa[1], 1, 1) if a.rank == 4 else sa
    if sb != gate and sa == (1, sb[1], 1, 1) and b.rank == 4:
        a, b, sa, sb = b, a, sb, sa
        gate = (1, sa[1], 1, 1)
    if sb != gate or a.perm is not None or b.perm is not None:
        raise node.fail(f"multiplying shapes {list(sa)} and {list(sb)} is not supported (only "
                        f"a feature map by an (N, C, 1, 1) gate)")
    c.add(node, L.Mul(), [a, b], rank=a.rank)


@converts("Concat")
def _concat(c: Converter, node: OnnxNode) -> None:
    xs = [c.fmap(node, i) for i in range(len(node.inputs))]
    ranks = {x.rank for x in xs}
    if len(ranks) != 1 or node.attr("axis") % ranks.pop() != 1:
        raise node.fail(f"axis {node.attr('axis')} is not supported (only channels, axis 1)")
    if any(x.perm is not None for x in xs):
        raise node.fail("concatenating vectors flattened in C, H, W order is not supported")
    if len(xs) == 1:
        c.alias(node, xs[0])
    else:
        c.add(node, L.Concat(), xs, rank=xs[0].rank)
