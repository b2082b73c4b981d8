"""EfficientNet-B0: MBConv blocks with squeeze-and-excite and swish.

Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
ICML 2019, Table 1, as built by torchvision's ``efficientnet_b0``. Batch norm is folded into
the preceding convolution, so every convolution has a bias; dropout and stochastic depth do
nothing at inference and are left out.
"""

from __future__ import annotations

from typing import NamedTuple

from ..graph import Model
from ..layers import Activation, Add, Conv2d, Flatten, GlobalAvgPool, Linear, Mul
from ._common import check_common

__all__ = ["efficientnet_b0"]


class MBConvStage(NamedTuple):
    """One row of Table 1: ``repeats`` MBConv blocks, the first with ``stride``."""

    expand_ratio: int
    kernel: int
    stride: int
    out_channels: int
    repeats: int


B0_STAGES = (
    MBConvStage(1, 3, 1, 16, 1),
    MBConvStage(6, 3, 2, 24, 2),
    MBConvStage(6, 5, 2, 40, 2),
    MBConvStage(6, 3, 2, 80, 3),
    MBConvStage(6, 5, 1, 112, 3),
    MBConvStage(6, 5, 2, 192, 4),
    MBConvStage(6, 3, 1, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280




def _conv_swish(m: Model, name: str, out_channels: int, kernel: int = 1, stride: int = 1,
                groups: int = 1, inputs=None) -> str:
    """Convolution (PyTorch's ``kernel // 2`` padding) followed by swish, named ``name.act``."""
    m.add(name, Conv2d(out_channels, kernel=kernel, stride=stride, padding=kernel // 2,
                       groups=groups), inputs=inputs)
    return m.add(f"{name}.act", Activation("swish"))


def _squeeze_excite(m: Model, prefix: str, x: str, squeeze_channels: int) -> str:
    """Gate the channels of ``x`` by a two-layer bottleneck on their spatial means."""
    channels = m.out_shape(x).c
    m.add(f"{prefix}.pool", GlobalAvgPool(), inputs=x)
    m.add(f"{prefix}.reduce", Conv2d(squeeze_channels))
    m.add(f"{prefix}.reduce.act", Activation("swish"))
    m.add(f"{prefix}.expand", Conv2d(channels))
    gate = m.add(f"{prefix}.gate", Activation("sigmoid"))
    return m.add(f"{prefix}.mul", Mul(), inputs=[x, gate])


def _mbconv(m: Model, prefix: str, x: str, expand_ratio: int, kernel: int, stride: int,
            out_channels: int) -> str:
    """Inverted bottleneck: expand, depthwise, squeeze-and-excite, linear projection."""
    in_channels = m.out_shape(x).c
    hidden = in_channels * expand_ratio
    # The SE bottleneck is sized from the block's input, not its expanded width (torchvision).
    squeeze = max(1, in_channels // 4)
    y = x
    if expand_ratio != 1:
        y = _conv_swish(m, f"{prefix}.expand", hidden, inputs=y)
    y = _conv_swish(m, f"{prefix}.dw", hidden, kernel=kernel, stride=stride, groups=hidden,
                    inputs=y)
    y = _squeeze_excite(m, f"{prefix}.se", y, squeeze)
    y = m.add(f"{prefix}.project", Conv2d(out_channels), inputs=y)
    if stride == 1 and in_channels == out_channels:
        y = m.add(f"{prefix}.add", Add(), inputs=[x, y])
    return y


def efficientnet_b0(resolution: int = 224, num_classes: int = 1000) -> Model:
    """EfficientNet-B0 (Tan and Le 2019, Table 1; torchvision ``efficientnet_b0``).

    Parameters
    ----------
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Outputs of the classifier.

    Returns
    -------
    Model
        Without weights. At 224: 386 M MACs and 5.27 M parameters (published: 390 M, 5.3 M).

    Raises
    ------
    ValueError
        If ``resolution`` or ``num_classes`` is outside the values above.
    """
    check_common(resolution, num_classes)
    m = Model("efficientnet_b0", (resolution, resolution, 3))
    x = _conv_swish(m, "stem", STEM_CHANNELS, kernel=3, stride=2)
    for s, stage in enumerate(B0_STAGES):
        for i in range(stage.repeats):
            x = _mbconv(m, f"blocks.{s}.{i}", x, stage.expand_ratio, stage.kernel,
                        stage.stride if i == 0 else 1, stage.out_channels)
    m.add("head", Conv2d(HEAD_CHANNELS), inputs=x)
    m.add("head.act", Activation("swish"))
    m.add("globalpool", GlobalAvgPool())
    m.add("flatten", Flatten())
    m.add("fc", Linear(num_classes))
    return m
