"""SqueezeNet 1.0/1.1 and MobileNet V1/V2/V3 builders against their published sizes.

MACs count conv and fully connected multiply-accumulates (SE convs included); parameters
include biases with batch norm folded into the conv bias. torchvision counts batch norm as two
parameters per channel, so its count is ours plus one per batch-normed conv output channel.
"""

from __future__ import annotations

import math

import pytest

from dataflows.layers import Activation, Add, Conv2d, Linear, MaxPool, Mul, TensorShape
from dataflows.zoo.mobilenet import (mobilenet_v1, mobilenet_v2, mobilenet_v3_large,
                                     mobilenet_v3_small)
from dataflows.zoo.squeezenet import squeezenet1_0, squeezenet1_0_caffe, squeezenet1_1

ALL_BUILDERS = [squeezenet1_0, squeezenet1_1, mobilenet_v1, mobilenet_v2, mobilenet_v3_large,
                mobilenet_v3_small]
MOBILENETS = [mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small]


def within(value: float, published: float, tolerance: float) -> bool:
    return abs(value - published) <= tolerance * published


def bn_channels(model, skip: str | None = None) -> int:
    """Conv output channels, i.e. the batch norms folded away (``skip``: names without BN)."""
    return sum(model.layer(n).out_channels for n in model.layers()
               if isinstance(model.layer(n), Conv2d) and not (skip and skip in n))


def nodes_of(model, kind) -> list[str]:
    return [n for n in model.layers() if isinstance(model.layer(n), kind)]


# -- SqueezeNet ---------------------------------------------------------------------------------

def test_squeezenet_param_counts_are_torchvision_exact():
    assert squeezenet1_0().params == 1_248_424
    assert squeezenet1_1().params == 1_235_496
    assert squeezenet1_0_caffe().params == 1_248_424


def test_squeezenet_names_and_defaults():
    assert squeezenet1_0().name == "squeezenet"
    assert squeezenet1_1().name == "squeezenet1_1"
    assert squeezenet1_0().input_shape == TensorShape(227, 227, 3)
    assert squeezenet1_1().input_shape == TensorShape(224, 224, 3)


def test_squeezenet1_0_macs_at_224_match_torchvision():
    assert within(squeezenet1_0(resolution=224).macs, 819e6, 0.01)


def test_squeezenet1_0_macs_at_227():
    # Table 1's shapes fix the arithmetic exactly: 833 M. The widely quoted 861 M is the Caffe
    # release, whose conv10 has pad 1 (15x15 instead of 13x13); that variant must give it.
    assert squeezenet1_0().macs == 832_667_936
    caffe = squeezenet1_0_caffe()
    assert within(caffe.macs, 861e6, 0.01), caffe.macs
    assert caffe.out_shape("conv10") == TensorShape(15, 15, 1000)
    assert caffe.output_shape == TensorShape(1, 1, 1000)


def test_squeezenet1_1_macs_at_224_match_torchvision():
    assert within(squeezenet1_1().macs, 349e6, 0.01)


TABLE_1 = [
    ("conv1", (111, 111, 96)), ("pool1", (55, 55, 96)),
    ("fire2/concat", (55, 55, 128)), ("fire3/concat", (55, 55, 128)),
    ("fire4/concat", (55, 55, 256)), ("pool4", (27, 27, 256)),
    ("fire5/concat", (27, 27, 256)), ("fire6/concat", (27, 27, 384)),
    ("fire7/concat", (27, 27, 384)), ("fire8/concat", (27, 27, 512)),
    ("pool8", (13, 13, 512)), ("fire9/concat", (13, 13, 512)),
    ("conv10", (13, 13, 1000)), ("pool10", (1, 1, 1000)),
]


@pytest.mark.parametrize("name, shape", TABLE_1)
def test_squeezenet1_0_table_1_shapes_at_227(name, shape):
    assert squeezenet1_0(resolution=227).out_shape(name) == TensorShape(*shape)


def test_squeezenet_fire_modules_follow_caffe_release():
    m = squeezenet1_0()
    for name in ["conv1", "relu_conv1", "pool1", "fire2/squeeze1x1", "fire2/relu_squeeze1x1",
                 "fire2/expand1x1", "fire2/relu_expand1x1", "fire2/expand3x3",
                 "fire2/relu_expand3x3", "fire2/concat", "pool4", "pool8", "conv10",
                 "relu_conv10", "pool10"]:
        assert name in m.graph, name
    for i in range(2, 10):
        p = f"fire{i}"
        assert m.inputs_of(f"{p}/concat") == [f"{p}/relu_expand1x1", f"{p}/relu_expand3x3"]
        assert m.layer(f"{p}/expand3x3").padding == (1, 1, 1, 1)
        assert m.layer(f"{p}/expand3x3").kernel == (3, 3)
    assert m.layer("conv1").kernel == (7, 7) and m.layer("conv1").padding == (0, 0, 0, 0)
    assert all(m.layer(n).ceil_mode for n in nodes_of(m, MaxPool))
    assert m.output == "pool10"


