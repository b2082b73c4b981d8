"""The whole accelerator as one Amaranth component: every stage's PEs, wired by the graph."""

from __future__ import annotations

import re

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl_templates.pe import beat_signature

from .hwgraph import HwGraph
from .units import stage_units

__all__ = ["Accelerator", "verilog_name"]


def verilog_name(stage_name: str) -> str:
    """A readable Verilog identifier for a stage (``fire2/expand3x3`` -> ``fire2_expand3x3``)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", stage_name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"s_{ident}"


class Accelerator(wiring.Component):
    """Stream ``i`` (the input image, NHWC, the first stage's lanes) to stream ``o`` (the model
    output, the last stage's lanes), through the stages of a folded :class:`HwGraph`.

    Each stage is a submodule named after its layer, holding its PEs (``window``, ``mvu`` …).
    """

    def __init__(self, hw: HwGraph):
        if not isinstance(hw, HwGraph):
            raise TypeError(f"hw must be a HwGraph, not {hw!r}")
        self.hw = hw
        first, port = hw.input
        last, out_port = hw.output
        self.in_lanes = hw.stage(first).in_lanes(port)
        self.out_lanes = hw.stage(last).out_lanes
        self.out_bits = hw.stage(last).bits
        names = [verilog_name(s.name) for s in hw.stages()]
        if len(set(names)) != len(names):
            raise ValueError("two stages map to the same Verilog name")
        super().__init__({"i": In(beat_signature(hw.input_bits, self.in_lanes)),
                          "o": Out(beat_signature(self.out_bits, self.out_lanes))})

    def elaborate(self, platform):
        m = Module()
        hw = self.hw
        ends = {}
        for st in hw.stages():
            units = stage_units(st)
            sub = Module()
            for suffix, unit in units:
                sub.submodules[suffix] = unit
            for (_, a), (_, b) in zip(units, units[1:]):
                wiring.connect(sub, a.o, b.i)
            m.submodules[verilog_name(st.name)] = sub
            ends[st.name] = (units[0][1], units[-1][1])
        used = {(hw.output)}
        for src, sport, dst, dport in hw.edges():
            wiring.connect(m, getattr(ends[src][1], sport), getattr(ends[dst][0], dport))
            used.add((src, sport))
        for st in hw.stages():   # outputs a truncated graph dropped: drain them
            for port in st.out_ports:
                if (st.name, port) not in used:
                    m.d.comb += getattr(ends[st.name][1], port).ready.eq(1)
        first, port = hw.input
        last, out_port = hw.output
        wiring.connect(m, wiring.flipped(self.i), getattr(ends[first][0], port))
        wiring.connect(m, getattr(ends[last][1], out_port), wiring.flipped(self.o))
        return m
