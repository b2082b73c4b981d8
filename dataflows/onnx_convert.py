"""Turn the rewritten ONNX graph into hwgen layers, one converter per op.

After :mod:`dataflows.onnx_patterns` has folded and fused, every node left maps to at most a
few hwgen layers. :class:`Converter` walks the nodes in order and records, per ONNX tensor,
the hwgen node holding it and how it is laid out:

- rank 4, ``(1, C, H, W)``: a feature map, hwgen ``(H, W, C)``;
- rank 2, ``(1, K)``: a vector, hwgen ``(1, 1, K)``. A vector that ONNX flattened in C, H, W
  order while hwgen flattens in H, W, C order carries ``perm``, the hwgen position of each
  ONNX element; the next fully connected layer permutes its weight columns to match.

Converters raise :class:`~dataflows.onnx_ir.OnnxImportError` naming the node and the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import layers as L
from .graph import GraphError, Model
from .onnx_fold import FOLDABLE_OPS
from .onnx_ir import HW, OnnxGraph, OnnxImportError, OnnxNode
from .onnx_patterns import HARD_SIGMOID_ALPHA, channel_vector

__all__ = ["Converter", "Tensor", "CONVERTERS"]


@dataclass(frozen=True)
class Tensor:
    """Where an ONNX tensor lives in the hwgen model (see the module docstring)."""

    node: str
    rank: int
    perm: np.ndarray | None = None


CONVERTERS: dict[str, Callable[["Converter", OnnxNode], None]] = {}


def converts(*ops: str):
    def register(fn):
        for op in ops:
            CONVERTERS[op] = fn
        return fn
    return register


class Converter:
    """Builds a :class:`~dataflows.graph.Model` from an :class:`OnnxGraph`.

    Parameters
    ----------
    g : OnnxGraph
        The rewritten graph.
    model : Model
        A model holding only its input node, named after the ONNX input.
    """

    def __init__(self, g: OnnxGraph, model: Model):
        self.g = g
        self.model = model
        self.tensors: dict[str, Tensor] = {g.input: Tensor(model.input, 4)}

    # -- queries ---------------------------------------------------------------------------
    def onnx_shape(self, t: Tensor) -> tuple[int, ...]:
        h, w, c = self.model.out_shape(t.node)
        return (1, c, h, w) if t.rank == 4 else (1, h * w * c)

    def fmap(self, node: OnnxNode, i: int, rank: int | None = None) -> Tensor:
        """Input ``i`` of ``node`` as a converted tensor (not a constant), of ``rank`` if given."""
        name = node.input(i)
        if name in self.g.constants:
            raise node.fail(f"input {i} ({name!r}) is a constant; a computed tensor is expected")
        if name not in self.tensors:
            raise node.fail(f"input {i} ({name!r}) is not produced by any supported node")
        t = self.tensors[name]
        if rank is not None and t.rank != rank:
            raise node.fail(f"input {name!r} has shape {list(self.onnx_shape(t))}; expected "
                            f"a {'(N, C, H, W) feature map' if rank == 4 else '(N, K) matrix'}")
        return t

    def hwc(self, t: Tensor) -> L.TensorShape:
        return self.model.out_shape(t.node)

    # -- building --------------------------------------------------------------------------
    def alias(self, node: OnnxNode, src: Tensor, rank: int | None = None, out: int = 0) -> None:
        """The node's output is ``src`` itself, possibly seen with another rank."""
        self.tensors[node.outputs[out]] = Tensor(src.node, rank or src.rank, src.perm)

    def add(self, node: OnnxNode, layer: L.Layer, inputs: list[Tensor], rank: int = 4,
            perm=None, weight=None, bias=None, name: str | None = None, out: int = 0) -> None:
        """Add ``layer`` as hwgen node ``name`` (the ONNX node's name by default)."""
        name = name or node.name
        if name in self.model.graph:
            name = f"{name}_{len(self.model.graph)}"
        try:
            self.model.add(name, layer, inputs=[t.node for t in inputs])
        except (ValueError, GraphError) as e:  # ShapeError and bad specs are ValueErrors
            raise node.fail(str(e)) from e
        attrs = self.model.graph.nodes[name]
        if weight is not None:
            attrs["weight"] = np.ascontiguousarray(weight, dtype=np.float32)
        if bias is not None:
            attrs["bias"] = np.ascontiguousarray(bias, dtype=np.float32).reshape(-1)
        tensor = node.outputs[out]
        self.tensors[tensor] = t = Tensor(name, rank, perm)
        known = self.g.shapes.get(tensor)
        if known is not None and None not in known and tuple(known) != self.onnx_shape(t):
            raise node.fail(f"hwgen computes output shape {list(self.onnx_shape(t))} but ONNX "
                            f"infers {list(known)}")

    def run(self) -> None:
        for node in self.g.nodes:
            fn = CONVERTERS.get(node.op)
            if fn is None:
                raise node.fail("unsupported op")
            try:
                fn(self, node)
            except OnnxImportError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as e:
                raise node.fail(f"malformed node: {type(e).__name__}: {e}") from e


def _ints(value) -> list[int]:
    return [int(v) for v in np.asarray(value).reshape(-1)]


