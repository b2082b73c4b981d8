"""Lowering: a quantized model graph to a hardware graph of streaming stages.

Small passes, each matching one kind of node (or pattern) and emitting stages:

* :func:`lower_node` maps one model node to one stage (conv, depthwise, fully connected, pools,
  add, concat, shuffle, activation tables, the SE multiply), or to nothing when the node moves
  no data in a stream (a ReLU fused into its producer's clamp, a flatten of a 1x1 map);
* :func:`match_split` turns the two :class:`~dataflows.layers.ChannelSplit` consumers of one
  tensor (ShuffleNet V2) into one ``Split`` stage;
* :func:`add_forks` gives every tensor with several consumers a ``Fork`` stage.

A Fire module, an inverted residual or an SE block is lowered node by node into the same
stages and streams the :mod:`rtl_templates` composites wire (see ``rtl_templates.fire_module``),
and its fork/join FIFOs are sized by :mod:`hwgen.fifo_sizing`; reports name every stage by its
model layer (``fire2/expand3x3``).
"""

from __future__ import annotations

import numpy as np

from dataflows import layers as L
from dataflows import numerics as nm
from dataflows import quantize as Q

from .hwgraph import HwGraph, Op, Stage

__all__ = ["LoweringError", "hardware_problem", "lower", "unsupported_nodes", "SOURCE"]

#: The value of the accelerator's input stream.
SOURCE = ("<input>", "o")


class LoweringError(ValueError):
    """A model node the hardware library cannot implement (the message names node and op)."""


def _unsupported(name: str, layer, why: str) -> LoweringError:
    return LoweringError(f"node {name!r} ({type(layer).__name__}): {why}")


def dense_weights(layer: L.Conv2d, weight: np.ndarray, in_channels: int) -> np.ndarray:
    """OHWI weights of a grouped (not depthwise) conv as a dense conv with zeros off the
    group blocks, so a matrix-vector unit computes it (multipliers by zero cost DSPs; the
    report's MAC efficiency counts only the model's own MACs, so the waste shows)."""
    g = layer.groups
    if g == 1:
        return weight
    o, kh, kw, ig = weight.shape
    og = o // g
    dense = np.zeros((o, kh, kw, in_channels), dtype=weight.dtype)
    for k in range(g):
        dense[k * og:(k + 1) * og, :, :, k * ig:(k + 1) * ig] = weight[k * og:(k + 1) * og]
    return dense


_WINDOWS = (1, 3, 5, 7)
#: Layer kinds the hardware library implements (each checked further by :func:`hardware_problem`).
_LOWERABLE = (L.Conv2d, L.Linear, L.MaxPool, L.AvgPool, L.GlobalAvgPool, L.Add, L.Concat,
              L.ChannelShuffle, L.Mul, L.Flatten, L.Activation, L.ChannelSplit)


def _square_window(kernel) -> bool:
    return kernel[0] == kernel[1] and kernel[0] in _WINDOWS


def hardware_problem(model, name: str) -> str | None:
    """Why no processing element can implement node ``name`` of ``model`` as it stands, or
    ``None``. Needs only the graph and its shapes (no weights, no quantization), so ``hwgen
    summary`` can say what ``hwgen build`` would refuse."""
    layer = model.layer(name)
    ins = model.input_shapes(name)
    if not isinstance(layer, _LOWERABLE):
        return "no hardware for this op"
    if isinstance(layer, L.Conv2d):
        kind = "depthwise kernel" if layer.is_depthwise else "kernel"
        if not _square_window(layer.kernel):
            return f"{kind} {layer.kernel} is not square 1/3/5/7"
        if not layer.is_depthwise and (layer.stride[0] != layer.stride[1]
                                       or layer.stride[0] not in (1, 2)):
            return f"stride {layer.stride} is not 1 or 2 in both axes"
    if isinstance(layer, L.Linear) and (ins[0].h != 1 or ins[0].w != 1):
        return f"a fully connected layer needs a 1x1 input, not {tuple(ins[0])}"
    if isinstance(layer, (L.MaxPool, L.AvgPool)) and (
            not _square_window(layer.kernel) or layer.stride[0] != layer.stride[1]
            or layer.stride[0] not in (1, 2)):
        return (f"pool {layer.kernel} stride {layer.stride} is not a square 1/3/5/7 window "
                "with stride 1 or 2")
    if isinstance(layer, L.Concat) and len(ins) != 2:
        return f"concat of {len(ins)} inputs (the Concat PE joins 2)"
    if isinstance(layer, L.Flatten) and (ins[0].h != 1 or ins[0].w != 1):
        return "flatten of a map larger than 1x1 (stream order would change)"
    return None


