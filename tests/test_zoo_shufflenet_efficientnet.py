"""ShuffleNet V1/V2 and EfficientNet-B0 builders against their published sizes.

MACs count conv and fully connected multiply-accumulates (SE convs included); parameters
include biases with batch norm folded into the conv bias. torchvision counts batch norm as two
parameters per channel, so its count is ours plus one per conv output channel.
"""

from __future__ import annotations

import re

import pytest

from dataflows.layers import AvgPool, ChannelShuffle, ChannelSplit, Conv2d, TensorShape
from dataflows.zoo.efficientnet import efficientnet_b0
from dataflows.zoo.shufflenet import shufflenet_v1, shufflenet_v2


def within(value: float, published: float, tolerance: float) -> bool:
    return abs(value - published) <= tolerance * published


def conv_channels(model, skip: str | None = None) -> int:
    """Conv output channels, i.e. the batch norms folded away (``skip``: names without BN)."""
    return sum(model.layer(n).out_channels for n in model.layers()
               if isinstance(model.layer(n), Conv2d) and not (skip and skip in n))


# -- ShuffleNet V1 ----------------------------------------------------------------------------

def test_shufflenet_v1_1x_g3_matches_paper():
    m = shufflenet_v1()
    assert within(m.macs, 138e6, 0.03), m.macs
    assert within(m.params, 1.9e6, 0.05), m.params


@pytest.mark.parametrize("groups, mflops", [(1, 143), (2, 140), (3, 137), (4, 133), (8, 137)])
def test_shufflenet_v1_1x_complexity_per_group(groups, mflops):
    # Zhang et al. Table 1, bottom row: the 1x network at each group count.
    assert within(shufflenet_v1(groups=groups).macs, mflops * 1e6, 0.05)


@pytest.mark.parametrize("groups, width, mflops, mparams", [
    (3, 0.5, 38, 0.7), (8, 0.5, 40, 1.0),
    (3, 1.5, 292, 3.4), (8, 1.5, 290, 4.3),
    (3, 2.0, 524, 5.4), (8, 2.0, 522, 6.5),
])
def test_shufflenet_v1_scaled_matches_released_models(groups, width, mflops, mparams):
    # The authors' released models (megvii-model/ShuffleNet-Series, ShuffleNetV1 README).
    m = shufflenet_v1(groups=groups, width=width)
    assert within(m.macs, mflops * 1e6, 0.03), m.macs
    assert within(m.params, mparams * 1e6, 0.05), m.params


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_shufflenet_v1_quarter_width_matches_table_2(groups):
    assert within(shufflenet_v1(groups=groups, width=0.25).macs, 13e6, 0.05)


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("width", [0.25, 0.5, 1.0, 1.5, 2.0])
def test_shufflenet_v1_group_convs_split_evenly(groups, width):
    m = shufflenet_v1(groups=groups, width=width, resolution=32)
    for name in m.layers():
        layer = m.layer(name)
        if isinstance(layer, Conv2d):
            (x,) = m.input_shapes(name)
            assert x.c % layer.groups == 0 and layer.out_channels % layer.groups == 0, name


def test_shufflenet_v1_structure():
    m = shufflenet_v1(groups=3)
    # Stage 2's first pointwise conv reads only 24 channels and is not grouped.
    assert m.layer("stage2.0.gconv1").groups == 1
    assert m.layer("stage2.1.gconv1").groups == 3
    assert m.layer("stage3.0.gconv1").groups == 3
    assert m.layer("stage2.0.gconv2").groups == 3
    assert m.layer("stage2.0.shuffle") == ChannelShuffle(3)
    assert m.layer("stage2.0.dwconv").is_depthwise
    assert m.layer("stage2.0.dwconv").stride == (2, 2)
    shortcut = m.layer("stage2.0.shortcut")
    assert isinstance(shortcut, AvgPool) and shortcut.count_include_pad
    assert shortcut.kernel == (3, 3) and shortcut.stride == (2, 2)
    assert m.inputs_of("stage2.0.concat") == ["stage2.0.shortcut", "stage2.0.gconv2"]
    assert m.out_shape("stage2.0.gconv2").c == 240 - 24
    assert m.out_shape("stage2.0.relu") == TensorShape(28, 28, 240)
    assert m.inputs_of("stage2.1.add") == ["stage2.0.relu", "stage2.1.gconv2"]
    assert m.out_shape("stage4.3.relu") == TensorShape(7, 7, 960)
    units = {n.rsplit(".", 1)[0] for n in m.layers() if n.endswith(".gconv1")}
    assert len(units) == 4 + 8 + 4


