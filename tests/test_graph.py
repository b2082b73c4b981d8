"""Graph IR: layer specs, shape inference, counting, and the shared tensor kernels."""

import itertools

import numpy as np
import pytest

from dataflows import layers as L
from dataflows import tensor_ops as ops
from dataflows.graph import GraphError, Model
from dataflows.layers import TensorShape, window_output_size
from dataflows.reference import run_float


# -- window arithmetic ------------------------------------------------------------------------
@pytest.mark.parametrize("size, k, s, pad, ceil, expected", [
    (227, 7, 2, 0, False, 111),  # SqueezeNet conv1
    (111, 3, 2, 0, True, 55),    # SqueezeNet pool1 (ceil_mode)
    (55, 3, 2, 0, True, 27),
    (27, 3, 2, 0, True, 13),
    (112, 3, 2, 1, False, 56),   # ShuffleNet maxpool
    (5, 2, 2, 1, True, 3),       # ceil would start a window in the trailing padding: dropped
    (6, 3, 2, 1, True, 4),
    (7, 3, 2, 1, True, 4),
    (224, 1, 1, 0, False, 224),
])
def test_window_output_size(size, k, s, pad, ceil, expected):
    assert window_output_size(size, k, s, pad, pad, ceil) == expected


def test_window_larger_than_input_is_a_shape_error():
    with pytest.raises(L.ShapeError, match="kernel 5"):
        window_output_size(3, 5, 1, 0, 0)


# -- spec validation --------------------------------------------------------------------------
@pytest.mark.parametrize("make, fragment", [
    (lambda: L.Conv2d(0), "out_channels"),
    (lambda: L.Conv2d(8, kernel=(3, 0)), "kernel"),
    (lambda: L.Conv2d(8, padding=-1), "padding"),
    (lambda: L.Conv2d(6, groups=4), "divisible"),
    (lambda: L.MaxPool(3, 2, padding=3), "smaller than the kernel"),
    (lambda: L.Activation("gelu"), "'gelu'"),
    (lambda: L.ChannelSplit(4, 2), "[4, 2)"),
    (lambda: L.ChannelShuffle(0), "groups"),
    (lambda: L.Linear(-3), "-3"),
])
def test_invalid_specs_raise_value_error_quoting_the_value(make, fragment):
    with pytest.raises(ValueError) as info:
        make()
    assert fragment in str(info.value)


def test_shape_errors_name_the_problem():
    m = Model("t", (8, 8, 6))
    with pytest.raises(L.ShapeError, match="not divisible by groups 4"):
        m.add("c", L.Conv2d(8, groups=4))
    m.add("a", L.Conv2d(4, 3, padding=1))
    m.add("b", L.Conv2d(4, 3, stride=2, padding=1), inputs="input")
    with pytest.raises(L.ShapeError, match="add inputs differ"):
        m.add("sum", L.Add(), inputs=["a", "b"])
    with pytest.raises(L.ShapeError, match="flatten first"):
        m.add("fc", L.Linear(10), inputs="a")
    with pytest.raises(L.ShapeError, match="exceeds 4 channels"):
        m.add("split", L.ChannelSplit(2, 6), inputs="a")


def test_graph_errors():
    m = Model("t", (4, 4, 3))
    m.add("c", L.Conv2d(4))
    with pytest.raises(GraphError, match="duplicate"):
        m.add("c", L.Conv2d(4))
    with pytest.raises(GraphError, match="unknown node 'nope'"):
        m.add("d", L.Conv2d(4), inputs="nope")
    m.add("d", L.Conv2d(4), inputs="input")
    with pytest.raises(GraphError, match="exactly one output"):
        _ = m.output
    with pytest.raises(TypeError):
        m.add("e", {"op": "conv"})


# -- counting ---------------------------------------------------------------------------------
def test_counts_of_a_fire_module():
    """Fire2 of SqueezeNet 1.0 (55x55x96 in): squeeze 16, expand 64 + 64 (Iandola et al.)."""
    m = Model("fire", (55, 55, 96))
    m.add("squeeze1x1", L.Conv2d(16))
    m.add("relu_squeeze1x1", L.Activation("relu"))
    m.add("expand1x1", L.Conv2d(64))
    m.add("relu_expand1x1", L.Activation("relu"))
    m.add("expand3x3", L.Conv2d(64, 3, padding=1), inputs="relu_squeeze1x1")
    m.add("relu_expand3x3", L.Activation("relu"))
    m.add("concat", L.Concat(), inputs=["relu_expand1x1", "relu_expand3x3"])
    assert m.out_shape("concat") == TensorShape(55, 55, 128)
    assert m.params == (96 * 16 + 16) + (16 * 64 + 64) + (16 * 9 * 64 + 64) == 11920
    assert m.macs == 55 * 55 * (96 * 16 + 16 * 64 + 16 * 9 * 64)
    info = {i.name: i for i in m.summary()}
    assert info["expand3x3"].kernel == (3, 3) and info["expand3x3"].groups == 1
    assert info["concat"].kernel is None and info["concat"].params == 0


