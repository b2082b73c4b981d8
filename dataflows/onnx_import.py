"""Import a float ONNX model as an hwgen :class:`~dataflows.graph.Model`.

The pipeline, like hls4ml's optimizer flow, is a sequence of small steps:

1. read and check the file (``onnx.checker``), pin the batch to 1 and infer shapes;
2. copy it into a rewritable :class:`~dataflows.onnx_ir.OnnxGraph`; absorb a leading NCHW
   transpose of an NHWC input (tf2onnx);
3. run the rewrite passes of :mod:`dataflows.onnx_patterns`: constant folding, batch-norm and
   bias folding, swish, channel shuffle, NHWC flatten, ...;
4. convert what is left, node by node (:mod:`dataflows.onnx_convert`).

Every problem with the input raises :class:`OnnxImportError` with a one-line message that
names the node and its op where there is one.

Example
-------
>>> imported = import_onnx("net.onnx")                     # doctest: +SKIP
>>> y_hwc = run_float(imported.model, imported.to_hwc(x_nchw))
>>> y = imported.from_hwc(y_hwc)                           # ONNX output layout, e.g. (1, 1000)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnx
import onnx.inliner
from onnx import TensorProto

from . import onnx_ops, onnx_ops_layout
from .graph import Model
from .onnx_convert import Converter
from .onnx_fold import FOLDABLE_OPS
from .onnx_ir import OnnxGraph, OnnxImportError, graph_from_proto
from .onnx_patterns import run_passes

__all__ = ["import_onnx", "ImportedModel", "OnnxImportError"]

# Folder ops reaching the converter compute on feature maps: an error, unless a real
# converter (Reshape, Concat, Mul, ...) takes them.
CONVERTERS = {**{op: onnx_ops_layout.unfolded for op in (*FOLDABLE_OPS, "Shape")},
              **onnx_ops.CONVERTERS, **onnx_ops_layout.CONVERTERS}


@dataclass
class ImportedModel:
    """An imported model and the layout adapters between ONNX arrays and hwgen's (H, W, C).

    Attributes
    ----------
    model : Model
        The hwgen graph with float32 weights.
    input_name, output_name : str
        Names of the ONNX graph's input and output tensors.
    input_shape, output_shape : list of int
        Their ONNX shapes with the batch pinned to 1, e.g. ``[1, 3, 224, 224]``, ``[1, 1000]``.
    input_layout : str
        ``"NCHW"``, or ``"NHWC"`` for a graph whose input is transposed to NCHW first.
    output_perm : numpy.ndarray or None
        For an output flattened by ONNX in C, H, W order: the hwgen index of each element.
    """

    model: Model
    input_name: str
    input_shape: list[int]
    output_name: str
    output_shape: list[int]
    input_layout: str = "NCHW"
    output_perm: np.ndarray | None = None

    def to_hwc(self, x: np.ndarray) -> np.ndarray:
        """An input in the ONNX layout, with or without its batch axis, as an (H, W, C) image.

        Raises
        ------
        ValueError
            If ``x`` has neither ``input_shape`` nor ``input_shape[1:]``.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.shape == tuple(self.input_shape[1:]):
            x = x[None]
        if x.shape != tuple(self.input_shape):
            raise ValueError(f"input array has shape {list(x.shape)}; ONNX input "
                             f"{self.input_name!r} takes {self.input_shape} ({self.input_layout})")
        return x[0] if self.input_layout == "NHWC" else x[0].transpose(1, 2, 0)

    def from_hwc(self, y: np.ndarray) -> np.ndarray:
        """The model's (H, W, C) output in the ONNX output's shape and layout.

        Raises
        ------
        ValueError
            If ``y`` does not have the model's output shape.
        """
        y = np.asarray(y)
        if y.shape != tuple(self.model.output_shape):
            raise ValueError(f"output array has shape {list(y.shape)}; the model produces "
                             f"{list(self.model.output_shape)} (H, W, C)")
        if len(self.output_shape) == 4:
            return np.ascontiguousarray(y.transpose(2, 0, 1)[None])
        flat = y.reshape(-1)
        if self.output_perm is not None:
            flat = flat[self.output_perm]
        return flat.reshape(self.output_shape)


