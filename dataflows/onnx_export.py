"""Export an hwgen float :class:`~dataflows.graph.Model` as a float ONNX file.

The file takes one NCHW image ``[1, C, H, W]`` named after the model's input node and, for a
classifier, returns ``[1, num_classes]``. ONNX node names are the hwgen layer names; where a
layer needs several ONNX nodes (a channel shuffle, swish), the extra ones are named
``<layer>/<role>`` and the node producing the layer's result keeps the plain name, so
:func:`dataflows.onnx_import.import_onnx` gives back the same layer names.

Tensors are 4-D ``(1, C, H, W)`` until a ``Flatten`` or ``Linear`` makes them 2-D
``(1, K)``; a layer needing the other rank gets a ``Flatten`` or ``Reshape`` in front.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import layers as L
from .graph import Model

__all__ = ["export_onnx", "OnnxExportError"]

MIN_OPSET = 11


class OnnxExportError(ValueError):
    """The model cannot be written as ONNX: missing weights, bad opset, unknown layer."""


class _Writer:
    """Accumulates nodes and initializers; tracks each hwgen node's ONNX tensor and rank."""

    def __init__(self, model: Model, opset: int):
        self.model = model
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, onnx.TensorProto] = {}
        self.rank: dict[str, int] = {model.input: 4}

    def const(self, name: str, value, dtype=np.int64) -> str:
        self.inits[name] = numpy_helper.from_array(np.asarray(value, dtype=dtype), name)
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        """Add node ``name`` whose one output tensor is also called ``name``."""
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def as_rank(self, src: str, rank: int, for_layer: str) -> str:
        """``src`` as a 4-D (1, C, 1, 1) or 2-D (1, C) tensor, reshaping if need be."""
        if self.rank[src] == rank:
            return src
        c = self.model.out_shape(src).c
        if rank == 2:
            name = self.node("Flatten", [src], f"{for_layer}/flatten", axis=1)
        else:
            shape = self.const(f"{for_layer}/nchw_shape", [1, c, 1, 1])
            name = self.node("Reshape", [src, shape], f"{for_layer}/to_nchw")
        self.rank[name] = rank
        return name


def _activation(w: _Writer, name: str, kind: str, x: str) -> None:
    if kind == "relu":
        w.node("Relu", [x], name)
    elif kind == "relu6":
        w.node("Clip", [x, w.const("hwgen/zero", 0.0, np.float32),
                        w.const("hwgen/six", 6.0, np.float32)], name)
    elif kind == "sigmoid":
        w.node("Sigmoid", [x], name)
    elif kind == "hard_sigmoid":
        w.node("HardSigmoid", [x], name, alpha=1.0 / 6.0, beta=0.5)
    elif kind == "hard_swish" and w.opset >= 14:
        w.node("HardSwish", [x], name)
    elif kind == "hard_swish":
        gate = w.node("HardSigmoid", [x], f"{name}/hard_sigmoid", alpha=1.0 / 6.0, beta=0.5)
        w.node("Mul", [x, gate], name)
    elif kind == "swish":
        w.node("Mul", [x, w.node("Sigmoid", [x], f"{name}/sigmoid")], name)
    else:
        raise OnnxExportError(f"layer {name!r}: activation {kind!r} has no ONNX form")


def _window_attrs(layer) -> dict:
    return {"kernel_shape": list(layer.kernel), "strides": list(layer.stride),
            "pads": list(layer.padding)}  # (top, left, bottom, right) is ONNX's order too


