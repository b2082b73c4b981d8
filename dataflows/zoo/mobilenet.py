"""MobileNet V1, V2 and V3: depthwise separable convolutions and inverted residuals.

- :func:`mobilenet_v1`: Howard et al., "MobileNets: Efficient Convolutional Neural Networks
  for Mobile Vision Applications", 2017, Table 1; layer names of the TF-slim release.
- :func:`mobilenet_v2`: Sandler et al., "MobileNetV2: Inverted Residuals and Linear
  Bottlenecks", CVPR 2018, Table 2, as built by torchvision's ``mobilenet_v2``.
- :func:`mobilenet_v3_large`, :func:`mobilenet_v3_small`: Howard et al., "Searching for
  MobileNetV3", ICCV 2019, Tables 1 and 2, as configured in torchvision's ``mobilenetv3.py``.

Batch norm is folded into the preceding convolution, so every convolution has a bias and
the counts are torchvision's minus one parameter per batch-normed channel. Dropout is left out.
"""

from __future__ import annotations

from typing import NamedTuple

from ..graph import Model
from ..layers import Activation, Add, Conv2d, Flatten, GlobalAvgPool, Linear, Mul
from ._common import check_common, check_width, make_divisible

__all__ = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]








def _conv_act(m: Model, name: str, out_channels: int, act: str | None, kernel: int = 1,
              stride: int = 1, groups: int = 1, act_name: str | None = None,
              inputs=None) -> str:
    """Convolution with PyTorch's ``kernel // 2`` padding, then ``act`` (none if ``None``).

    The activation is named ``act_name``, by default ``<name>_<act>``.
    """
    y = m.add(name, Conv2d(out_channels, kernel=kernel, stride=stride, padding=kernel // 2,
                           groups=groups), inputs=inputs)
    if act is None:
        return y
    return m.add(act_name or f"{name}_{act}", Activation(act))


def _dw(m: Model, name: str, act: str | None, kernel: int = 3, stride: int = 1,
        act_name: str | None = None, inputs=None) -> str:
    """Depthwise convolution over the channels of its input."""
    src = inputs or m.last
    channels = m.out_shape(src).c
    return _conv_act(m, name, channels, act, kernel=kernel, stride=stride, groups=channels,
                     act_name=act_name, inputs=src)


def _linear_head(m: Model, pool: str, flatten: str, fc: str, num_classes: int) -> str:
    m.add(pool, GlobalAvgPool())
    m.add(flatten, Flatten())
    return m.add(fc, Linear(num_classes))


# -- MobileNet V1 ---------------------------------------------------------------------------

# Table 1 after the first conv: (stride, output channels) of each depthwise separable block.
# The paper prints "s2" for the second-last 1024 row, but its input is already 7x7 and every
# release (and the table's own output sizes) use stride 1 there.
V1_STEM = 32
V1_BLOCKS = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
             (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))
# TF-slim's ``min_depth``: no layer is made thinner than this by the width multiplier.
V1_MIN_CHANNELS = 8


