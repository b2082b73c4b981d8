"""Rewrite passes of the ONNX importer, one small match/transform function per pattern.

Each pass takes an :class:`~dataflows.onnx_ir.OnnxGraph`, rewrites every match it finds and
returns whether it changed anything; :func:`run_passes` repeats the list until nothing
changes. A pass never raises for a graph it does not match: what no pass absorbs reaches the
converter, whose error names the node. Passes raise only for nodes they alone handle (a
``Gemm`` with ``transA``, a ``Dropout`` in training mode).

Pass-created ops (prefix ``hwgen.``):

``hwgen.Linear``
    inputs ``[x, W, b]`` with ``W`` as (out, in) and ``b`` optional: Gemm / MatMul (+ Add).
``hwgen.Activation``
    attribute ``kind``: ``swish`` from ``x * Sigmoid(x)``, ``hard_swish`` from
    ``x * HardSigmoid(x)``.
``hwgen.ChannelShuffle``
    Reshape -> Transpose -> Reshape; inputs ``[x, target1, target2]``, the two reshape
    targets, are checked by the converter once the input shape is known.
``hwgen.FlattenHWC``
    Transpose to NHWC -> Flatten / Reshape / Squeeze: a flatten in hwgen's own H, W, C order;
    attribute ``flatten`` holds the original flattening node.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .onnx_fold import fold_constants
from .onnx_ir import HW, OnnxGraph, OnnxNode

__all__ = ["PASSES", "run_passes", "channel_vector"]

WEIGHTED = ("Conv", HW + "Linear")
HARD_SIGMOID_ALPHA = 1.0 / 6.0


def _replace(g: OnnxGraph, old: OnnxNode, new: OnnxNode) -> None:
    """Put ``new`` where ``old`` was in the (topologically ordered) node list."""
    g.nodes[g.nodes.index(old)] = new
    g.changed()


def channel_vector(value: np.ndarray, rank: int, channels: int) -> np.ndarray | None:
    """``value`` as a per-channel (channels,) vector if it broadcasts as one against a
    rank-``rank`` tensor with channels on axis 1; ``None`` if it varies along other axes."""
    value = np.asarray(value, dtype=np.float32)
    if value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(value.reshape(-1), (channels,)).astype(np.float32)


# -- clean-up ------------------------------------------------------------------------------

def remove_passthrough(g: OnnxGraph) -> bool:
    """Drop ``Identity`` and inference-mode ``Dropout``."""
    changed = False
    for node in list(g.nodes):
        if node.op not in ("Identity", "Dropout") or node.inputs[0] in g.constants:
            continue
        if node.op == "Dropout":
            mask = node.outputs[1] if len(node.outputs) > 1 else ""
            if mask and (g.consumers(mask) or mask == g.output):
                raise node.fail("the dropout mask output is used; only inference is supported")
            mode = node.input(2)
            if mode and (mode not in g.constants or bool(np.asarray(g.constants[mode]).any())):
                raise node.fail("training_mode must be a constant false")
        g.bypass(node)
        changed = True
    return changed


def fold_pad_into_conv(g: OnnxGraph) -> bool:
    """Absorb a zero ``Pad`` of H and W into the convolutions that alone read it."""
    changed = False
    for pad in list(g.nodes):
        if pad.op != "Pad" or pad.attr("mode", "constant") != "constant":
            continue
        pads = pad.attr("pads") if "pads" in pad.attrs else g.constants.get(pad.input(1))
        value = pad.attr("value", 0.0) if pad.input(2) == "" else g.constants.get(pad.input(2))
        users = g.consumers(pad.outputs[0])
        if (pads is None or value is None or np.any(np.asarray(value) != 0) or pad.input(3)
                or pad.outputs[0] == g.output or not users):
            continue
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        if len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
            continue
        if not all(u.op == "Conv" and u.attr("auto_pad", "NOTSET") == "NOTSET" for u in users):
            continue
        extra = [pads[2], pads[3], pads[6], pads[7]]  # ONNX order: H begin, W begin, H end, W end
        for conv in users:
            conv.attrs["pads"] = [a + b for a, b in zip(conv.attr("pads", [0, 0, 0, 0]), extra)]
        g.bypass(pad)
        changed = True
    return changed


# -- linear layers -------------------------------------------------------------------------

def gemm_to_linear(g: OnnxGraph) -> bool:
    """``Gemm`` and 2-D ``MatMul`` by constant weights become ``hwgen.Linear`` (W as (O, I))."""
    changed = False
    for node in list(g.nodes):
        if node.op == "MatMul":
            if node.input(1) not in g.constants or np.ndim(g.constants[node.input(1)]) != 2:
                continue
            w, b = g.constants[node.input(1)].T, None
        elif node.op == "Gemm":
            if node.flag("transA", 0):
                raise node.fail("transA=1 is not supported")
            w = g.const(node, 1, "the weight B")
            if np.ndim(w) != 2:
                raise node.fail(f"weight B has shape {list(np.shape(w))}; expected 2-D")
            w = (w if node.flag("transB", 0) else w.T) * node.attr("alpha", 1.0)
            b = None
            if node.input(2):
                c = channel_vector(g.const(node, 2, "the bias C"), 2, w.shape[0])
                if c is None:
                    raise node.fail(f"bias C of shape {list(g.constants[node.input(2)].shape)} "
                                    f"is not one value per output")
                b = c * np.float32(node.attr("beta", 1.0))
        else:
            continue
        inputs = [node.inputs[0], g.add_const(node.name + ".weight", np.asarray(w, np.float32))]
        if b is not None:
            inputs.append(g.add_const(node.name + ".bias", b))
        _replace(g, node, OnnxNode(HW + "Linear", node.name, inputs, node.outputs[:1]))
        changed = True
    return changed


def _weighted_producer(g: OnnxGraph, tensor: str) -> OnnxNode | None:
    """The Conv or Linear producing ``tensor`` if nothing else reads it."""
    prod = g.producer(tensor)
    if prod is None or prod.op not in WEIGHTED or len(prod.outputs) != 1:
        return None
    if prod.input(1) not in g.constants or (prod.input(2) and prod.input(2) not in g.constants):
        return None
    users = g.consumers(tensor)
    return prod if tensor != g.output and len(users) == 1 else None


def _set_affine(g: OnnxGraph, layer: OnnxNode, scale, shift, out: str) -> None:
    """Replace ``layer``'s output ``y`` by ``y * scale + shift`` (per channel) named ``out``."""
    w = g.constants[layer.inputs[1]]
    b = g.constants[layer.input(2)] if layer.input(2) else np.zeros(w.shape[0], np.float32)
    if np.shape(b) != (w.shape[0],):
        raise layer.fail(f"bias of shape {list(np.shape(b))} does not match weight "
                         f"{list(w.shape)}")
    w = (w * scale.reshape(-1, *[1] * (w.ndim - 1))).astype(np.float32)
    b = (b * scale + shift).astype(np.float32)
    layer.inputs = [layer.inputs[0], g.add_const(layer.name + ".weight", w),
                    g.add_const(layer.name + ".bias", b)]
    layer.outputs = [out]
    g.changed()


