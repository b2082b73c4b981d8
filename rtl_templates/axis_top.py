"""AxiStreamTop: the accelerator's top level, a core's beat streams as flat AXI4-Stream ports.

Inside the accelerator no ``last`` flag travels between PEs (docs/streams.md); this wrapper adds
``m_axis_tlast`` at the boundary by counting output beats, so a DMA engine sees frame ends.
The Verilog top is emitted as module ``hwgen_top`` with clock ``clk`` and reset ``rst``
(:func:`to_verilog`), the names :mod:`sim.cosim` and its C++ driver expect.
"""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import (ClockDomain, ClockSignal, Const, DomainRenamer, Module,
                          ResetSignal, Signal, unsigned)
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AxiStreamTop", "TOP_NAME", "tdata_width", "to_verilog"]

#: Verilog module name of every generated accelerator top level.
TOP_NAME = "hwgen_top"


def tdata_width(bits: int, lanes: int) -> int:
    """AXI4-Stream ``tdata`` width for ``lanes`` x ``bits``: rounded up to whole bytes."""
    return -(-bits * lanes // 8) * 8


def _beat_layout(core: wiring.Component, name: str) -> data.ArrayLayout:
    member = core.signature.members.get(name)
    if member is None or not member.is_signature or \
            not {"payload", "valid", "ready"} <= set(member.signature.members):
        raise TypeError(f"core must have a stream member {name!r}, not {member!r}")
    layout = member.signature.members["payload"].shape
    if not isinstance(layout, data.ArrayLayout) or not layout.elem_shape.signed:
        raise TypeError(f"payload of {name!r} must be an ArrayLayout of signed lanes, "
                        f"not {layout!r}")
    return layout


class AxiStreamTop(wiring.Component):
    """A core with stream ports ``i`` and ``o`` behind AXI4-Stream slave and master ports.

    Valid and ready pass through combinationally, so the top adds no cycle: the core's
    ``latency()`` and ``cycles_per_frame()`` are the top's. The core's reset is ``rst``
    through one register (``tready`` and ``tvalid`` stay low while it is held): a reset that
    fans out to every flip-flop of a network should leave a flip-flop, not a pin, and in
    Verilator logic fed by a top-level input is evaluated again on every ``eval()``, which cost
    EfficientNet-B0's simulation half its time.

    Parameters
    ----------
    core : wiring.Component
        Has ``i: In(stream)`` and ``o: Out(stream)``, payloads
        ``data.ArrayLayout(signed(bits), lanes)``. Any other member is an AXI4 read master
        ``ddr<k>`` (DDR-streamed weights, :mod:`rtl_templates.axi4_reader`), which becomes
        ports ``m_axi_ddr<k>_<signal>``, or a plain port (``ddr<k>_base``), kept by name.
    in_beats_per_frame, out_beats_per_frame : int
        Beats of one input / output frame. The output count places ``m_axis_tlast``; the input
        count is kept for drivers (``s_axis_tlast`` is not checked).

    Attributes
    ----------
    s_axis_tdata : In(unsigned(tdata_width(in bits, in lanes)))
        Lane ``k`` in bits ``[k*bits, (k+1)*bits)``; padding bits above the lanes are ignored.
    s_axis_tvalid : In(1)
    s_axis_tready : Out(1)
    s_axis_tlast : In(1)
        Accepted and ignored: the core counts positions itself, so a frame boundary on the
        input carries no information the core needs.
    m_axis_tdata : Out(unsigned(tdata_width(out bits, out lanes)))
        Lane ``k`` in bits ``[k*bits, (k+1)*bits)``, two's complement; padding bits are zero
        (a zero-extended word is what a byte-wise DMA buffer naturally holds, and a reader
        sign-extends each lane by its own width anyway).
    m_axis_tvalid : Out(1)
    m_axis_tready : In(1)
    m_axis_tlast : Out(1)
        High on the last beat of every output frame.

    Raises
    ------
    TypeError
        If ``core`` lacks the streams, or a beat count is not an int.
    ValueError
        If a beat count is not positive.
    """

    def __init__(self, core: wiring.Component, *, in_beats_per_frame: int,
                 out_beats_per_frame: int):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be an amaranth wiring.Component, not {core!r}")
        for name, value in (("in_beats_per_frame", in_beats_per_frame),
                            ("out_beats_per_frame", out_beats_per_frame)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be positive, not {value!r}")
        self.core = core
        self.in_layout = _beat_layout(core, "i")
        self.out_layout = _beat_layout(core, "o")
        self.in_beats_per_frame = in_beats_per_frame
        self.out_beats_per_frame = out_beats_per_frame
        #: (top port, core member, signal or None) of every port passed through.
        self.passed = []
        members = {}
        for name, member in core.signature.members.items():
            if name in ("i", "o"):
                continue
            if member.is_signature:
                for sig_name, sub in member.signature.members.items():
                    top = f"m_axi_{name}_{sig_name}"
                    flow = sub.flow if member.flow is Out else sub.flow.flip()
                    members[top] = flow(sub.shape)
                    self.passed.append((top, name, sig_name))
            else:
                members[name] = member
                self.passed.append((name, name, None))
        super().__init__({
            "s_axis_tdata": In(self.in_tdata_width),
            "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1),
            "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.out_tdata_width),
            "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1),
            "m_axis_tlast": Out(1),
            **members,
        })

    @property
    def in_bits(self) -> int:
        return self.in_layout.elem_shape.width

    @property
    def in_lanes(self) -> int:
        return self.in_layout.length

    @property
    def out_bits(self) -> int:
        return self.out_layout.elem_shape.width

    @property
    def out_lanes(self) -> int:
        return self.out_layout.length

    @property
    def in_tdata_width(self) -> int:
        return tdata_width(self.in_bits, self.in_lanes)

    @property
    def out_tdata_width(self) -> int:
        return tdata_width(self.out_bits, self.out_lanes)

    def elaborate(self, platform):
        m = Module()
        core = self.core
        m.domains.core = ClockDomain("core", local=True)
        core_rst = Signal(init=1, reset_less=True)
        m.d.sync += core_rst.eq(ResetSignal("sync"))
        m.d.comb += [ClockSignal("core").eq(ClockSignal("sync")),
                     ResetSignal("core").eq(core_rst)]
        m.submodules.core = DomainRenamer("core")(core)
        running = ~core_rst
        in_width = self.in_bits * self.in_lanes
        out_width = self.out_bits * self.out_lanes
        m.d.comb += [
            core.i.payload.eq(self.s_axis_tdata[:in_width]),
            core.i.valid.eq(self.s_axis_tvalid & running),
            self.s_axis_tready.eq(core.i.ready & running),
            self.m_axis_tdata.eq(core.o.payload.as_value()[:out_width]),  # zero-extends
            self.m_axis_tvalid.eq(core.o.valid & running),
            core.o.ready.eq(self.m_axis_tready & running),
        ]
        for top, name, sig_name in self.passed:
            inner = getattr(core, name) if sig_name is None else getattr(getattr(core, name),
                                                                         sig_name)
            outer = getattr(self, top)
            if self.signature.members[top].flow is Out:
                m.d.comb += outer.eq(inner)
            else:
                m.d.comb += inner.eq(outer)
        last_index = self.out_beats_per_frame - 1
        position = Signal(unsigned(max(1, last_index.bit_length())))
        m.d.comb += self.m_axis_tlast.eq(position == Const(last_index, position.shape()))
        with m.If(self.m_axis_tvalid & self.m_axis_tready):
            with m.If(self.m_axis_tlast):
                m.d.sync += position.eq(0)
            with m.Else():
                m.d.sync += position.eq(position + 1)
        return m


def to_verilog(top: AxiStreamTop) -> str:
    """Verilog of ``top`` as module :data:`TOP_NAME` with ports ``clk``, ``rst`` and the AXI
    ports; byte-identical for identical designs (no source paths), so it can key a cache."""
    if not isinstance(top, AxiStreamTop):
        raise TypeError(f"top must be an AxiStreamTop, not {top!r}")
    return verilog.convert(top, name=TOP_NAME, emit_src=False)
