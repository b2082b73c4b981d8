"""Block-design TCL pieces the Zynq and PCIe shells share: the accelerator cell and the
stream paths between a DMA engine's byte width and the accelerator's ``tdata``.
"""

from __future__ import annotations

__all__ = ["hwgen_cell", "stream_path"]


def hwgen_cell(name: str, clock_mhz: float) -> str:
    """The generated top as an RTL module reference, its clock tied to both stream ports.

    Vivado infers the ``s_axis``/``m_axis`` interfaces and the ``clk``/``rst`` pins from the
    port names; the properties say what it cannot infer: ``rst`` is active high, the streams
    run on ``clk`` and at which frequency.
    """
    return "\n".join([
        f"create_bd_cell -type module -reference hwgen_top {name}",
        f"set_property CONFIG.POLARITY ACTIVE_HIGH [get_bd_pins {name}/rst]",
        f"set_property CONFIG.ASSOCIATED_BUSIF {{s_axis:m_axis}} [get_bd_pins {name}/clk]",
        f"set_property CONFIG.FREQ_HZ {round(clock_mhz * 1e6)} [get_bd_pins {name}/clk]",
    ]) + "\n"


def stream_path(source: str, sink: str, source_bytes: int, sink_bytes: int, converter: str,
                clock: str, resetn: str) -> str:
    """Connect stream interface ``source`` to ``sink``, through a width converter if needed.

    ``axis_dwidth_converter`` repacks bytes, so the byte stream a DMA engine moves is the
    accelerator's beats back to back (``frames.beats_to_bytes``) whatever the two widths; the
    converter produces ``tkeep`` on its wide side so a frame may end inside a word.
    """
    if source_bytes == sink_bytes:
        return f"connect_bd_intf_net [get_bd_intf_pins {source}] [get_bd_intf_pins {sink}]\n"
    return "\n".join([
        f"create_bd_cell -type ip -vlnv xilinx.com:ip:axis_dwidth_converter {converter}",
        f"set_property -dict [list CONFIG.S_TDATA_NUM_BYTES {{{source_bytes}}} "
        f"CONFIG.M_TDATA_NUM_BYTES {{{sink_bytes}}} CONFIG.HAS_TLAST {{1}} "
        f"CONFIG.HAS_TKEEP {{{int(source_bytes > sink_bytes)}}} "
        f"CONFIG.HAS_MI_TKEEP {{{int(sink_bytes > source_bytes)}}}] [get_bd_cells {converter}]",
        f"connect_bd_intf_net [get_bd_intf_pins {source}] [get_bd_intf_pins {converter}/S_AXIS]",
        f"connect_bd_intf_net [get_bd_intf_pins {converter}/M_AXIS] [get_bd_intf_pins {sink}]",
        f"connect_bd_net [get_bd_pins {clock}] [get_bd_pins {converter}/aclk]",
        f"connect_bd_net [get_bd_pins {resetn}] [get_bd_pins {converter}/aresetn]",
    ]) + "\n"
