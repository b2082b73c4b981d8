"""ShuffleNet V1 and V2: group convolutions, channel shuffle and channel split.

- :func:`shufflenet_v1`: Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional
  Neural Network for Mobile Devices", CVPR 2018, Table 1.
- :func:`shufflenet_v2`: Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN
  Architecture Design", ECCV 2018, Table 5, as built by torchvision's ``shufflenet_v2_x*``.

Batch norm is folded into the preceding convolution, so every convolution has a bias.
"""

from __future__ import annotations

from ..graph import Model
from ..layers import (Activation, Add, AvgPool, ChannelShuffle, ChannelSplit, Concat, Conv2d,
                      Flatten, GlobalAvgPool, Linear, MaxPool)
from ._common import check_common

__all__ = ["shufflenet_v1", "shufflenet_v2"]

STAGE_REPEATS = (4, 8, 4)

# Table 1 of Zhang et al.: output channels of stages 2-4 at scale 1x, per group count.
V1_STAGE_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# conv1 channels per scale. Table 1 gives only 1x; the authors' released models
# (megvii-model/ShuffleNet-Series) scale conv1 too but keep 24 at 1.5x, and that is what
# reproduces the published 38 M (0.5x), 292 M (1.5x) and 524 M (2x, g=3) MACs. 0.25x was
# never released; 12 (not 6) reproduces Table 2's 13 M for g <= 4.
V1_STEM_CHANNELS = {0.25: 12, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
V1_WIDTHS = tuple(V1_STEM_CHANNELS)

# Table 5 of Ma et al. / torchvision: output channels of conv1, stages 2-4 and conv5.
V2_STAGE_CHANNELS = {
    0.5: (24, 48, 96, 192, 1024),
    1.0: (24, 116, 232, 464, 1024),
    1.5: (24, 176, 352, 704, 1024),
    2.0: (24, 244, 488, 976, 2048),
}




def _conv(m: Model, name: str, out_channels: int, kernel: int = 1, stride: int = 1,
          groups: int = 1, inputs=None) -> str:
    """Convolution with PyTorch's symmetric ``kernel // 2`` padding."""
    return m.add(name, Conv2d(out_channels, kernel=kernel, stride=stride, padding=kernel // 2,
                              groups=groups), inputs=inputs)


def _stem(m: Model, channels: int) -> str:
    _conv(m, "conv1", channels, kernel=3, stride=2)
    m.add("conv1.relu", Activation("relu"))
    return m.add("maxpool", MaxPool(kernel=3, stride=2, padding=1))


def _classifier(m: Model, num_classes: int) -> str:
    m.add("globalpool", GlobalAvgPool())
    m.add("flatten", Flatten())
    return m.add("fc", Linear(num_classes))


# -- ShuffleNet V1 --------------------------------------------------------------------------

def _round_to(value: float, multiple: int) -> int:
    """``value`` rounded half up to a positive multiple of ``multiple``."""
    return max(multiple, int(value / multiple + 0.5) * multiple)


def _v1_channels(groups: int, width: float) -> tuple[int, list[tuple[int, int]]]:
    """Channels of conv1, and (output, bottleneck) channels of stages 2-4.

    Every group conv must split evenly, so outputs, bottlenecks and conv1 are multiples of
    ``groups`` (conv1 too, because the first stride-2 branch makes output minus conv1). At 1x
    Table 1 already obeys this; scaled, only some bottlenecks move (g=2 at 0.5x: 25 to 26).
    """
    stem = -(-V1_STEM_CHANNELS[width] // groups) * groups
    stages = []
    for base in V1_STAGE_CHANNELS[groups]:
        out = _round_to(base * width, groups)
        stages.append((out, _round_to(out / 4, groups)))
    return stem, stages


def _v1_unit(m: Model, prefix: str, x: str, out_channels: int, mid: int, stride: int,
             groups: int, first_groups: int) -> str:
    """One ShuffleNet unit (Fig. 2 b, c): GConv, shuffle, DWConv, GConv, then merge."""
    in_channels = m.out_shape(x).c
    # A stride-2 unit concatenates the pooled input, so the branch makes only the rest.
    branch_out = out_channels - in_channels if stride == 2 else out_channels
    _conv(m, f"{prefix}.gconv1", mid, groups=first_groups, inputs=x)
    m.add(f"{prefix}.gconv1.relu", Activation("relu"))
    if groups > 1:
        # With one group the shuffle is the identity; leaving it out saves a pass-through stage.
        m.add(f"{prefix}.shuffle", ChannelShuffle(groups))
    _conv(m, f"{prefix}.dwconv", mid, kernel=3, stride=stride, groups=mid)
    branch = _conv(m, f"{prefix}.gconv2", branch_out, groups=groups)
    if stride == 2:
        shortcut = m.add(f"{prefix}.shortcut",
                         AvgPool(kernel=3, stride=2, padding=1, count_include_pad=True), inputs=x)
        m.add(f"{prefix}.concat", Concat(), inputs=[shortcut, branch])
    else:
        m.add(f"{prefix}.add", Add(), inputs=[x, branch])
    return m.add(f"{prefix}.relu", Activation("relu"))


def shufflenet_v1(groups: int = 3, width: float = 1.0, resolution: int = 224,
                  num_classes: int = 1000) -> Model:
    """ShuffleNet V1 (Zhang et al. 2018, Table 1).

    Parameters
    ----------
    groups : int
        Group count of the pointwise convolutions: 1, 2, 3, 4 or 8.
    width : float
        The paper's scale factor ``s`` of "ShuffleNet s×": 0.25, 0.5, 1.0, 1.5 or 2.0. It
        scales stages 2-4; conv1 has 12 channels at 0.25x and 0.5x, 24 at 1x and 1.5x and 48
        at 2x (as the authors' released models), rounded up to a multiple of ``groups``.
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Outputs of the classifier.

    Returns
    -------
    Model
        Without weights. At 1x, g=3, 224: 137.5 M MACs and 1.85 M parameters (published:
        137-140 M, 1.9 M).

    Raises
    ------
    ValueError
        If an argument is outside the values above.
    """
    if not isinstance(groups, int) or isinstance(groups, bool) or groups not in V1_STAGE_CHANNELS:
        raise ValueError(f"groups must be one of 1, 2, 3, 4, 8, not {groups!r}")
    if isinstance(width, bool) or width not in V1_WIDTHS:
        raise ValueError(f"width must be one of {', '.join(map(str, V1_WIDTHS))}, not {width!r}")
    check_common(resolution, num_classes)
    m = Model(f"shufflenet_v1_g{groups}_{width:g}x", (resolution, resolution, 3))
    stem, stages = _v1_channels(groups, width)
    x = _stem(m, stem)
    for stage, (repeats, (channels, mid)) in enumerate(zip(STAGE_REPEATS, stages), start=2):
        for i in range(repeats):
            # Stage 2 starts from only 24 channels, too few to split into groups (Table 1 note).
            first_groups = 1 if stage == 2 and i == 0 else groups
            x = _v1_unit(m, f"stage{stage}.{i}", x, channels, mid, stride=2 if i == 0 else 1,
                         groups=groups, first_groups=first_groups)
    _classifier(m, num_classes)
    return m


# -- ShuffleNet V2 --------------------------------------------------------------------------

def _v2_branch2(m: Model, prefix: str, x: str, channels: int, stride: int) -> str:
    """The main branch: 1x1 + ReLU, depthwise 3x3 (linear), 1x1 + ReLU."""
    _conv(m, f"{prefix}.pw1", channels, inputs=x)
    m.add(f"{prefix}.relu1", Activation("relu"))
    _conv(m, f"{prefix}.dw", channels, kernel=3, stride=stride, groups=channels)
    _conv(m, f"{prefix}.pw2", channels)
    return m.add(f"{prefix}.relu2", Activation("relu"))


def _v2_unit(m: Model, prefix: str, x: str, out_channels: int, stride: int) -> str:
    """torchvision's ``InvertedResidual``: split or duplicate, two branches, concat, shuffle."""
    in_channels = m.out_shape(x).c
    half = out_channels // 2
    if stride == 1:
        left = m.add(f"{prefix}.x1", ChannelSplit(0, half), inputs=x)
        right = m.add(f"{prefix}.x2", ChannelSplit(half, in_channels), inputs=x)
    else:
        # The stride-2 unit has no split: both branches read the whole input.
        _conv(m, f"{prefix}.branch1.dw", in_channels, kernel=3, stride=stride,
              groups=in_channels, inputs=x)
        _conv(m, f"{prefix}.branch1.pw", half)
        left = m.add(f"{prefix}.branch1.relu", Activation("relu"))
        right = x
    branch = _v2_branch2(m, f"{prefix}.branch2", right, half, stride)
    m.add(f"{prefix}.concat", Concat(), inputs=[left, branch])
    return m.add(f"{prefix}.shuffle", ChannelShuffle(2))


def shufflenet_v2(width: float = 1.0, resolution: int = 224, num_classes: int = 1000) -> Model:
    """ShuffleNet V2 (Ma et al. 2018, Table 5; torchvision ``shufflenet_v2_x*``).

    Parameters
    ----------
    width : float
        Channel multiplier: 0.5, 1.0, 1.5 or 2.0.
    resolution : int
        Input height and width, at least 32.
    num_classes : int
        Outputs of the classifier.

    Returns
    -------
    Model
        Without weights. At 1x, 224: 145 M MACs and 2.27 M parameters (published: 146 M, 2.3 M).

    Raises
    ------
    ValueError
        If an argument is outside the values above.
    """
    if isinstance(width, bool) or width not in tuple(V2_STAGE_CHANNELS):
        raise ValueError(f"width must be one of {', '.join(map(str, V2_STAGE_CHANNELS))}, "
                         f"not {width!r}")
    check_common(resolution, num_classes)
    stem, *stages, last = V2_STAGE_CHANNELS[width]
    m = Model(f"shufflenet_v2_{width:g}x", (resolution, resolution, 3))
    x = _stem(m, stem)
    for stage, (repeats, channels) in enumerate(zip(STAGE_REPEATS, stages), start=2):
        for i in range(repeats):
            x = _v2_unit(m, f"stage{stage}.{i}", x, channels, stride=2 if i == 0 else 1)
    _conv(m, "conv5", last)
    m.add("conv5.relu", Activation("relu"))
    _classifier(m, num_classes)
    return m