def _weights(w: _Writer, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    attrs = w.model.graph.nodes[name]
    if attrs["weight"] is None:
        raise OnnxExportError(f"layer {name!r} has no weights; call init_weights() or import them")
    return attrs["weight"], attrs["bias"]


def _emit(w: _Writer, name: str) -> int:
    """Write layer ``name``; return the rank of its ONNX result."""
    model, layer = w.model, w.model.layer(name)
    srcs = model.inputs_of(name)
    x = srcs[0]
    rank = w.rank[x]
    match layer:
        case L.Conv2d():
            weight, bias = _weights(w, name)
            ins = [w.as_rank(x, 4, name), w.const(f"{name}.weight", weight.transpose(0, 3, 1, 2),
                                                    np.float32)]
            if bias is not None:
                ins.append(w.const(f"{name}.bias", bias, np.float32))
            w.node("Conv", ins, name, group=layer.groups, dilations=[1, 1], **_window_attrs(layer))
            return 4
        case L.Linear():
            weight, bias = _weights(w, name)
            ins = [w.as_rank(x, 2, name), w.const(f"{name}.weight", weight, np.float32)]
            if bias is not None:
                ins.append(w.const(f"{name}.bias", bias, np.float32))
            w.node("Gemm", ins, name, transB=1)
            return 2
        case L.MaxPool():
            w.node("MaxPool", [w.as_rank(x, 4, name)], name, ceil_mode=int(layer.ceil_mode),
                   **_window_attrs(layer))
            return 4
        case L.AvgPool():
            w.node("AveragePool", [w.as_rank(x, 4, name)], name, ceil_mode=int(layer.ceil_mode),
                   count_include_pad=int(layer.count_include_pad), **_window_attrs(layer))
            return 4
        case L.GlobalAvgPool():
            w.node("GlobalAveragePool", [w.as_rank(x, 4, name)], name)
            return 4
        case L.Concat() | L.Add():
            rank = 4 if len({w.rank[s] for s in srcs}) > 1 else rank
            ins = [w.as_rank(s, rank, f"{name}/{i}") for i, s in enumerate(srcs)]
            if isinstance(layer, L.Concat):
                w.node("Concat", ins, name, axis=1)
            else:
                w.node("Add", ins, name)
            return rank
        case L.Mul():
            gate = w.as_rank(srcs[1], rank, f"{name}/gate")
            w.node("Mul", [x, gate], name)
            return rank
        case L.Activation():
            _activation(w, name, layer.kind, x)
            return rank
        case L.ChannelShuffle():
            h, wd, c = model.out_shape(x)
            g = layer.groups
            split = w.const(f"{name}/split_shape", [1, g, c // g, h, wd])
            merge = w.const(f"{name}/merge_shape", [1, c, h, wd])
            y = w.node("Reshape", [w.as_rank(x, 4, name), split], f"{name}/reshape")
            y = w.node("Transpose", [y], f"{name}/transpose", perm=[0, 2, 1, 3, 4])
            w.node("Reshape", [y, merge], name)
            return 4
        case L.ChannelSplit():
            w.node("Slice", [x, w.const(f"{name}/starts", [layer.start]),
                             w.const(f"{name}/ends", [layer.stop]),
                             w.const(f"{name}/axes", [1])], name)
            return rank
        case L.Flatten():
            h, wd, _ = model.out_shape(x)
            if rank == 2:
                w.node("Identity", [x], name)
            elif h * wd == 1:
                w.node("Flatten", [x], name, axis=1)
            else:  # hwgen flattens H, W, C; ONNX's Flatten of NCHW would give C, H, W
                nhwc = w.node("Transpose", [x], f"{name}/to_nhwc", perm=[0, 2, 3, 1])
                w.node("Flatten", [nhwc], name, axis=1)
            return 2
    raise OnnxExportError(f"layer {name!r}: {type(layer).__name__} has no ONNX export")


def _value_info(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def export_onnx(model: Model, path, opset: int = 17) -> onnx.ModelProto:
    """Write ``model`` with its float weights as an ONNX file and return the proto.

    Parameters
    ----------
    model : Model
        A model whose conv and linear layers have weights.
    path : str, os.PathLike or a binary file object
        The ``.onnx`` file to write.
    opset : int
        ONNX opset of the default domain, 11 or newer (hard swish is ``HardSwish`` from 14,
        ``x * HardSigmoid(x)`` before).

    Raises
    ------
    OnnxExportError
        If ``opset`` is out of range, a layer has no weights, or a layer has no ONNX form.
    """
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise OnnxExportError(f"opset must be an int from {MIN_OPSET} to {newest}, not {opset!r}")
    w = _Writer(model, opset)
    for name in model.layers():
        w.rank[name] = _emit(w, name)
    out = model.output
    h, wd, c = model.output_shape
    if h * wd == 1 and w.rank[out] == 4:  # a classifier answers (1, K), not (1, K, 1, 1)
        out = w.node("Flatten", [out], f"{out}/flatten", axis=1)
        w.rank[out] = 2
    out_shape = [1, c] if w.rank[out] == 2 else [1, c, h, wd]
    ih, iw, ic = model.input_shape
    graph = helper.make_graph(w.nodes, model.name, [_value_info(model.input, [1, ic, ih, iw])],
                              [_value_info(out, out_shape)], list(w.inits.values()))
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="hwgen",
                              ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    if hasattr(path, "write"):
        path.write(proto.SerializeToString())
    else:
        onnx.save(proto, os.fspath(path))
    return proto
