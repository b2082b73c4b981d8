"""The whole accelerator as Amaranth components: one block per stage, wired by the graph.

:class:`StageBlock` holds one stage's PEs (``window`` then ``mvu`` …) behind the stage's
stream ports, so the Verilog has one module per layer named after it. :class:`Accelerator`
instantiates the blocks as Amaranth submodules (for simulation and small designs);
:class:`AcceleratorShell` instantiates them as named Verilog modules, which lets
:mod:`hwgen.emit` convert the blocks separately and in parallel.
"""

from __future__ import annotations

import re

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl_templates.pe import beat_signature
from rtl_templates.weight_load import WeightLoader

from .hwgraph import HwGraph, Stage
from .units import load_target, reads_ddr, stage_units

__all__ = ["Accelerator", "AcceleratorShell", "StageBlock", "verilog_name", "DDR_MEMBERS"]

#: The ports of a stage that reads its weights from DDR: the AXI4 read channels and the
#: region's base address.
DDR_MEMBERS = ("ddr", "ddr_base")


def verilog_name(stage_name: str) -> str:
    """A readable Verilog identifier for a stage (``fire2/expand3x3`` -> ``fire2_expand3x3``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", stage_name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"s_{ident}"


class StageBlock(wiring.Component):
    """One stage's PEs chained, with the stage's input and output streams as ports."""

    def __init__(self, stage: Stage):
        if not isinstance(stage, Stage):
            raise TypeError(f"stage must be a Stage, not {stage!r}")
        self.stage = stage
        self.units = stage_units(stage)
        first, last = self.units[0][1], self.units[-1][1]
        members = {p: first.signature.members[p] for p in stage.in_ports}
        members.update({p: last.signature.members[p] for p in stage.out_ports})
        #: The unit whose weights are loaded (``load`` port), if any.
        self.loaded = next((u for _, u in self.units if "load" in u.signature.members), None)
        if self.loaded is not None:
            members["load"] = self.loaded.signature.members["load"]
        #: The unit that reads its weights from DDR (``ddr`` and ``ddr_base`` ports), if any.
        self.streamed = next((u for _, u in self.units if "ddr" in u.signature.members), None)
        if self.streamed is not None:
            for name in DDR_MEMBERS:
                members[name] = self.streamed.signature.members[name]
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for suffix, unit in self.units:
            m.submodules[suffix] = unit
        for (_, a), (_, b) in zip(self.units, self.units[1:]):
            wiring.connect(m, a.o, b.i)
        first, last = self.units[0][1], self.units[-1][1]
        for p in self.stage.in_ports:
            wiring.connect(m, wiring.flipped(getattr(self, p)), getattr(first, p))
        for p in self.stage.out_ports:
            wiring.connect(m, getattr(last, p), wiring.flipped(getattr(self, p)))
        if self.loaded is not None:
            wiring.connect(m, wiring.flipped(self.load), self.loaded.load)
        if self.streamed is not None:
            wiring.connect(m, self.streamed.ddr, wiring.flipped(self.ddr))
            m.d.comb += self.streamed.ddr_base.eq(self.ddr_base)
        return m


def _check_names(hw: HwGraph) -> None:
    names = [verilog_name(s.name) for s in hw.stages()]
    if len(set(names)) != len(names):
        raise ValueError("two stages map to the same Verilog name")


class _Top(wiring.Component):
    def __init__(self, hw: HwGraph):
        if not isinstance(hw, HwGraph):
            raise TypeError(f"hw must be a HwGraph, not {hw!r}")
        _check_names(hw)
        self.hw = hw
        first, port = hw.input
        last, _ = hw.output
        self.in_lanes = hw.stage(first).in_lanes(port)
        self.out_lanes = hw.stage(last).out_lanes
        self.out_bits = hw.stage(last).bits
        #: The weight memories loaded after reset, in load order (docs/streams.md).
        self.load_targets = [t for t in map(load_target, hw.stages()) if t is not None]
        #: The stages reading their weights from DDR, in order: port ``ddr<k>`` is the k-th's.
        self.ddr_stages = [st.name for st in hw.stages() if reads_ddr(st)]
        members = {"i": In(beat_signature(hw.input_bits, self.in_lanes)),
                   "o": Out(beat_signature(self.out_bits, self.out_lanes))}
        for k, name in enumerate(self.ddr_stages):
            unit = stage_units(hw.stage(name))[-1][1]
            members[f"ddr{k}"] = unit.signature.members["ddr"]
            members[f"ddr{k}_base"] = unit.signature.members["ddr_base"]
        super().__init__(members)

    def _loader(self, m: Module):
        """The input stream as the first stage should see it: through a :class:`WeightLoader`
        when weights are loaded (returned with it), else ``self.i`` itself."""
        if not self.load_targets:
            return wiring.flipped(self.i), None
        m.submodules.weight_loader = loader = WeightLoader(self.hw.input_bits, self.in_lanes,
                                                           self.load_targets)
        wiring.connect(m, wiring.flipped(self.i), loader.i)
        return loader.o, loader

    def _unused_outputs(self):
        """Stage outputs nothing reads (a truncated graph's dropped branches): drained."""
        hw = self.hw
        used = {hw.output} | {(src, sport) for src, sport, _, _ in hw.edges()}
        return [(st.name, p) for st in hw.stages() for p in st.out_ports
                if (st.name, p) not in used]


class Accelerator(_Top):
    """Stream ``i`` (the input image, NHWC, the first stage's lanes) to stream ``o`` (the model
    output, the last stage's lanes), through the stages of a folded :class:`HwGraph`."""

    def elaborate(self, platform):
        m = Module()
        hw = self.hw
        blocks = {}
        for st in hw.stages():
            blocks[st.name] = m.submodules[verilog_name(st.name)] = StageBlock(st)
        for src, sport, dst, dport in hw.edges():
            wiring.connect(m, getattr(blocks[src], sport), getattr(blocks[dst], dport))
        for name, port in self._unused_outputs():
            m.d.comb += getattr(blocks[name], port).ready.eq(1)
        (first, port), (last, out_port) = hw.input, hw.output
        source, loader = self._loader(m)
        wiring.connect(m, source, getattr(blocks[first], port))
        for k, target in enumerate(self.load_targets):
            wiring.connect(m, getattr(loader, f"load{k}"), blocks[target.name].load)
        for k, name in enumerate(self.ddr_stages):
            wiring.connect(m, blocks[name].ddr, wiring.flipped(getattr(self, f"ddr{k}")))
            m.d.comb += blocks[name].ddr_base.eq(getattr(self, f"ddr{k}_base"))
        wiring.connect(m, getattr(blocks[last], out_port), wiring.flipped(self.o))
        return m


def _flat(sig: wiring.Signature):
    """``(name, (attribute, flow))`` of a signature's plain ports (the AXI channels' signals)."""
    return [(name, (name, member.flow)) for name, member in sig.members.items()]


class AcceleratorShell(_Top):
    """The :class:`Accelerator`'s wiring with every stage an instance of the Verilog module
    ``verilog_name(stage)`` (converted separately from its :class:`StageBlock`).

    Parameters
    ----------
    hw : HwGraph
    clocked : dict[str, tuple[bool, bool]]
        Per stage, whether its module has a ``clk`` and a ``rst`` port (a purely
        combinational block has neither).
    """

    def __init__(self, hw: HwGraph, clocked: dict[str, tuple[bool, bool]]):
        self.clocked = dict(clocked)
        super().__init__(hw)

    def elaborate(self, platform):
        m = Module()
        hw = self.hw
        wires = {}
        source, loader = self._loader(m)
        loads = {t.name: getattr(loader, f"load{k}") for k, t in enumerate(self.load_targets)}
        for st in hw.stages():
            block = StageBlock(st)
            ports = {}
            for p in st.in_ports + st.out_ports:
                member = block.signature.members[p]
                width = member.signature.members["payload"].shape.size
                vn = verilog_name(st.name)
                w = wires[(st.name, p)] = {
                    "payload": Signal(width, name=f"{vn}__{p}__payload"),
                    "valid": Signal(name=f"{vn}__{p}__valid"),
                    "ready": Signal(name=f"{vn}__{p}__ready")}
                into = p in st.in_ports
                ports[f"{'i' if into else 'o'}_{p}__payload"] = w["payload"]
                ports[f"{'i' if into else 'o'}_{p}__valid"] = w["valid"]
                ports[f"{'o' if into else 'i'}_{p}__ready"] = w["ready"]
            if st.name in loads:
                ports["i_load__valid"] = loads[st.name].valid
                ports["i_load__data"] = loads[st.name].data
            if st.name in self.ddr_stages:
                k = self.ddr_stages.index(st.name)
                bus = getattr(self, f"ddr{k}")
                for member, (path, flow) in _flat(block.signature.members["ddr"].signature):
                    ports[f"{'o' if flow is wiring.Out else 'i'}_ddr__{member}"] = getattr(bus, path)
                ports["i_ddr_base"] = getattr(self, f"ddr{k}_base")
            has_clk, has_rst = self.clocked[st.name]
            if has_clk:
                ports["i_clk"] = ClockSignal("sync")
            if has_rst:
                ports["i_rst"] = ResetSignal("sync")
            m.submodules[verilog_name(st.name)] = Instance(verilog_name(st.name), **ports)
        for src, sport, dst, dport in hw.edges():
            a, b = wires[(src, sport)], wires[(dst, dport)]
            m.d.comb += [b["payload"].eq(a["payload"]), b["valid"].eq(a["valid"]),
                         a["ready"].eq(b["ready"])]
        for key in self._unused_outputs():
            m.d.comb += wires[key]["ready"].eq(1)
        first, last = wires[hw.input], wires[hw.output]
        m.d.comb += [first["payload"].eq(source.payload.as_value()),
                     first["valid"].eq(source.valid), source.ready.eq(first["ready"]),
                     self.o.payload.eq(last["payload"]), self.o.valid.eq(last["valid"]),
                     last["ready"].eq(self.o.ready)]
        return m