def test_shufflenet_v1_names():
    names = set(shufflenet_v1().layers())
    for name in ["conv1", "maxpool", "stage2.0.gconv1", "stage2.0.shuffle", "stage2.0.dwconv",
                 "stage2.0.gconv2", "stage2.0.shortcut", "stage2.0.concat", "stage2.0.relu",
                 "stage2.1.add", "stage3.7.relu", "stage4.3.relu", "globalpool", "fc"]:
        assert name in names
    # One group makes the shuffle an identity, which is left out.
    assert not any(n.endswith(".shuffle") for n in shufflenet_v1(groups=1).layers())


@pytest.mark.parametrize("groups", [0, 5, 6, 16, -3, 3.0, "3", True, None])
def test_shufflenet_v1_rejects_groups(groups):
    with pytest.raises(ValueError, match=re.escape(f"not {groups!r}")):
        shufflenet_v1(groups=groups)


@pytest.mark.parametrize("width", [0.75, 0.0, -1.0, 3.0, "1.0", True])
def test_shufflenet_v1_rejects_width(width):
    with pytest.raises(ValueError, match=re.escape(f"not {width!r}")):
        shufflenet_v1(width=width)


# -- ShuffleNet V2 ----------------------------------------------------------------------------

# Ma et al. Table 5 (MFLOPs, Mparams) and torchvision's parameter count with batch norm.
V2_PUBLISHED = {
    0.5: (41, 1.4, 1_366_792),
    1.0: (146, 2.3, 2_278_604),
    1.5: (299, 3.5, 3_503_624),
    2.0: (591, 7.4, 7_393_996),
}


@pytest.mark.parametrize("width", sorted(V2_PUBLISHED))
def test_shufflenet_v2_matches_paper(width):
    mflops, mparams, torchvision_params = V2_PUBLISHED[width]
    m = shufflenet_v2(width=width)
    assert within(m.macs, mflops * 1e6, 0.03), m.macs
    assert within(m.params, mparams * 1e6, 0.05), m.params
    assert m.params + conv_channels(m) == torchvision_params


def test_shufflenet_v2_structure():
    m = shufflenet_v2()
    # A stride-1 unit splits its input in half; a stride-2 unit feeds both branches whole.
    assert m.layer("stage2.1.x1") == ChannelSplit(0, 58)
    assert m.layer("stage2.1.x2") == ChannelSplit(58, 116)
    assert m.inputs_of("stage2.1.x1") == m.inputs_of("stage2.1.x2") == ["stage2.0.shuffle"]
    assert m.inputs_of("stage2.1.branch2.pw1") == ["stage2.1.x2"]
    assert m.inputs_of("stage2.1.concat") == ["stage2.1.x1", "stage2.1.branch2.relu2"]
    assert m.inputs_of("stage2.0.branch1.dw") == m.inputs_of("stage2.0.branch2.pw1") == ["maxpool"]
    assert m.inputs_of("stage2.0.concat") == ["stage2.0.branch1.relu", "stage2.0.branch2.relu2"]
    assert m.layer("stage2.0.branch1.dw").is_depthwise
    assert m.layer("stage2.0.branch2.dw").stride == (2, 2)
    assert m.layer("stage3.4.shuffle") == ChannelShuffle(2)
    assert m.out_shape("stage4.3.shuffle") == TensorShape(7, 7, 464)
    assert m.out_shape("conv5") == TensorShape(7, 7, 1024)


def test_shufflenet_v2_names():
    names = set(shufflenet_v2().layers())
    for name in ["conv1", "maxpool", "stage2.0.branch1.dw", "stage2.0.branch1.pw",
                 "stage2.0.branch2.pw1", "stage2.0.branch2.dw", "stage2.0.branch2.pw2",
                 "stage2.0.concat", "stage2.0.shuffle", "stage2.3.x1", "stage3.7.shuffle",
                 "stage4.3.shuffle", "conv5", "globalpool", "fc"]:
        assert name in names