def _read(source) -> tuple[onnx.ModelProto, str | None]:
    """The model proto and the path it came from (``None`` for a proto)."""
    if isinstance(source, onnx.ModelProto):
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise OnnxImportError(f"expected a path or an onnx.ModelProto, not {type(source).__name__}")
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise OnnxImportError(f"cannot read ONNX file {path!r}: no such file")
    try:
        proto = onnx.load(path)
    except Exception as e:  # protobuf DecodeError, OSError, missing external data, ...
        raise OnnxImportError(f"cannot read ONNX file {path!r}: {_first_line(e)}") from e
    return proto, path


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def _check(proto: onnx.ModelProto, path: str | None) -> None:
    what = ("invalid ONNX model" if path is None
            else f"cannot read ONNX file {path!r}: invalid model")
    if not proto.graph.node:
        raise OnnxImportError(f"{what}: the graph has no nodes")
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise OnnxImportError(f"{what}: {_first_line(e)}") from e


def _pin_batch(proto: onnx.ModelProto) -> tuple[onnx.ModelProto, str, str]:
    """A copy with batch 1 on the one input and output, checked to be float and 4-D."""
    proto = onnx.ModelProto.FromString(proto.SerializeToString())
    g = proto.graph
    constant = {t.name for t in g.initializer}
    inputs = [vi for vi in g.input if vi.name not in constant]
    if len(inputs) != 1:
        raise OnnxImportError(f"the graph must have one input, has {len(inputs)}: "
                              f"{[vi.name for vi in inputs]}")
    if len(g.output) != 1:
        raise OnnxImportError(f"the graph must have one output, has {len(g.output)}: "
                              f"{[vi.name for vi in g.output]}")
    vi = inputs[0]
    ttype = vi.type.tensor_type
    if ttype.elem_type != TensorProto.FLOAT:
        kind = TensorProto.DataType.Name(ttype.elem_type) if ttype.elem_type else "unknown"
        raise OnnxImportError(f"input {vi.name!r} has element type {kind}; only FLOAT is supported")
    dims = ttype.shape.dim
    if len(dims) != 4:
        raise OnnxImportError(f"input {vi.name!r} has rank {len(dims)}; only 4-D images "
                              f"(N, C, H, W) or (N, H, W, C) are supported")
    if dims[0].HasField("dim_value") and dims[0].dim_value != 1:
        raise OnnxImportError(f"input {vi.name!r} has batch size {dims[0].dim_value}; "
                              f"only batch 1 is supported")
    for i, d in enumerate(dims[1:], start=1):
        if not d.HasField("dim_value") or d.dim_value < 1:
            raise OnnxImportError(f"input {vi.name!r} has dynamic dimension {i} "
                                  f"({d.dim_param or '?'}); export with a fixed image size")
    for d in [dims[0], *g.output[0].type.tensor_type.shape.dim[:1]]:
        if not d.HasField("dim_value"):
            d.dim_value = 1
    del g.value_info[:]  # inference recomputes them with the batch pinned
    return proto, vi.name, g.output[0].name


def _infer_shapes(proto: onnx.ModelProto) -> onnx.ModelProto:
    try:
        if proto.functions:  # torch's dynamo exporter may wrap modules in local functions
            proto = onnx.inliner.inline_local_functions(proto)
        return onnx.shape_inference.infer_shapes(proto, check_type=True, data_prop=True)
    except Exception as e:
        raise OnnxImportError(f"ONNX shape inference failed: {_first_line(e)}") from e


def _absorb_nhwc_input(g: OnnxGraph) -> str:
    """Drop a transpose of the input from NHWC to NCHW (tf2onnx); return the input layout."""
    users = g.consumers(g.input)
    if (len(users) != 1 or users[0].op != "Transpose"
            or list(users[0].attr("perm", [])) != [0, 3, 1, 2]):
        return "NCHW"
    transpose = users[0]
    g.remove(transpose)
    g.replace_uses(transpose.outputs[0], g.input)
    n, h, w, c = g.shapes[g.input]
    g.shapes[g.input] = (n, c, h, w)
    return "NHWC"


