"""VC707 PCIe shell: XDMA in AXI4-Stream mode (Gen2 x8), H2C into ``s_axis``, C2H from
``m_axis``, the accelerator clocked by a clocking wizard from the 200 MHz system clock.

Amaranth's Vivado flow does most of the work here. :class:`Vc707Shell` is an Amaranth top
that takes the board's pins from :class:`~boards.xilinx.platforms.VC707Platform` (system
clock, CPU reset, the PCIe edge connector's reference clock, PERST# and eight lanes) and hands
them to the block design's wrapper; ``platform.prepare`` then writes the top's Verilog, the
XDC (a LOC and I/O standard per pin, ``create_clock`` for the 200 and 100 MHz inputs), the
project TCL (create_project, synth, place, route, write_bitstream) and the build script.
Ours, through the template's overrides: ``script_after_read`` sources ``shell_bd.tcl``
(the block design: XDMA, reference-clock buffer, clocking wizard, resets, width and clock
converters, ``hwgen_top`` as a module reference), ``add_constraints`` places the reference
clock's IBUFDS_GTE2 and cuts PERST#'s timing, ``script_before_bitstream`` writes the reports.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.hdl import Elaboratable, Instance, Module

from ..design import BoardDesign, BoardProject
from .block_design import hwgen_cell, stream_path
from .platforms import VC707Platform
from .project import REPORTS_DIR, VIVADO_VERSION, copy_host, reports_tcl, stage_sources, write_text
from .vc707_uart import UART_DIR, Vc707UartProject

__all__ = ["Vc707Shell", "XdmaShellProject", "TOP_NAME"]

#: The Amaranth top's module name (and the stem of every file Amaranth writes).
TOP_NAME = "vc707_shell"
_BD_SCRIPT = "shell_bd.tcl"
# XDMA's user side for Gen2 x8: 128 bits at 250 MHz moves the link's 4 GB/s.
_XDMA_BYTES = 16


class Vc707Shell(Elaboratable):
    """The pins-to-wrapper top: every board pin the shell uses, passed to ``shell_wrapper``.

    Pins are requested raw (``dir="-"``): their buffers are in the block design (the
    clocking wizard's IBUFDS, the IBUFDS_GTE2, the transceivers).
    """

    def elaborate(self, platform):
        m = Module()
        clk = platform.request("clk200", 0, dir="-")
        rst = platform.request("rst", 0, dir="-")
        pcie = platform.request("pcie_x8", 0, dir="-")
        m.submodules.shell = Instance(
            "shell_wrapper",
            i_sys_clk_clk_p=clk.p, i_sys_clk_clk_n=clk.n, i_cpu_reset=rst.io,
            i_pcie_refclk_clk_p=pcie.clk.p, i_pcie_refclk_clk_n=pcie.clk.n,
            i_pcie_perst_n=pcie.perst_n.io,
            i_pcie_mgt_rxp=pcie.rx.p, i_pcie_mgt_rxn=pcie.rx.n,
            o_pcie_mgt_txp=pcie.tx.p, o_pcie_mgt_txn=pcie.tx.n)
        return m


class XdmaShellProject:
    """Writes the VC707 XDMA shell project.

    Parameters
    ----------
    design : BoardDesign
        The built accelerator, for the vc707.

    Raises
    ------
    ValueError
        If the design is not for the vc707.
    """

    def __init__(self, design: BoardDesign):
        if design.board.name != "vc707":
            raise ValueError(f"the XDMA shell is written for the vc707, not {design.board.name!r}")
        self.design = design

    def _block_design(self) -> str:
        d = self.design
        xdma_clk, xdma_rstn = "xdma/axi_aclk", "xdma/axi_aresetn"
        core_clk, core_rstn = "clk_wiz/clk_out1", "rst_core/peripheral_aresetn"
        xdma = {"mode_selection": "Advanced", "pl_link_cap_max_link_width": "X8",
                "pl_link_cap_max_link_speed": "5.0_GT/s", "axi_data_width": "128_bit",
                "axisten_freq": "250", "xdma_axi_intf_mm": "AXI_Stream",
                "xdma_rnum_chnl": "1", "xdma_wnum_chnl": "1", "ref_clk_freq": "100_MHz"}
        clk_wiz = {"PRIM_SOURCE": "Differential_clock_capable_pin", "PRIM_IN_FREQ": "200.000",
                   "CLKOUT1_REQUESTED_OUT_FREQ": f"{d.clock_mhz:g}", "USE_RESET": "true",
                   "RESET_TYPE": "ACTIVE_HIGH"}

        def props(config: dict[str, str]) -> str:
            return " ".join(f"CONFIG.{k} {{{v}}}" for k, v in config.items())

        def cdc(name: str, nbytes: int, s_clk: str, s_rstn: str, m_clk: str, m_rstn: str) -> str:
            return "\n".join([
                f"create_bd_cell -type ip -vlnv xilinx.com:ip:axis_clock_converter {name}",
                f"set_property -dict [list CONFIG.TDATA_NUM_BYTES {{{nbytes}}}] "
                f"[get_bd_cells {name}]",
                f"connect_bd_net [get_bd_pins {s_clk}] [get_bd_pins {name}/s_axis_aclk]",
                f"connect_bd_net [get_bd_pins {s_rstn}] [get_bd_pins {name}/s_axis_aresetn]",
                f"connect_bd_net [get_bd_pins {m_clk}] [get_bd_pins {name}/m_axis_aclk]",
                f"connect_bd_net [get_bd_pins {m_rstn}] [get_bd_pins {name}/m_axis_aresetn]",
            ]) + "\n"

        in_bytes, out_bytes = d.in_beat_bytes, d.out_beat_bytes
        return "".join([
            "add_files -norecurse rtl/hwgen_top.v\n",
            "update_compile_order -fileset sources_1\n",
            "create_bd_design shell\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:xdma xdma\n",
            f"set_property -dict [list {props(xdma)}] [get_bd_cells xdma]\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:util_ds_buf refclk_buf\n",
            "set_property CONFIG.C_BUF_TYPE {IBUFDSGTE} [get_bd_cells refclk_buf]\n",
            "create_bd_intf_port -mode Slave -vlnv xilinx.com:interface:diff_clock_rtl:1.0 "
            "pcie_refclk\n",
            "set_property CONFIG.FREQ_HZ 100000000 [get_bd_intf_ports pcie_refclk]\n",
            "connect_bd_intf_net [get_bd_intf_ports pcie_refclk] "
            "[get_bd_intf_pins refclk_buf/CLK_IN_D]\n",
            "connect_bd_net [get_bd_pins refclk_buf/IBUF_OUT] [get_bd_pins xdma/sys_clk]\n",
            "create_bd_port -dir I -type rst pcie_perst_n\n",
            "connect_bd_net [get_bd_ports pcie_perst_n] [get_bd_pins xdma/sys_rst_n]\n",
            "create_bd_intf_port -mode Master -vlnv xilinx.com:interface:pcie_7x_mgt_rtl:1.0 "
            "pcie_mgt\n",
            "connect_bd_intf_net [get_bd_intf_pins xdma/pcie_mgt] [get_bd_intf_ports pcie_mgt]\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:clk_wiz clk_wiz\n",
            f"set_property -dict [list {props(clk_wiz)}] [get_bd_cells clk_wiz]\n",
            "create_bd_intf_port -mode Slave -vlnv xilinx.com:interface:diff_clock_rtl:1.0 sys_clk\n",
            "set_property CONFIG.FREQ_HZ 200000000 [get_bd_intf_ports sys_clk]\n",
            "connect_bd_intf_net [get_bd_intf_ports sys_clk] [get_bd_intf_pins clk_wiz/CLK_IN1_D]\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_core\n",
            "set_property CONFIG.C_EXT_RESET_HIGH {1} [get_bd_cells rst_core]\n",
            "create_bd_port -dir I -type rst cpu_reset\n",
            "set_property CONFIG.POLARITY ACTIVE_HIGH [get_bd_ports cpu_reset]\n",
            "connect_bd_net [get_bd_ports cpu_reset] [get_bd_pins clk_wiz/reset] "
            "[get_bd_pins rst_core/ext_reset_in]\n",
            "connect_bd_net [get_bd_pins clk_wiz/locked] [get_bd_pins rst_core/dcm_locked]\n",
            hwgen_cell("hwgen", d.clock_mhz),
            f"connect_bd_net [get_bd_pins {core_clk}] [get_bd_pins rst_core/slowest_sync_clk] "
            "[get_bd_pins hwgen/clk]\n",
            "connect_bd_net [get_bd_pins rst_core/peripheral_reset] [get_bd_pins hwgen/rst]\n",
            # Host to card: repack 16-byte words into beats on XDMA's clock, then cross over.
            stream_path("xdma/M_AXIS_H2C_0", "cdc_in/S_AXIS", _XDMA_BYTES, in_bytes,
                        "width_in", xdma_clk, xdma_rstn),
            cdc("cdc_in", in_bytes, xdma_clk, xdma_rstn, core_clk, core_rstn),
            "connect_bd_intf_net [get_bd_intf_pins cdc_in/M_AXIS] [get_bd_intf_pins hwgen/s_axis]\n",
            "connect_bd_intf_net [get_bd_intf_pins hwgen/m_axis] [get_bd_intf_pins cdc_out/S_AXIS]\n",
            cdc("cdc_out", out_bytes, core_clk, core_rstn, xdma_clk, xdma_rstn),
            stream_path("cdc_out/M_AXIS", "xdma/S_AXIS_C2H_0", out_bytes, _XDMA_BYTES,
                        "width_out", xdma_clk, xdma_rstn),
            "validate_bd_design\n",
            "save_bd_design\n",
            "set bd [get_files shell.bd]\n",
            # Global synthesis, in this folder: the ROMs' relative $readmemh paths resolve.
            "set_property synth_checkpoint_mode None $bd\n",
            "generate_target all $bd\n",
            "add_files -norecurse [make_wrapper -files $bd -top]\n",
        ])

    def _readme(self) -> str:
        d = self.design
        return f"""# {d.name} on vc707: PCIe XDMA shell

Written by hwgen for Vivado {VIVADO_VERSION} (part `xc7vx485tffg1761-2`). The project comes from
Amaranth's Vivado template (`{TOP_NAME}.tcl`, `{TOP_NAME}.xdc`, `{TOP_NAME}.v`,
`build_{TOP_NAME}.sh`); `{_BD_SCRIPT}` is the block design it sources.