@pytest.mark.parametrize("width", [0.25, 0.75, 1.25, 3.0, "1.0", True, None])
def test_shufflenet_v2_rejects_width(width):
    with pytest.raises(ValueError, match=re.escape(f"not {width!r}")):
        shufflenet_v2(width=width)


# -- EfficientNet-B0 --------------------------------------------------------------------------

def test_efficientnet_b0_matches_paper():
    m = efficientnet_b0()
    assert within(m.macs, 390e6, 0.03), m.macs
    assert within(m.params, 5.3e6, 0.03), m.params
    # The SE convs have real biases and no batch norm.
    assert m.params + conv_channels(m, skip=".se.") == 5_288_548


def test_efficientnet_b0_structure():
    m = efficientnet_b0()
    blocks = {n.rsplit(".", 1)[0] for n in m.layers() if n.endswith(".project")}
    assert len(blocks) == 1 + 2 + 2 + 3 + 3 + 4 + 1
    # The first block has expand ratio 1: no expansion conv, depthwise straight off the stem.
    assert "blocks.0.0.expand" not in set(m.layers())
    assert m.inputs_of("blocks.0.0.dw") == ["stem.act"]
    assert m.layer("blocks.1.0.expand").out_channels == 16 * 6
    # SE squeezes to a quarter of the block's input channels, not of its expanded width.
    assert m.layer("blocks.1.0.se.reduce").out_channels == 4
    assert m.layer("blocks.6.0.se.reduce").out_channels == 192 // 4
    assert m.layer("blocks.2.0.dw").kernel == (5, 5) and m.layer("blocks.2.0.dw").is_depthwise
    assert m.inputs_of("blocks.1.0.se.mul") == ["blocks.1.0.dw.act", "blocks.1.0.se.gate"]
    # A residual only where stride is 1 and the channels do not change.
    assert "blocks.1.0.add" not in set(m.layers())
    assert m.inputs_of("blocks.1.1.add") == ["blocks.1.0.project", "blocks.1.1.project"]
    assert "blocks.4.0.add" not in set(m.layers())  # stride 1 but 80 -> 112 channels
    assert "blocks.6.0.add" not in set(m.layers())
    assert m.out_shape("head") == TensorShape(7, 7, 1280)


def test_efficientnet_b0_names():
    names = set(efficientnet_b0().layers())
    for name in ["stem", "blocks.0.0.dw", "blocks.0.0.se.reduce", "blocks.1.0.expand",
                 "blocks.1.0.se.reduce", "blocks.1.0.se.expand", "blocks.1.0.se.mul",
                 "blocks.1.0.project", "blocks.1.1.add", "blocks.6.0.project", "head",
                 "globalpool", "fc"]:
        assert name in names


# -- shared options ---------------------------------------------------------------------------

BUILDERS = [
    pytest.param(lambda **kw: shufflenet_v1(**kw), id="shufflenet_v1"),
    pytest.param(lambda **kw: shufflenet_v1(groups=8, width=0.5, **kw), id="shufflenet_v1_g8"),
    pytest.param(lambda **kw: shufflenet_v2(**kw), id="shufflenet_v2"),
    pytest.param(lambda **kw: shufflenet_v2(width=2.0, **kw), id="shufflenet_v2_2x"),
    pytest.param(lambda **kw: efficientnet_b0(**kw), id="efficientnet_b0"),
]


@pytest.mark.parametrize("build", BUILDERS)
def test_output_shape_small_input(build):
    m = build(resolution=64, num_classes=10)
    assert m.input_shape == TensorShape(64, 64, 3)
    assert m.output == "fc"
    assert m.output_shape == TensorShape(1, 1, 10)


@pytest.mark.parametrize("build", BUILDERS)
def test_smallest_resolution(build):
    assert build(resolution=32, num_classes=1).output_shape == TensorShape(1, 1, 1)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("resolution", [31, 0, -224, 224.0, "224", True, None])
def test_rejects_resolution(build, resolution):
    with pytest.raises(ValueError, match=re.escape(f"not {resolution!r}")):
        build(resolution=resolution)


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("num_classes", [0, -1, 10.0, True])
def test_rejects_num_classes(build, num_classes):
    with pytest.raises(ValueError, match=re.escape(f"not {num_classes!r}")):
        build(num_classes=num_classes)