def unsupported_nodes(model) -> list[str]:
    """One line per node of ``model`` that :func:`lower` would refuse, naming node and op."""
    return [f"node {name!r} ({type(model.layer(name)).__name__}): {why}"
            for name in model.topological_order() if name != model.input
            for why in [hardware_problem(model, name)] if why]


def lower_node(q: Q.QuantizedModel, name: str) -> Stage | None:
    """The stage computing model node ``name``, or ``None`` if it aliases its input."""
    model = q.model
    layer = model.layer(name)
    params = q.params.get(name)
    ins = model.input_shapes(name)
    out = model.out_shape(name)
    bits = q.bits[name]
    in_bits = [q.bits[i] for i in model.inputs_of(name)]
    why = hardware_problem(model, name)
    if why:
        raise _unsupported(name, layer, why)

    def stage(op, **kw):
        if op in (Op.CONV, Op.FC, Op.DEPTHWISE):
            kw["wbits"] = q.config.wbits
        return Stage(name=name, op=op, in_shapes=list(ins), out_shape=out, bits=bits,
                     in_bits=in_bits, layer=name, spec=layer, qparams=params, **kw)

    if isinstance(layer, L.Conv2d):
        if layer.is_depthwise:
            return stage(Op.DEPTHWISE)
        if ins[0].h == 1 and ins[0].w == 1 and layer.kernel == (1, 1):
            return stage(Op.FC)
        return stage(Op.CONV)
    if isinstance(layer, L.Linear):
        return stage(Op.FC)
    if isinstance(layer, (L.MaxPool, L.AvgPool)):
        return stage(Op.MAXPOOL if isinstance(layer, L.MaxPool) else Op.AVGPOOL)
    if isinstance(layer, L.GlobalAvgPool):
        return stage(Op.GLOBAL_AVGPOOL)
    if isinstance(layer, L.Add):
        return stage(Op.ADD)
    if isinstance(layer, L.Concat):
        return stage(Op.CONCAT)
    if isinstance(layer, L.ChannelShuffle):
        return stage(Op.SHUFFLE)
    if isinstance(layer, L.Mul):
        return stage(Op.SCALE)
    if isinstance(layer, L.Flatten):
        return None
    if isinstance(layer, L.Activation):
        if isinstance(params, Q.QFused):
            return None
        if isinstance(params, Q.QLut):
            return stage(Op.LUT, lut_table=np.asarray(params.table))
        if isinstance(params, Q.QClamp):
            lo, hi = nm.qrange(bits)
            table = np.clip(np.arange(lo, hi + 1), params.lo, params.hi)
            return stage(Op.LUT, lut_table=table)
    raise _unsupported(name, layer, "no hardware for this op")


def match_split(q: Q.QuantizedModel, value: str, consumers: list[str]) -> dict[str, str] | None:
    """If ``consumers`` of ``value`` are ChannelSplit nodes covering ``[0, k)`` and
    ``[k, C)``, map each to its Split output port; else ``None``."""
    model = q.model
    splits = [c for c in consumers if isinstance(model.layer(c), L.ChannelSplit)]
    if not splits:
        return None
    channels = model.out_shape(value).c
    ranges = sorted((model.layer(c).start, model.layer(c).stop, c) for c in splits)
    if len(splits) != 2 or len(consumers) != 2 or ranges[0][0] != 0 \
            or ranges[0][1] != ranges[1][0] or ranges[1][1] != channels:
        bad = ranges[0][2]
        raise LoweringError(f"node {bad!r} (ChannelSplit): only a split of all {channels} "
                            f"channels of {value!r} into two ranges is supported")
    return {ranges[0][2]: "o0", ranges[1][2]: "o1"}