def _check_declared_output(proto: onnx.ModelProto, name: str, computed: list[int]) -> None:
    """The output shape the file declares (dynamic dimensions match anything) is ours."""
    for vi in proto.graph.output:
        if vi.name != name or not vi.type.tensor_type.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in vi.type.tensor_type.shape.dim]
        if len(dims) != len(computed) or any(d not in (None, v) for d, v in zip(dims, computed)):
            shown = [d if d is not None else "?" for d in dims]
            raise OnnxImportError(f"output {name!r} is declared as {shown} but computes "
                                  f"{computed}")


def _convert(g: OnnxGraph, name: str, input_shape_hwc) -> tuple[Model, "Converter"]:
    model = Model(name, input_shape_hwc, input_name=g.input)
    conv = Converter(g, model, CONVERTERS)
    conv.run()
    out = conv.tensors.get(g.output)
    if out is None or out.node == model.input:
        what = "a constant" if g.output in g.constants else "not computed by any layer"
        raise OnnxImportError(f"output {g.output!r} is {what}")
    if model.output != out.node:
        raise OnnxImportError(f"the graph has branches that do not reach output {g.output!r}")
    return model, conv


def _check_finite_weights(model, path) -> None:
    """A NaN or infinity in an initializer (or one a folded BatchNormalization made) would
    reach every output; refuse it here, naming the layer, rather than at calibration."""
    for name in model.weighted_layers():
        node = model.graph.nodes[name]
        for kind in ("weight", "bias"):
            value = node.get(kind)
            if value is not None and not np.isfinite(value).all():
                bad = int(np.count_nonzero(~np.isfinite(value)))
                where = f"ONNX file {path!r}" if path else "the ONNX model"
                raise OnnxImportError(f"layer {name!r} of {where} has {bad:,} NaN or infinite "
                                      f"{kind} values")


def import_onnx(source, name: str | None = None) -> ImportedModel:
    """Import a float ONNX model (opsets 11-18 from torch.onnx or tf2onnx) into hwgen.

    Parameters
    ----------
    source : str, os.PathLike or onnx.ModelProto
        The ``.onnx`` file or a loaded model.
    name : str, optional
        Model name; defaults to the file's stem, else the graph's name.

    Returns
    -------
    ImportedModel
        The model plus the ONNX input and output names and shapes and the layout adapters
        :meth:`ImportedModel.to_hwc` and :meth:`ImportedModel.from_hwc`.

    Raises
    ------
    OnnxImportError
        For an unreadable or invalid file, more than one input or output, a batch other than
        1, a dynamic image size, or a node hwgen cannot map (the message names it and its op).
    """
    proto, path = _read(source)
    _check(proto, path)
    try:
        pinned, input_name, output_name = _pin_batch(proto)
        inferred = _infer_shapes(pinned)
        g = graph_from_proto(inferred, input_name, output_name)
        layout = _absorb_nhwc_input(g)
        run_passes(g)
        n, c, h, w = g.shapes[input_name]
        if name is None:  # exporters' graph names ("main_graph", "torch_jit") say less
            stem = os.path.splitext(os.path.basename(path))[0] if path else ""
            name = stem or proto.graph.name or "onnx_model"
        model, conv = _convert(g, name, (h, w, c))
    except OnnxImportError:
        raise
    except Exception as e:  # a malformed graph must not surface as an internal error
        where = f"ONNX file {path!r}" if path else f"ONNX model {proto.graph.name!r}"
        raise OnnxImportError(f"cannot import {where}: {_first_line(e)}") from e
    _check_finite_weights(model, path)
    out = conv.tensors[g.output]
    input_shape = [1, c, h, w] if layout == "NCHW" else [1, h, w, c]
    output_shape = list(conv.onnx_shape(out))
    _check_declared_output(inferred, output_name, output_shape)
    return ImportedModel(model, input_name, input_shape, output_name, output_shape, layout,
                         out.perm)