def test_squeezenet1_1_layout():
    m = squeezenet1_1()
    assert [n for n in nodes_of(m, MaxPool)] == ["pool1", "pool3", "pool5"]
    assert m.layer("conv1").kernel == (3, 3) and m.layer("conv1").out_channels == 64
    assert m.out_shape("conv1") == TensorShape(111, 111, 64)
    assert m.out_shape("fire9/concat") == TensorShape(13, 13, 512)


# -- MobileNet V1 -------------------------------------------------------------------------------

def test_mobilenet_v1_matches_paper():
    m = mobilenet_v1()
    assert within(m.params, 4.2e6, 0.03), m.params
    assert within(m.macs, 569e6, 0.01), m.macs


def test_mobilenet_v1_half_width_160_matches_paper():
    m = mobilenet_v1(width=0.5, resolution=160)
    assert within(m.params, 1.32e6, 0.03), m.params
    assert within(m.macs, 76e6, 0.03), m.macs


@pytest.mark.parametrize("width, mmacs, mparams", [(0.75, 325, 2.6), (0.5, 149, 1.3),
                                                   (0.25, 41, 0.5)])
def test_mobilenet_v1_width_multiplier_matches_table_6(width, mmacs, mparams):
    m = mobilenet_v1(width=width)
    assert within(m.macs, mmacs * 1e6, 0.01), m.macs
    # The paper prints one decimal: 0.47 M is its "0.5 M".
    assert abs(m.params - mparams * 1e6) <= 0.05e6, m.params