def lower(q: Q.QuantizedModel) -> HwGraph:
    """The hardware graph of quantized model ``q`` (folding left at 1; see :mod:`hwgen.fold`)."""
    model = q.model
    hw = HwGraph(model.name, model.input_shape, q.bits[model.input])
    value_of: dict[str, tuple[str, str]] = {model.input: SOURCE}
    # Per stage, the value on each input port; streams are made once forks are known.
    sources: dict[str, dict[str, object]] = {}
    order = model.topological_order()
    consumers: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for i in model.inputs_of(n):
            consumers[i].append(n)

    for name in order:
        if name == model.input:
            continue
        layer = model.layer(name)
        if isinstance(layer, L.ChannelSplit):
            src = model.inputs_of(name)[0]
            if name in value_of:
                continue
            ports = match_split(q, src, consumers[src])
            c0 = model.out_shape(next(c for c, p in ports.items() if p == "o0"))
            split = hw.add(Stage(
                name=f"{src}/split", op=Op.SPLIT, in_shapes=[model.out_shape(src)],
                out_shape=c0, bits=q.bits[src], in_bits=[q.bits[src]], outputs=2,
                split_channels=(c0.c, model.out_shape(src).c - c0.c)))
            for c, p in ports.items():
                value_of[c] = (split.name, p)
            _wire(sources, value_of, [src], split)
            continue
        st = lower_node(q, name)
        if st is None:
            value_of[name] = value_of[model.inputs_of(name)[0]]
            continue
        hw.add(st)
        value_of[name] = (st.name, "o")
        _wire(sources, value_of, model.inputs_of(name), st)
    hw.output = value_of[model.output]
    if hw.output == SOURCE:
        raise LoweringError(f"model {model.name!r} computes nothing in hardware")
    add_forks(hw, sources)
    return hw


def _wire(sources: dict, value_of, inputs: list[str], st: Stage) -> None:
    """Record the values into ``st``'s ports; fan-out is resolved by :func:`add_forks`."""
    for value, port in zip(inputs, st.in_ports):
        sources.setdefault(st.name, {})[port] = value_of[value]


def add_forks(hw: HwGraph, sources: dict[str, dict[str, object]]) -> None:
    """Connect every stage to its ``sources`` (per stage, the value on each input port), with
    a Fork stage where a value feeds several inputs (or feeds the output and a stage)."""
    readers: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for st in hw.stages():
        for port, src in sources[st.name].items():
            readers.setdefault(src, []).append((st.name, port))
    readers.setdefault(hw.output, []).append(("<output>", "o"))
    for src, dsts in readers.items():
        if len(dsts) > 1:
            shape, bits = _value_shape(hw, src)
            fork = hw.add(Stage(name=f"{_value_name(hw, src)}/fork", op=Op.FORK,
                                in_shapes=[shape], out_shape=shape, bits=bits, in_bits=[bits],
                                outputs=len(dsts)))
            _connect(hw, src, (fork.name, "i"))
            for k, dst in enumerate(dsts):
                _connect(hw, (fork.name, f"o{k}"), dst)
        else:
            _connect(hw, src, dsts[0])


def _value_name(hw: HwGraph, src) -> str:
    if src == SOURCE:
        return "input"
    name, port = src
    return name if port == "o" else f"{name}/{port}"


def _value_shape(hw: HwGraph, src):
    if src == SOURCE:
        return hw.input_shape, hw.input_bits
    st = hw.stage(src[0])
    if st.op is Op.SPLIT:
        c = st.split_channels[0 if src[1] == "o0" else 1]
        return st.out_shape._replace(c=c), st.bits
    return st.out_shape, st.bits


def _connect(hw: HwGraph, src, dst) -> None:
    if dst == ("<output>", "o"):
        hw.output = src
    elif src == SOURCE:
        hw.input = dst
    else:
        hw.connect(src[0], src[1], dst[0], dst[1])