def fold_batchnorm(g: OnnxGraph) -> bool:
    """Fold an inference ``BatchNormalization`` into the Conv or Linear before it."""
    changed = False
    for bn in list(g.nodes):
        if bn.op != "BatchNormalization" or bn.flag("training_mode", 0):
            continue
        if any(g.consumers(t) or t == g.output for t in bn.outputs[1:]):
            continue
        layer = _weighted_producer(g, bn.inputs[0])
        if layer is None or not all(t in g.constants for t in bn.inputs[1:5]):
            continue
        gamma, beta, mean, var = (np.asarray(g.constants[t], np.float64).reshape(-1)
                                  for t in bn.inputs[1:5])
        channels = g.constants[layer.inputs[1]].shape[0]
        if any(p.size != channels for p in (gamma, beta, mean, var)):
            raise bn.fail(f"parameters of sizes {[p.size for p in (gamma, beta, mean, var)]} "
                          f"do not match the {channels} channels of {layer.name!r}")
        if np.any(var + bn.attr("epsilon", 1e-5) <= 0):
            raise bn.fail("variance plus epsilon must be positive")
        scale = gamma / np.sqrt(var + bn.attr("epsilon", 1e-5))
        _set_affine(g, layer, scale, beta - mean * scale, bn.outputs[0])
        g.remove(bn)
        changed = True
    return changed


def fold_constant_affine(g: OnnxGraph) -> bool:
    """Fold ``y + c``, ``y - c``, ``y * c``, ``y / c`` with a per-channel constant ``c`` into
    the Conv or Linear computing ``y`` (exporters' bias adds and decomposed batch norms)."""
    changed = False
    for node in list(g.nodes):
        if node.op not in ("Add", "Sub", "Mul", "Div") or len(node.inputs) != 2:
            continue
        a, b = node.inputs
        if a in g.constants and node.op in ("Add", "Mul"):
            a, b = b, a
        if b not in g.constants or a in g.constants:
            continue
        layer = _weighted_producer(g, a)
        if layer is None:
            continue
        rank = 4 if layer.op == "Conv" else 2
        c = channel_vector(g.constants[b], rank, g.constants[layer.inputs[1]].shape[0])
        if c is None:
            continue
        n = c.shape[0]
        ones, zeros = np.ones(n, np.float32), np.zeros(n, np.float32)
        scale, shift = {"Add": (ones, c), "Sub": (ones, -c), "Mul": (c, zeros),
                        "Div": (1.0 / c, zeros)}[node.op]
        _set_affine(g, layer, scale, shift, node.outputs[0])
        g.remove(node)
        changed = True
    return changed