def _window_padding(node: OnnxNode, size_hw, kernel, stride) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``."""
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
    pads = _ints(node.attr("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise node.fail(f"pads {pads} do not describe a 2-D window")
    return tuple(pads)  # ONNX order (H begin, W begin, H end, W end) is ours


def _check_unit_dilations(node: OnnxNode) -> None:
    dilations = _ints(node.attr("dilations", [1, 1]))
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
    if "kernel_shape" in node.attrs and tuple(_ints(node.attrs["kernel_shape"])) != kernel:
        raise node.fail(f"kernel_shape {node.attrs['kernel_shape']} differs from the weight's "
                        f"{list(kernel)}")
    stride = tuple(_ints(node.attr("strides", [1, 1])))
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


@converts("Gemm", "MatMul")
def _matmul(c: Converter, node: OnnxNode) -> None:
    raise node.fail("only a product of a (N, K) input and a constant 2-D weight is supported")


def _pool(c: Converter, node: OnnxNode, cls, **extra) -> None:
    x = c.fmap(node, 0, rank=4)
    if len(node.outputs) > 1 and c.g.consumers(node.outputs[1]):
        raise node.fail("the Indices output is not supported")
    kernel = tuple(_ints(node.attr("kernel_shape", [])))
    if len(kernel) != 2:
        raise node.fail(f"kernel_shape {list(kernel)} is not a 2-D window")
    _check_unit_dilations(node)
    stride = tuple(_ints(node.attr("strides", [1, 1])))
    padding = _window_padding(node, c.hwc(x)[:2], kernel, stride)
    c.add(node, cls(kernel=kernel, stride=stride, padding=padding,
                    ceil_mode=bool(node.attr("ceil_mode", 0)), **extra), [x])


@converts("MaxPool")
def _max_pool(c: Converter, node: OnnxNode) -> None:
    _pool(c, node, L.MaxPool)


@converts("AveragePool")
def _avg_pool(c: Converter, node: OnnxNode) -> None:
    _pool(c, node, L.AvgPool, count_include_pad=bool(node.attr("count_include_pad", 0)))


@converts("GlobalAveragePool")
def _global_avg_pool(c: Converter, node: OnnxNode) -> None:
    c.add(node, L.GlobalAvgPool(), [c.fmap(node, 0, rank=4)])


@converts("ReduceMean")
def _reduce_mean(c: Converter, node: OnnxNode) -> None:
    x = c.fmap(node, 0, rank=4)
    axes = node.attr("axes")
    if axes is None and node.input(1):
        axes = c.g.const(node, 1, "axes")
    if axes is None or sorted(a % 4 for a in _ints(axes)) != [2, 3]:
        raise node.fail(f"axes {None if axes is None else _ints(axes)} are not supported "
                        f"(only [2, 3], a global average pool)")
    c.add(node, L.GlobalAvgPool(), [x], rank=4 if node.attr("keepdims", 1) else 2)


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
                    f"after a Conv or Gemm, where it is folded into the weights")


@converts("Add")
def _add(c: Converter, node: OnnxNode) -> None:
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


@converts("Sub", "Div")
def _sub_div(c: Converter, node: OnnxNode) -> None:
    raise node.fail("only supported with a constant right after a Conv or Gemm, where it is "
                    "folded into the weights")


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
        sizes = _ints(c.g.const(node, 1, "split"))
    elif "split" in node.attrs:
        sizes = _ints(node.attrs["split"])
    else:  # equal parts, the last one smaller if need be (opset 18's num_outputs)
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
        starts, ends = _ints(c.g.const(node, 1, "starts")), _ints(c.g.const(node, 2, "ends"))
        axes = _ints(c.g.const(node, 3, "axes")) if node.input(3) else list(range(len(starts)))
        steps = _ints(c.g.const(node, 4, "steps")) if node.input(4) else [1] * len(starts)
    else:
        starts, ends = _ints(node.attrs["starts"]), _ints(node.attrs["ends"])
        axes, steps = _ints(node.attr("axes", range(len(starts)))), [1] * len(starts)
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
    groups = int(node.attrs["shape1"][1])
    first = _target_shape(node, (n, ch, h, w), node.attrs["shape1"])
    if groups < 1 or ch % groups or first != (1, groups, ch // groups, h, w):
        raise node.fail(f"reshape to {list(first)} before the transpose does not split "
                        f"{ch} channels into groups")
    second = _target_shape(node, (1, ch // groups, groups, h, w), node.attrs["shape2"])
    if second != (1, ch, h, w):
        raise node.fail(f"reshape to {list(second)} after the transpose is not back to "
                        f"{[1, ch, h, w]}")
    c.add(node, L.ChannelShuffle(groups), [x])


# -- flattening and reshaping --------------------------------------------------------------

def _target_shape(node: OnnxNode, shape, target) -> tuple[int, ...]:
    """Reshape's output shape: 0 copies a dimension, -1 takes what is left."""
    out = [shape[i] if t == 0 else t for i, t in enumerate(_ints(target))]
    if out.count(-1) > 1 or any(t < -1 for t in out):
        raise node.fail(f"reshape target {_ints(target)} is invalid")
    if -1 in out:
        known = math.prod(t for t in out if t != -1)
        out[out.index(-1)] = math.prod(shape) // known if known else 0
    if math.prod(out) != math.prod(shape):
        raise node.fail(f"cannot reshape {list(shape)} to {_ints(target)}")
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
        drop = {a % len(shape) for a in _ints(axes)} if axes is not None else \
            {i for i, d in enumerate(shape) if d == 1}
        if any(shape[a] != 1 for a in drop):
            raise node.fail(f"cannot squeeze axes {sorted(drop)} of {list(shape)}")
        return tuple(d for i, d in enumerate(shape) if i not in drop)
    out = list(shape)
    rank = len(shape) + len(_ints(axes))
    for a in sorted(a % rank for a in _ints(axes)):
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
    if node.attr("training_mode", 0):
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


@converts(*(op for op in FOLDABLE_OPS if op not in CONVERTERS), "Shape")
def _unfolded(c: Converter, node: OnnxNode) -> None:
    raise node.fail("supported only on constants or static shapes, to compute a shape")
