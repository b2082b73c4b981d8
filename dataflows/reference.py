"""Float reference executor: runs a :class:`~dataflows.graph.Model` in numpy float32.

This is the model the quantized integer model is compared against, and the executor an
imported ONNX model is checked with against onnxruntime.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import layers as L
from . import tensor_ops as ops
from .graph import Model

__all__ = ["run_float", "activation", "FLOAT_ACTIVATIONS"]


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _hard_sigmoid(x):
    return np.clip(x + 3.0, 0.0, 6.0) / 6.0


FLOAT_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": lambda x: np.clip(x, 0.0, 6.0),
    "hard_sigmoid": _hard_sigmoid,
    "hard_swish": lambda x: x * _hard_sigmoid(x),
    "sigmoid": _sigmoid,
    "swish": lambda x: x * _sigmoid(x),
}


def activation(kind: str, x: np.ndarray) -> np.ndarray:
    """The float definition of activation ``kind`` (see :class:`~dataflows.layers.Activation`)."""
    return FLOAT_ACTIVATIONS[kind](x).astype(x.dtype, copy=False)


def _avg_pool(layer: L.AvgPool, x):
    sums = ops.sum_pool(x, layer.kernel, layer.stride, layer.padding, layer.ceil_mode)
    counts = ops.pool_counts(x.shape, layer.kernel, layer.stride, layer.padding,
                             layer.ceil_mode, layer.count_include_pad)
    return sums / counts[:, :, None].astype(x.dtype)


def _bias(node, y):
    return y if node["bias"] is None else y + node["bias"]


def _eval(model: Model, name: str, args: list[np.ndarray]) -> np.ndarray:
    node = model.graph.nodes[name]
    layer = node["layer"]
    match layer:
        case L.Conv2d():
            return _bias(node, ops.conv2d(args[0], node["weight"], layer.stride, layer.padding,
                                          layer.groups))
        case L.Linear():
            return _bias(node, ops.linear(args[0], node["weight"]))
        case L.MaxPool():
            return ops.max_pool(args[0], layer.kernel, layer.stride, layer.padding, layer.ceil_mode)
        case L.AvgPool():
            return _avg_pool(layer, args[0])
        case L.GlobalAvgPool():
            return args[0].mean(axis=(0, 1), keepdims=True)
        case L.Concat():
            return np.concatenate(args, axis=2)
        case L.Add():
            return args[0] + args[1]
        case L.ChannelShuffle():
            return ops.channel_shuffle(args[0], layer.groups)
        case L.ChannelSplit():
            return args[0][:, :, layer.start:layer.stop]
        case L.Activation():
            return activation(layer.kind, args[0])
        case L.Mul():
            return args[0] * args[1]
        case L.Flatten():
            return args[0].reshape(1, 1, -1)
    raise TypeError(f"no float semantics for layer {name!r} of type {type(layer).__name__}")


def run_float(model: Model, x: np.ndarray, keep_all: bool = False):
    """Run ``model`` on one (H, W, C) image in float32.

    Parameters
    ----------
    model : Model
        A model whose weighted layers have weights.
    x : numpy.ndarray
        Input of shape ``model.input_shape``.
    keep_all : bool
        Return every node's output as a dict instead of the final output only.

    Raises
    ------
    ValueError
        If ``x`` has the wrong shape or a weighted layer has no weights.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.shape != tuple(model.input_shape):
        raise ValueError(f"input shape {x.shape} does not match the model's "
                         f"{tuple(model.input_shape)} (H, W, C)")
    missing = [n for n in model.weighted_layers() if model.graph.nodes[n]["weight"] is None]
    if missing:
        raise ValueError(f"layers without weights: {', '.join(missing[:5])}; call init_weights()")
    values = {model.input: x}
    users = {n: model.graph.out_degree(n) for n in model.graph}
    for name in model.layers():
        args = [values[src] for src in model.inputs_of(name)]
        values[name] = _eval(model, name, args).astype(np.float32, copy=False)
        if not keep_all:  # free feature maps nobody reads any more
            for src in model.inputs_of(name):
                users[src] -= 1
                if users[src] == 0:
                    del values[src]
    return values if keep_all else values[model.output]