Build (writes `{TOP_NAME}.bit` and `reports/`):

```sh
sh build_{TOP_NAME}.sh
```

Program the board over JTAG (Vivado hardware manager, `{TOP_NAME}.bit`) with the VC707 in a
PCIe x8 slot, then rescan the bus or reboot the host so it enumerates the card.

How the host talks to the board: Xilinx's XDMA driver (github.com/Xilinx/dma_ip_drivers,
`XDMA/linux-kernel`: `make && sudo insmod xdma.ko`) makes the card's stream channels
character devices. `xdma_host.py` writes a frame's bytes to `/dev/xdma0_h2c_0` (into
`s_axis`) while a thread reads the output frame from `/dev/xdma0_c2h_0` (the read ends at
`m_axis_tlast`):

```sh
python3 xdma_host.py --check golden/        # golden/: input_<k>.npy, output_<k>.npy
```

Bytes are beats back to back, lane 0 in the low bits (`frames.py`); `design.json` gives the
shapes. Without the XDMA driver, `{UART_DIR}/` holds the fallback: the same accelerator behind
the board's USB UART (its own project and README), slower but needing nothing on the host.

The accelerator runs at {d.clock_mhz:g} MHz from the clocking wizard (200 MHz in),
XDMA's stream side at 250 MHz, 128 bits; clock and width converters sit between them.
"""

    def write(self) -> BoardProject:
        """Write the project into ``design.board_dir``."""
        board_dir = self.design.board_dir
        files = stage_sources(self.design) + copy_host(self.design, "xdma_host.py")
        files.append(write_text(board_dir / _BD_SCRIPT, self._block_design()))
        plan = VC707Platform(toolchain="Vivado").prepare(
            Vc707Shell(), name=TOP_NAME,
            script_after_read=f"source {_BD_SCRIPT}",
            add_constraints="set_property LOC IBUFDS_GTE2_X1Y5 "
                            "[get_cells -hierarchical -filter {REF_NAME == IBUFDS_GTE2}]\n"
                            "set_false_path -from [get_ports pcie_x8_0__perst_n__io]",
            script_before_bitstream=reports_tcl(REPORTS_DIR))
        plan.extract(board_dir)
        files += [board_dir / name for name in plan.files]
        files.append(write_text(board_dir / "README.md", self._readme()))
        # The fallback without a host driver, in uart/ (its own project, same accelerator).
        files += [board_dir / f for f in Vc707UartProject(self.design).write().files]
        return BoardProject(board_dir=board_dir,
                            files=sorted(p.relative_to(board_dir) for p in files),
                            run_command=f"sh build_{TOP_NAME}.sh", tool="vivado",
                            bitstream=Path(f"{TOP_NAME}.bit"))
