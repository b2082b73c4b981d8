"""Typed layer specifications of the graph IR.

Every node of a :class:`dataflows.graph.Model` holds one of these dataclasses. A spec carries
only hyper-parameters; weights live beside it on the node (see :mod:`dataflows.graph`).

Tensors are feature maps in (H, W, C) order, one image at a time (the batch is implicit).
Each spec knows its output shape, its parameter count and its multiply-accumulate count, so
shape inference and counting are one loop over the graph in topological order.

Weight layouts (numpy, NHWC world):

- ``Conv2d``: ``(out_channels, kh, kw, in_channels // groups)`` ("OHWI"), bias ``(out_channels,)``.
- ``Linear``: ``(out_features, in_features)``, bias ``(out_features,)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

__all__ = [
    "TensorShape", "Layer", "Input", "Conv2d", "Linear", "MaxPool", "AvgPool", "GlobalAvgPool",
    "Concat", "Add", "ChannelShuffle", "ChannelSplit", "Activation", "ACTIVATIONS", "Mul",
    "Flatten", "ShapeError",
]


class ShapeError(ValueError):
    """A layer cannot accept the shapes of its inputs."""


class TensorShape(NamedTuple):
    """Shape of one feature map: height, width, channels."""

    h: int
    w: int
    c: int

    @property
    def size(self) -> int:
        return self.h * self.w * self.c


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        value = (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) and v >= 1 for v in value):
        raise ValueError(f"{name} must be a positive int or a pair of them, not {value!r}")
    return value


def _padding(value) -> tuple[int, int, int, int]:
    """Normalise padding to (top, left, bottom, right)."""
    if isinstance(value, int):
        value = (value,) * 4
    value = tuple(value)
    if len(value) == 2:
        value = (value[0], value[1], value[0], value[1])
    if len(value) != 4 or not all(isinstance(v, int) and v >= 0 for v in value):
        raise ValueError(f"padding must be an int, (h, w) or (top, left, bottom, right) of "
                         f"non-negative ints, not {value!r}")
    return value


def window_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                       ceil_mode: bool = False) -> int:
    """Output length of a sliding window along one axis (PyTorch/ONNX convention).

    With ``ceil_mode`` the last window may start in the padding-free part of the input past
    the end, but never entirely inside the trailing padding (PyTorch's rule).
    """
    span = size + pad_before + pad_after - kernel
    if span < 0:
        raise ShapeError(f"kernel {kernel} is larger than the padded input {size + pad_before + pad_after}")
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + pad_before:
            out -= 1
    else:
        out = span // stride + 1
    return out


class Layer:
    """Base class of all layer specs.

    Subclasses are frozen dataclasses and set ``op``, the stable name used in reports and
    JSON, and ``arity``, the number of inputs (``None`` for any number ≥ 2).
    """

    op: ClassVar[str]
    arity: ClassVar[int | None] = 1

    def output_shape(self, inputs: list[TensorShape]) -> TensorShape:
        raise NotImplementedError(f"{type(self).__name__} does not define output_shape")

    def weight_shape(self, inputs: list[TensorShape]) -> tuple[int, ...] | None:
        """Shape of the weight array, or ``None`` for layers without weights."""
        return None

    def params(self, inputs: list[TensorShape]) -> int:
        return 0

    def macs(self, inputs: list[TensorShape]) -> int:
        """Multiply-accumulates of convolution and fully connected arithmetic only."""
        return 0

    def check_inputs(self, inputs: list[TensorShape]) -> None:
        if self.arity is None:
            if len(inputs) < 2:
                raise ShapeError(f"{self.op} needs at least two inputs, got {len(inputs)}")
        elif len(inputs) != self.arity:
            raise ShapeError(f"{self.op} takes {self.arity} input(s), got {len(inputs)}")


@dataclass(frozen=True)
class Input(Layer):
    """The network input: one image of ``shape``."""

    shape: TensorShape
    op: ClassVar[str] = "input"
    arity: ClassVar[int | None] = 0

    def __post_init__(self):
        object.__setattr__(self, "shape", TensorShape(*self.shape))
        if not all(isinstance(v, int) and v >= 1 for v in self.shape):
            raise ValueError(f"input shape must be three positive ints, not {self.shape!r}")

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        return self.shape


@dataclass(frozen=True)
class Conv2d(Layer):
    """2-D convolution with bias, batch norm already folded in.

    Depthwise convolution is ``groups == in_channels == out_channels``; pointwise is a 1x1 kernel.
    """

    out_channels: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    bias: bool = True
    op: ClassVar[str] = "conv"

    def __post_init__(self):
        if not isinstance(self.out_channels, int) or self.out_channels < 1:
            raise ValueError(f"out_channels must be a positive int, not {self.out_channels!r}")
        if not isinstance(self.groups, int) or self.groups < 1:
            raise ValueError(f"groups must be a positive int, not {self.groups!r}")
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "stride"))
        object.__setattr__(self, "padding", _padding(self.padding))
        if self.out_channels % self.groups:
            raise ValueError(f"out_channels {self.out_channels} is not divisible by groups {self.groups}")

    @property
    def is_depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.out_channels

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        (x,) = inputs
        if x.c % self.groups:
            raise ShapeError(f"input channels {x.c} are not divisible by groups {self.groups}")
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.padding
        return TensorShape(window_output_size(x.h, kh, sh, pt, pb),
                           window_output_size(x.w, kw, sw, pl, pr), self.out_channels)

    def weight_shape(self, inputs):
        (x,) = inputs
        return (self.out_channels, *self.kernel, x.c // self.groups)

    def params(self, inputs):
        return math.prod(self.weight_shape(inputs)) + (self.out_channels if self.bias else 0)

    def macs(self, inputs):
        out = self.output_shape(inputs)
        return out.h * out.w * math.prod(self.weight_shape(inputs))


@dataclass(frozen=True)
class Linear(Layer):
    """Fully connected layer on a flattened (1, 1, C) input."""

    out_features: int
    bias: bool = True
    op: ClassVar[str] = "linear"

    def __post_init__(self):
        if not isinstance(self.out_features, int) or self.out_features < 1:
            raise ValueError(f"out_features must be a positive int, not {self.out_features!r}")

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        (x,) = inputs
        if (x.h, x.w) != (1, 1):
            raise ShapeError(f"linear needs a (1, 1, C) input, got {tuple(x)}; flatten first")
        return TensorShape(1, 1, self.out_features)

    def weight_shape(self, inputs):
        return (self.out_features, inputs[0].c)

    def params(self, inputs):
        return math.prod(self.weight_shape(inputs)) + (self.out_features if self.bias else 0)

    def macs(self, inputs):
        return math.prod(self.weight_shape(inputs))


@dataclass(frozen=True)
class _Pool(Layer):
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False

    def __post_init__(self):
        object.__setattr__(self, "kernel", _pair(self.kernel, "kernel"))
        object.__setattr__(self, "stride", _pair(self.stride if self.stride is not None
                                                 else self.kernel, "stride"))
        object.__setattr__(self, "padding", _padding(self.padding))
        if any(p >= k for p, k in zip(self.padding, self.kernel * 2)):
            raise ValueError(f"padding {self.padding} must be smaller than the kernel {self.kernel}")

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        (x,) = inputs
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.padding
        return TensorShape(window_output_size(x.h, kh, sh, pt, pb, self.ceil_mode),
                           window_output_size(x.w, kw, sw, pl, pr, self.ceil_mode), x.c)


@dataclass(frozen=True)
class MaxPool(_Pool):
    """Max pooling; padded positions never win (they count as minus infinity)."""

    op: ClassVar[str] = "maxpool"


@dataclass(frozen=True)
class AvgPool(_Pool):
    """Average pooling.

    ``count_include_pad`` divides by the full kernel area at the borders (PyTorch's default);
    otherwise by the number of real input pixels in the window (ONNX's default).
    """

    count_include_pad: bool = True
    op: ClassVar[str] = "avgpool"


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    """Mean over H and W: (H, W, C) to (1, 1, C)."""

    op: ClassVar[str] = "global_avgpool"

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        return TensorShape(1, 1, inputs[0].c)


@dataclass(frozen=True)
class Concat(Layer):
    """Channel concatenation of inputs of equal H and W, in input order."""

    op: ClassVar[str] = "concat"
    arity: ClassVar[int | None] = None

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        if len({(x.h, x.w) for x in inputs}) != 1:
            raise ShapeError(f"concat inputs differ in H, W: {[tuple(x) for x in inputs]}")
        return TensorShape(inputs[0].h, inputs[0].w, sum(x.c for x in inputs))


@dataclass(frozen=True)
class Add(Layer):
    """Element-wise sum of two feature maps of the same shape (residual connection)."""

    op: ClassVar[str] = "add"
    arity: ClassVar[int | None] = 2

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        if inputs[0] != inputs[1]:
            raise ShapeError(f"add inputs differ in shape: {tuple(inputs[0])} and {tuple(inputs[1])}")
        return inputs[0]


@dataclass(frozen=True)
class ChannelShuffle(Layer):
    """ShuffleNet channel shuffle: view C as (groups, C/groups), transpose, flatten."""

    groups: int
    op: ClassVar[str] = "channel_shuffle"

    def __post_init__(self):
        if not isinstance(self.groups, int) or self.groups < 1:
            raise ValueError(f"groups must be a positive int, not {self.groups!r}")

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        if inputs[0].c % self.groups:
            raise ShapeError(f"channels {inputs[0].c} are not divisible by groups {self.groups}")
        return inputs[0]


@dataclass(frozen=True)
class ChannelSplit(Layer):
    """Take channels ``[start, stop)`` of the input (one branch of ShuffleNet V2's split)."""

    start: int
    stop: int
    op: ClassVar[str] = "channel_split"

    def __post_init__(self):
        if not (isinstance(self.start, int) and isinstance(self.stop, int) and 0 <= self.start < self.stop):
            raise ValueError(f"channel range must satisfy 0 <= start < stop, not "
                             f"[{self.start!r}, {self.stop!r})")

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        if self.stop > inputs[0].c:
            raise ShapeError(f"channel range [{self.start}, {self.stop}) exceeds {inputs[0].c} channels")
        return TensorShape(inputs[0].h, inputs[0].w, self.stop - self.start)


ACTIVATIONS = ("relu", "relu6", "hard_swish", "hard_sigmoid", "sigmoid", "swish")


@dataclass(frozen=True)
class Activation(Layer):
    """Element-wise non-linearity.

    ``hard_sigmoid`` is ``relu6(x + 3) / 6`` and ``hard_swish`` is ``x * hard_sigmoid(x)``
    (MobileNet V3); ``swish`` is ``x * sigmoid(x)``.
    """

    kind: str
    op: ClassVar[str] = "activation"

    def __post_init__(self):
        if self.kind not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, not {self.kind!r}")

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        return inputs[0]


@dataclass(frozen=True)
class Mul(Layer):
    """Channel-wise scaling: input 0 is (H, W, C), input 1 is a (1, 1, C) scale (SE gate)."""

    op: ClassVar[str] = "mul"
    arity: ClassVar[int | None] = 2

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        x, s = inputs
        if s != TensorShape(1, 1, x.c):
            raise ShapeError(f"mul scales a {tuple(x)} map by a (1, 1, {x.c}) vector, got {tuple(s)}")
        return x


@dataclass(frozen=True)
class Flatten(Layer):
    """(H, W, C) to (1, 1, H*W*C), in H, W, C order."""

    op: ClassVar[str] = "flatten"

    def output_shape(self, inputs):
        self.check_inputs(inputs)
        return TensorShape(1, 1, inputs[0].size)