@pytest.mark.parametrize("resolution, mmacs", [(192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolution_matches_table_7(resolution, mmacs):
    m = mobilenet_v1(resolution=resolution)
    assert within(m.macs, mmacs * 1e6, 0.01), m.macs
    assert m.params == mobilenet_v1().params


def test_mobilenet_v1_structure():
    m = mobilenet_v1()
    for name in ["Conv2d_0", "Conv2d_0_relu", "Conv2d_1_depthwise", "Conv2d_1_depthwise_relu",
                 "Conv2d_1_pointwise", "Conv2d_1_pointwise_relu", "Conv2d_13_pointwise",
                 "AvgPool_1a", "Logits/flatten", "Logits"]:
        assert name in m.graph, name
    assert {m.layer(n).kind for n in nodes_of(m, Activation)} == {"relu"}
    depthwise = [n for n in nodes_of(m, Conv2d) if m.layer(n).is_depthwise]
    assert depthwise == [f"Conv2d_{i}_depthwise" for i in range(1, 14)]
    assert m.out_shape("Conv2d_13_pointwise") == TensorShape(7, 7, 1024)
    assert isinstance(m.layer("Logits"), Linear)


@pytest.mark.parametrize("width, channels", [(0.75, 768), (0.5, 512), (0.25, 256)])
def test_mobilenet_v1_channels_are_truncated_products(width, channels):
    m = mobilenet_v1(width=width)
    assert m.out_shape("Conv2d_13_pointwise").c == channels
    assert m.out_shape("Conv2d_0").c == int(32 * width)


# -- MobileNet V2 -------------------------------------------------------------------------------

def test_mobilenet_v2_matches_paper_and_torchvision():
    m = mobilenet_v2()
    assert within(m.params, 3.4e6, 0.03), m.params
    assert within(m.macs, 300e6, 0.03), m.macs
    # torchvision mobilenet_v2: 3,504,872 parameters with batch norm unfolded.
    assert m.params + bn_channels(m) == 3_504_872


@pytest.mark.parametrize("width, mmacs, mparams", [(1.4, 582, 6.06), (1.3, 509, 5.34),
                                                   (0.75, 209, 2.61), (0.5, 97, 1.95),
                                                   (0.35, 59, 1.66)])
def test_mobilenet_v2_width_multiplier_matches_released_checkpoints(width, mmacs, mparams):
    # tensorflow/models research/slim/nets/mobilenet/README.md, V2 checkpoint table.
    m = mobilenet_v2(width=width)
    assert within(m.macs, mmacs * 1e6, 0.01), m.macs
    assert within(m.params, mparams * 1e6, 0.01), m.params


def test_mobilenet_v2_structure():
    m = mobilenet_v2()
    for name in ["features.0.conv", "features.0.relu6", "features.1.dw", "features.1.project",
                 "features.2.expand", "features.2.expand_relu6", "features.2.dw",
                 "features.2.project", "features.3.add", "features.18.conv", "avgpool",
                 "classifier"]:
        assert name in m.graph, name
    assert "features.1.expand" not in m.graph  # t = 1: no expansion
    # Residuals where stride 1 and in == out: 1 + 2 + 3 + 2 + 2 blocks of Table 2.
    assert len(nodes_of(m, Add)) == 10
    assert {m.layer(n).kind for n in nodes_of(m, Activation)} == {"relu6"}
    # Linear bottleneck: no activation reads a projection.
    for n in nodes_of(m, Activation):
        assert not m.inputs_of(n)[0].endswith(".project")
    assert m.out_shape("features.17.project") == TensorShape(7, 7, 320)
    assert m.out_shape("features.18.conv") == TensorShape(7, 7, 1280)
    assert isinstance(m.layer("classifier"), Linear)


def test_mobilenet_v2_last_channel_grows_only_above_width_1():
    assert mobilenet_v2(width=0.5).out_shape("features.18.conv").c == 1280
    assert mobilenet_v2(width=1.4).out_shape("features.18.conv").c == 1792


# -- MobileNet V3 -------------------------------------------------------------------------------

@pytest.mark.parametrize("builder, mparams, mmacs, torchvision_params", [
    (mobilenet_v3_large, 5.4, 219, 5_483_032),
    (mobilenet_v3_small, 2.5, 56, 2_542_856),
])
def test_mobilenet_v3_matches_paper_and_torchvision(builder, mparams, mmacs,
                                                    torchvision_params):
    m = builder()
    assert within(m.params, mparams * 1e6, 0.03), m.params
    assert within(m.macs, mmacs * 1e6, 0.03), m.macs
    # The SE 1x1 convs have a plain bias, no batch norm.
    assert m.params + bn_channels(m, skip=".se.") == torchvision_params


# (expanded, squeeze) channels of each SE block, from torchvision's layers.
SE_LARGE = [(72, 24), (120, 32), (120, 32), (480, 120), (672, 168), (672, 168), (960, 240),
            (960, 240)]
SE_SMALL = [(16, 8), (96, 24), (240, 64), (240, 64), (120, 32), (144, 40), (288, 72),
            (576, 144), (576, 144)]


@pytest.mark.parametrize("builder, blocks, se, last", [
    (mobilenet_v3_large, 15, SE_LARGE, 960), (mobilenet_v3_small, 11, SE_SMALL, 576),
])
def test_mobilenet_v3_structure(builder, blocks, se, last):
    m = builder()
    widths = []
    for mul in nodes_of(m, Mul):
        feature, gate = m.inputs_of(mul)
        assert m.layer(gate) == Activation("hard_sigmoid")
        widths.append((m.out_shape(feature).c, m.layer(mul.replace(".mul", ".fc1")).out_channels))
    assert widths == se
    assert f"features.{blocks}.project" in m.graph
    assert m.out_shape(f"features.{blocks + 1}.conv").c == last
    assert m.layer("classifier.1") == Activation("hard_swish")
    assert isinstance(m.layer("classifier.3"), Linear)
    assert m.output == "classifier.3"
    kinds = {m.layer(n).kind for n in nodes_of(m, Activation)}
    assert kinds == {"relu", "hard_swish", "hard_sigmoid"}


def test_mobilenet_v3_large_first_block_has_no_expansion_and_adds():
    m = mobilenet_v3_large()
    assert "features.1.expand" not in m.graph and "features.1.add" in m.graph
    assert m.layer("features.1.dw_relu") == Activation("relu")
    assert m.layer("features.7.dw_hard_swish") == Activation("hard_swish")
    assert m.layer("features.4.dw").kernel == (5, 5)


# -- all models ---------------------------------------------------------------------------------

@pytest.mark.parametrize("builder", ALL_BUILDERS)
def test_small_input_and_class_count(builder):
    m = builder(resolution=64, num_classes=10)
    assert m.output_shape == TensorShape(1, 1, 10)
    assert m.input_shape == TensorShape(64, 64, 3)


@pytest.mark.parametrize("builder", ALL_BUILDERS)
def test_minimum_resolution_builds(builder):
    assert builder(resolution=32).output_shape == TensorShape(1, 1, 1000)


@pytest.mark.parametrize("builder", ALL_BUILDERS)
@pytest.mark.parametrize("resolution", [31, 0, -224, 224.0, True, "224", None])
def test_invalid_resolution_raises(builder, resolution):
    with pytest.raises(ValueError, match="resolution"):
        builder(resolution=resolution)


@pytest.mark.parametrize("builder", ALL_BUILDERS)
@pytest.mark.parametrize("num_classes", [0, -1, 10.0, True])
def test_invalid_num_classes_raises(builder, num_classes):
    with pytest.raises(ValueError, match="num_classes"):
        builder(num_classes=num_classes)


@pytest.mark.parametrize("builder", MOBILENETS)
@pytest.mark.parametrize("width", [0, -0.5, math.nan, math.inf, True, "1.0", None])
def test_invalid_width_raises(builder, width):
    with pytest.raises(ValueError, match="width"):
        builder(width=width)


@pytest.mark.parametrize("builder", MOBILENETS)
def test_width_is_in_model_name(builder):
    assert builder(width=0.75, resolution=160).name.endswith("_0.75_160")