def test_depthwise_counts():
    m = Model("dw", (14, 14, 32))
    m.add("dw", L.Conv2d(32, 3, 2, 1, groups=32))
    assert m.layer("dw").is_depthwise
    assert m.params == 32 * 9 + 32
    assert m.macs == 7 * 7 * 32 * 9


def test_topological_order_is_deterministic_and_follows_insertion():
    m = Model("t", (4, 4, 4))
    m.add("b", L.Conv2d(4))
    m.add("a", L.Conv2d(4), inputs="input")
    m.add("z", L.Add(), inputs=["b", "a"])
    assert m.layers() == ["b", "a", "z"]
    assert m.inputs_of("z") == ["b", "a"]


# -- kernels against naive loops ----------------------------------------------------------------
def naive_conv(x, w, stride, pad, groups):
    o_c, kh, kw, cg = w.shape
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    ho = (xp.shape[0] - kh) // stride + 1
    wo = (xp.shape[1] - kw) // stride + 1
    og = o_c // groups
    out = np.zeros((ho, wo, o_c))
    for o, i, j in itertools.product(range(o_c), range(ho), range(wo)):
        g = o // og
        patch = xp[i * stride:i * stride + kh, j * stride:j * stride + kw, g * cg:(g + 1) * cg]
        out[i, j, o] = (patch * w[o]).sum()
    return out


@pytest.mark.parametrize("c, o, k, stride, pad, groups", [
    (5, 7, 1, 1, 0, 1), (6, 8, 3, 2, 1, 2), (6, 6, 3, 1, 1, 6), (4, 4, 5, 2, 2, 4),
    (9, 6, 3, 1, 0, 3), (3, 4, 7, 2, 3, 1),
])
def test_conv2d_matches_naive_loops(c, o, k, stride, pad, groups):
    rng = np.random.default_rng(k * 10 + groups)
    x = rng.integers(-128, 128, (9, 11, c)).astype(np.float64)
    w = rng.integers(-128, 128, (o, k, k, c // groups)).astype(np.float64)
    got = ops.conv2d(x, w, (stride, stride), (pad,) * 4, groups)
    np.testing.assert_array_equal(got, naive_conv(x, w, stride, pad, groups))
    assert ops.exact_int(got).dtype == np.int64


def test_max_pool_padding_never_wins_and_ceil_windows_exist():
    x = -np.arange(1, 26, dtype=np.float64).reshape(5, 5, 1)  # all negative
    got = ops.max_pool(x, (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True)
    assert got.shape == (3, 3, 1)
    assert got.max() < 0
    assert got[0, 0, 0] == -1 and got[2, 2, 0] == -19


def test_pool_counts_follow_pytorch_rules():
    # 5x5 input, 3x3/2, pad 1: border windows see 2 real rows, the padding counts only if asked
    incl = ops.pool_counts((5, 5), (3, 3), (2, 2), (1, 1, 1, 1), count_include_pad=True)
    excl = ops.pool_counts((5, 5), (3, 3), (2, 2), (1, 1, 1, 1), count_include_pad=False)
    assert (incl == 9).all()
    assert excl[0, 0] == 4 and excl[1, 1] == 9 and excl[0, 1] == 6
    # ceil mode overhang is never counted, even with count_include_pad
    ceil = ops.pool_counts((6, 6), (3, 3), (2, 2), (0, 0, 0, 0), ceil_mode=True)
    assert ceil.shape == (3, 3) and ceil[2, 2] == 4 and ceil[0, 0] == 9


def test_channel_shuffle_interleaves_groups():
    x = np.arange(6, dtype=np.float64).reshape(1, 1, 6)
    np.testing.assert_array_equal(ops.channel_shuffle(x, 2).ravel(), [0, 3, 1, 4, 2, 5])


def test_exact_int_refuses_inexact_floats():
    with pytest.raises(OverflowError):
        ops.exact_int(np.array([2.0 ** 53]))


def test_run_float_checks_its_input():
    m = Model("t", (4, 4, 3))
    m.add("c", L.Conv2d(2))
    with pytest.raises(ValueError, match="init_weights"):
        run_float(m, np.zeros((4, 4, 3)))
    m.init_weights(0)
    with pytest.raises(ValueError, match=r"\(4, 4, 3\)"):
        run_float(m, np.zeros((3, 4, 4)))
    assert run_float(m, np.ones((4, 4, 3))).shape == (4, 4, 2)


def test_seeded_weights_are_reproducible():
    def make():
        m = Model("t", (4, 4, 3))
        m.add("c", L.Conv2d(8, 3))
        return m.init_weights(7)
    a, b = make(), make()
    np.testing.assert_array_equal(a.graph.nodes["c"]["weight"], b.graph.nodes["c"]["weight"])