# -- fused patterns ------------------------------------------------------------------------

def _is_hard_sigmoid(node: OnnxNode) -> bool:
    return (node.op == "HardSigmoid"
            and abs(node.attr("alpha", 0.2) - HARD_SIGMOID_ALPHA) < 1e-6
            and abs(node.attr("beta", 0.5) - 0.5) < 1e-6)


def fuse_self_gating(g: OnnxGraph) -> bool:
    """``x * Sigmoid(x)`` becomes swish, ``x * HardSigmoid(x)`` hard swish."""
    changed = False
    for mul in list(g.nodes):
        if mul.op != "Mul" or len(mul.inputs) != 2:
            continue
        for x, gate in (mul.inputs, mul.inputs[::-1]):
            prod = g.producer(gate)
            if prod is None or prod.inputs[:1] != [x] or not g.only_user(gate, mul):
                continue
            kind = ("swish" if prod.op == "Sigmoid"
                    else "hard_swish" if _is_hard_sigmoid(prod) else None)
            if kind is None:
                continue
            _replace(g, mul, OnnxNode(HW + "Activation", mul.name, [x], mul.outputs,
                                      {"kind": kind}))
            g.remove(prod)
            changed = True
            break
    return changed


def _single_reader(g: OnnxGraph, node: OnnxNode, op: str) -> OnnxNode | None:
    users = g.consumers(node.outputs[0])
    if node.outputs[0] == g.output or len(users) != 1 or users[0].op != op:
        return None
    return users[0]


def fuse_channel_shuffle(g: OnnxGraph) -> bool:
    """Reshape (N, g, C/g, H, W) -> Transpose (0, 2, 1, 3, 4) -> Reshape (N, C, H, W)."""
    changed = False
    for first in list(g.nodes):
        if first.op != "Reshape" or first.flag("allowzero", 0):
            continue
        transpose = _single_reader(g, first, "Transpose")
        if transpose is None or list(transpose.attr("perm", [])) != [0, 2, 1, 3, 4]:
            continue
        last = _single_reader(g, transpose, "Reshape")
        if last is None or last.flag("allowzero", 0):
            continue
        # The targets may still be computed from shapes; the converter checks their values.
        _replace(g, last, OnnxNode(HW + "ChannelShuffle", last.name,
                                   [first.inputs[0], first.inputs[1], last.inputs[1]],
                                   last.outputs))
        g.remove(first)
        g.remove(transpose)
        changed = True
    return changed


def fuse_nhwc_flatten(g: OnnxGraph) -> bool:
    """Transpose (0, 2, 3, 1) then Flatten / Reshape / Squeeze: hwgen's H, W, C flatten."""
    changed = False
    for transpose in list(g.nodes):
        if transpose.op != "Transpose" or list(transpose.attr("perm", [])) != [0, 2, 3, 1]:
            continue
        users = g.consumers(transpose.outputs[0])
        if transpose.outputs[0] == g.output or len(users) != 1:
            continue
        flat = users[0]
        if flat.op not in ("Flatten", "Reshape", "Squeeze"):
            continue
        _replace(g, flat, OnnxNode(HW + "FlattenHWC", flat.name, transpose.inputs[:1],
                                   flat.outputs, {"flatten": flat}))
        g.remove(transpose)
        changed = True
    return changed


def nhwc_global_mean(g: OnnxGraph) -> bool:
    """Transpose (0, 2, 3, 1) then ReduceMean over H, W (axes 1, 2), keepdims 0 (tf2onnx's
    global pooling) is the same as the mean over axes 2, 3 of the untransposed map."""
    changed = False
    for transpose in list(g.nodes):
        if transpose.op != "Transpose" or list(transpose.attr("perm", [])) != [0, 2, 3, 1]:
            continue
        mean = _single_reader(g, transpose, "ReduceMean")
        if mean is None or mean.flag("keepdims", 1):
            continue
        axes = mean.attr("axes", g.constants.get(mean.input(1), []))
        if sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) != [1, 2]:
            continue
        mean.inputs = transpose.inputs[:1]
        mean.attrs["axes"] = [2, 3]
        g.remove(transpose)
        changed = True
    return changed


PASSES: tuple[Callable[[OnnxGraph], bool], ...] = (
    fold_constants,
    remove_passthrough,
    OnnxGraph.drop_dead,
    fold_pad_into_conv,
    gemm_to_linear,
    fold_batchnorm,
    fold_constant_affine,
    fuse_self_gating,
    fuse_channel_shuffle,
    fuse_nhwc_flatten,
    nhwc_global_mean,
)


def run_passes(g: OnnxGraph, passes=PASSES, max_rounds: int = 50) -> None:
    """Apply ``passes`` in order, again and again, until a whole round changes nothing."""
    for _ in range(max_rounds):
        changed = False
        for rewrite in passes:
            changed |= bool(rewrite(g))
        if not changed:
            return