def mobilenet_v1(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Model:
    """MobileNet V1 (Howard et al. 2017, Table 1; TF-slim ``mobilenet_v1`` names).

    A 3x3/2 conv, 13 depthwise separable blocks (depthwise 3x3 then pointwise 1x1, each with
    batch norm and ReLU), global average pool and a fully connected classifier.

    Parameters
    ----------
    width : float
        The width multiplier α: each layer has ``int(c * α)`` channels (at least 8, as
        TF-slim), so 1.0, 0.75, 0.5 and 0.25 give the paper's networks.
    resolution : int
        Input height and width, at least 32 (the paper: 224, 192, 160, 128).
    num_classes : int
        Outputs of the classifier ``Logits``.

    Returns
    -------
    Model
        Without weights. At 1.0-224: 4.22 M parameters, 569 M MACs (published 4.2 M, 569 M).

    Raises
    ------
    ValueError
        If an argument is outside the values above.
    """
    check_width(width)
    check_common(resolution, num_classes)
    m = Model(f"mobilenet_v1_{float(width)}_{resolution}", (resolution, resolution, 3))

    def depth(c: int) -> int:
        return max(int(c * width), V1_MIN_CHANNELS)

    _conv_act(m, "Conv2d_0", depth(V1_STEM), "relu", kernel=3, stride=2)
    for i, (stride, channels) in enumerate(V1_BLOCKS, start=1):
        _dw(m, f"Conv2d_{i}_depthwise", "relu", stride=stride)
        _conv_act(m, f"Conv2d_{i}_pointwise", depth(channels), "relu")
    # The paper's FC layer; TF-slim implements it as a 1x1 conv, which is the same arithmetic.
    _linear_head(m, "AvgPool_1a", "Logits/flatten", "Logits", num_classes)
    return m


# -- MobileNet V2 ---------------------------------------------------------------------------

# Table 2: expansion t, output channels c, repeats n, first stride s.
V2_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
              (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
V2_STEM = 32
V2_LAST = 1280


def _v2_block(m: Model, prefix: str, x: str, expand_ratio: int, out_channels: int,
              stride: int) -> str:
    """torchvision's ``InvertedResidual``: expand 1x1, depthwise 3x3, linear project 1x1."""
    in_channels = m.out_shape(x).c
    hidden = int(round(in_channels * expand_ratio))
    y = x
    if expand_ratio != 1:
        y = _conv_act(m, f"{prefix}.expand", hidden, "relu6", inputs=y)
    _dw(m, f"{prefix}.dw", "relu6", stride=stride, inputs=y)
    # No activation after the projection: the paper's linear bottleneck.
    y = m.add(f"{prefix}.project", Conv2d(out_channels))
    if stride == 1 and in_channels == out_channels:
        y = m.add(f"{prefix}.add", Add(), inputs=[x, y])
    return y


def mobilenet_v2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Model:
    """MobileNet V2 (Sandler et al. 2018, Table 2; torchvision ``mobilenet_v2``).

    Parameters
    ----------
    width : float
        The width multiplier α: channels are ``make_divisible(c * α, 8)``; the last conv has
        ``make_divisible(1280 * max(1, α), 8)``.
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Outputs of the classifier.

    Returns
    -------
    Model
        Without weights. At 1.0-224: 3.47 M parameters, 301 M MACs (published 3.4 M, 300 M).

    Raises
    ------
    ValueError
        If an argument is outside the values above.
    """
    check_width(width)
    check_common(resolution, num_classes)
    m = Model(f"mobilenet_v2_{float(width)}_{resolution}", (resolution, resolution, 3))
    x = _conv_act(m, "features.0.conv", make_divisible(V2_STEM * width), "relu6",
                  kernel=3, stride=2, act_name="features.0.relu6")
    index = 1
    for t, c, n, s in V2_SETTING:
        for i in range(n):
            x = _v2_block(m, f"features.{index}", x, t, make_divisible(c * width),
                          s if i == 0 else 1)
            index += 1
    _conv_act(m, f"features.{index}.conv", make_divisible(V2_LAST * max(1.0, width)), "relu6",
              act_name=f"features.{index}.relu6", inputs=x)
    _linear_head(m, "avgpool", "flatten", "classifier", num_classes)
    return m


# -- MobileNet V3 ---------------------------------------------------------------------------

class V3Block(NamedTuple):
    """One row of torchvision's ``inverted_residual_setting`` (``bneck_conf``), at width 1."""

    in_channels: int
    kernel: int
    expanded: int
    out_channels: int
    use_se: bool
    act: str
    stride: int


RE, HS = "relu", "hard_swish"

# Howard et al. 2019 Table 1 (large) and Table 2 (small), as in torchvision's mobilenetv3.py.
V3_LARGE = (
    V3Block(16, 3, 16, 16, False, RE, 1),
    V3Block(16, 3, 64, 24, False, RE, 2),
    V3Block(24, 3, 72, 24, False, RE, 1),
    V3Block(24, 5, 72, 40, True, RE, 2),
    V3Block(40, 5, 120, 40, True, RE, 1),
    V3Block(40, 5, 120, 40, True, RE, 1),
    V3Block(40, 3, 240, 80, False, HS, 2),
    V3Block(80, 3, 200, 80, False, HS, 1),
    V3Block(80, 3, 184, 80, False, HS, 1),
    V3Block(80, 3, 184, 80, False, HS, 1),
    V3Block(80, 3, 480, 112, True, HS, 1),
    V3Block(112, 3, 672, 112, True, HS, 1),
    V3Block(112, 5, 672, 160, True, HS, 2),
    V3Block(160, 5, 960, 160, True, HS, 1),
    V3Block(160, 5, 960, 160, True, HS, 1),
)
V3_SMALL = (
    V3Block(16, 3, 16, 16, True, RE, 2),
    V3Block(16, 3, 72, 24, False, RE, 2),
    V3Block(24, 3, 88, 24, False, RE, 1),
    V3Block(24, 5, 96, 40, True, HS, 2),
    V3Block(40, 5, 240, 40, True, HS, 1),
    V3Block(40, 5, 240, 40, True, HS, 1),
    V3Block(40, 5, 120, 48, True, HS, 1),
    V3Block(48, 5, 144, 48, True, HS, 1),
    V3Block(48, 5, 288, 96, True, HS, 2),
    V3Block(96, 5, 576, 96, True, HS, 1),
    V3Block(96, 5, 576, 96, True, HS, 1),
)
# Width of the classifier's hidden layer (torchvision's ``last_channel``).
V3_LARGE_HIDDEN = 1280
V3_SMALL_HIDDEN = 1024


def _squeeze_excite(m: Model, prefix: str, x: str) -> str:
    """torchvision's ``SqueezeExcitation`` with a hard-sigmoid gate, as V3 uses."""
    channels = m.out_shape(x).c
    m.add(f"{prefix}.avgpool", GlobalAvgPool(), inputs=x)
    m.add(f"{prefix}.fc1", Conv2d(make_divisible(channels // 4)))
    m.add(f"{prefix}.relu", Activation("relu"))
    m.add(f"{prefix}.fc2", Conv2d(channels))
    gate = m.add(f"{prefix}.hard_sigmoid", Activation("hard_sigmoid"))
    return m.add(f"{prefix}.mul", Mul(), inputs=[x, gate])


def _v3_block(m: Model, prefix: str, x: str, block: V3Block, width: float) -> str:
    """torchvision's V3 ``InvertedResidual``: expand, depthwise, optional SE, linear project."""
    in_channels = m.out_shape(x).c
    expanded = make_divisible(block.expanded * width)
    out_channels = make_divisible(block.out_channels * width)
    y = x
    # torchvision compares the scaled widths, so a block with t = 1 has no expand conv.
    if expanded != in_channels:
        y = _conv_act(m, f"{prefix}.expand", expanded, block.act, inputs=y)
    y = _dw(m, f"{prefix}.dw", block.act, kernel=block.kernel, stride=block.stride, inputs=y)
    if block.use_se:
        y = _squeeze_excite(m, f"{prefix}.se", y)
    y = m.add(f"{prefix}.project", Conv2d(out_channels), inputs=y)
    if block.stride == 1 and in_channels == out_channels:
        y = m.add(f"{prefix}.add", Add(), inputs=[x, y])
    return y


def _mobilenet_v3(name: str, blocks: tuple[V3Block, ...], hidden: int, width: float,
                  resolution: int, num_classes: int) -> Model:
    check_width(width)
    check_common(resolution, num_classes)
    m = Model(f"{name}_{float(width)}_{resolution}", (resolution, resolution, 3))
    x = _conv_act(m, "features.0.conv", make_divisible(blocks[0].in_channels * width), HS,
                  kernel=3, stride=2, act_name="features.0.hard_swish")
    for i, block in enumerate(blocks, start=1):
        x = _v3_block(m, f"features.{i}", x, block, width)
    last = len(blocks) + 1
    # The last conv widens 6x the final block's output, whatever the width multiplier.
    _conv_act(m, f"features.{last}.conv", 6 * m.out_shape(x).c, HS,
              act_name=f"features.{last}.hard_swish", inputs=x)
    m.add("avgpool", GlobalAvgPool())
    m.add("flatten", Flatten())
    # Indices follow torchvision's classifier Sequential; 2 is the dropout left out.
    m.add("classifier.0", Linear(make_divisible(hidden * width)))
    m.add("classifier.1", Activation("hard_swish"))
    m.add("classifier.3", Linear(num_classes))
    return m


def mobilenet_v3_large(width: float = 1.0, resolution: int = 224,
                       num_classes: int = 1000) -> Model:
    """MobileNet V3-Large (Howard et al. 2019, Table 1; torchvision ``mobilenet_v3_large``).

    Parameters
    ----------
    width : float
        The width multiplier α: channels are ``make_divisible(c * α, 8)``, the SE
        bottlenecks ``make_divisible(expanded // 4, 8)``, the last conv 6x the final block.
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Outputs of the classifier.

    Returns
    -------
    Model
        Without weights. At 1.0-224: 5.47 M parameters, 217 M MACs (published 5.4 M, 219 M).

    Raises
    ------
    ValueError
        If an argument is outside the values above.
    """
    return _mobilenet_v3("mobilenet_v3_large", V3_LARGE, V3_LARGE_HIDDEN, width, resolution,
                         num_classes)


def mobilenet_v3_small(width: float = 1.0, resolution: int = 224,
                       num_classes: int = 1000) -> Model:
    """MobileNet V3-Small (Howard et al. 2019, Table 2; torchvision ``mobilenet_v3_small``).

    Parameters
    ----------
    width : float
        The width multiplier α, applied as in :func:`mobilenet_v3_large`.
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Outputs of the classifier.

    Returns
    -------
    Model
        Without weights. At 1.0-224: 2.54 M parameters, 56.5 M MACs (published 2.5 M, 56 M).

    Raises
    ------
    ValueError
        If an argument is outside the values above.
    """
    return _mobilenet_v3("mobilenet_v3_small", V3_SMALL, V3_SMALL_HIDDEN, width, resolution,
                         num_classes)
