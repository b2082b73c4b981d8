"""Zynq projects (PYNQ-Z2, Ultra96, ZCU104, ZCU102): a Vivado block design around the
accelerator, built to a ``.bit`` and the ``.hwh`` a PYNQ overlay loads.

The block design: the processing system with the board preset, its PL clock 0 set to the
report's clock; an AXI DMA without scatter-gather whose MM2S stream feeds ``hwgen_top``'s
``s_axis`` and whose S2MM stream takes ``m_axis`` (width converters where the DMA's
power-of-two width differs from ``tdata``); SmartConnects from the PS's general-purpose master
to the DMA's registers and from the DMA's two masters to a high-performance slave port; a
proc_sys_reset. The TCL is ours: Amaranth's Vivado template synthesizes an Amaranth top, and
here the top is the block design's wrapper (the PS's DDR and MIO are its ports); the part
string comes from :mod:`boards.xilinx.platforms`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..design import BoardDesign, BoardProject
from .block_design import hwgen_cell, stream_path
from .platforms import PLATFORMS, part_name
from .project import (HOST_DIR, REPORTS_DIR, VIVADO_VERSION, copy_host, reports_tcl,
                      stage_sources, stream_width, write_text)

__all__ = ["ZynqProject", "Zynq7000Project", "ZynqMPProject", "write_partitioned",
           "PARTITIONS_JSON", "BUILD_ALL"]

_SCRIPT = "build.tcl"
_BITSTREAM = "top.bit"
_PROJECT = "hwgen_zynq"
#: A partitioned design's plan (how its partitions chain) and the script that builds them all.
PARTITIONS_JSON = "partitions.json"
BUILD_ALL = "build_all.sh"

# Board files Vivado needs for "apply_board_preset" (PYNQ-Z2 and Ultra96 come from the board
# store, the ZCU boards ship with Vivado); the newest installed version is taken.
_BOARD_PARTS = {
    "pynq-z2": "tul.com.tw:pynq-z2:part0:*",
    "ultra96": "avnet.com:ultra96v2:part0:*",
    "zcu104": "xilinx.com:zcu104:part0:*",
    "zcu102": "xilinx.com:zcu102:part0:*",
}


class ZynqProject:
    """Writes the block-design project of one Zynq board; subclasses name the PS's pins.

    Parameters
    ----------
    design : BoardDesign
        The built accelerator; its board must be one of :data:`_BOARD_PARTS`.

    Raises
    ------
    ValueError
        If the design's board is not a Zynq board this writer knows.
    """

    #: IP, automation rule and pins of the processing system (set by subclasses).
    ps_vlnv = ""
    ps_rule = ""
    ps_rule_config = ""
    #: The PS property that sets PL clock 0 in MHz.
    clock_property = ""
    ps_config: dict[str, str] = {}
    pl_clock = ""
    pl_resetn = ""
    master, master_clock = "", ""
    slave, slave_clock = "", ""

    def __init__(self, design: BoardDesign):
        if design.board.name not in _BOARD_PARTS:
            raise ValueError(f"{type(self).__name__} writes Zynq boards "
                             f"({', '.join(_BOARD_PARTS)}), not {design.board.name!r}")
        self.design = design
        self.part = part_name(PLATFORMS[design.board.name](toolchain="Vivado"))

    def _ps(self) -> str:
        config = {**self.ps_config, self.clock_property: f"{self.design.clock_mhz:g}"}
        props = " ".join(f"CONFIG.{k} {{{v}}}" for k, v in config.items())
        return "\n".join([
            f"create_bd_cell -type ip -vlnv {self.ps_vlnv} ps",
            f"apply_bd_automation -rule {self.ps_rule} -config {{{self.ps_rule_config}}} "
            "[get_bd_cells ps]",
            f"set_property -dict [list {props}] [get_bd_cells ps]",
        ]) + "\n"

    def _block_design(self) -> str:
        d = self.design
        dma_in, dma_out = stream_width(d.in_tdata_width), stream_width(d.out_tdata_width)
        clk, rst = f"ps/{self.pl_clock}", "rst_ps/peripheral_aresetn"
        dma = {"c_include_sg": 0, "c_sg_include_stscntrl_strm": 0, "c_sg_length_width": 26,
               "c_addr_width": 32, "c_m_axis_mm2s_tdata_width": dma_in,
               "c_s_axis_s2mm_tdata_width": dma_out,
               "c_m_axi_mm2s_data_width": max(32, dma_in),
               "c_m_axi_s2mm_data_width": max(32, dma_out),
               "c_mm2s_burst_size": 16, "c_s2mm_burst_size": 16}
        clocked = [f"ps/{self.master_clock}", f"ps/{self.slave_clock}", "axi_ctrl/aclk",
                   "axi_mem/aclk", "axi_dma/s_axi_lite_aclk", "axi_dma/m_axi_mm2s_aclk",
                   "axi_dma/m_axi_s2mm_aclk", "hwgen/clk", "rst_ps/slowest_sync_clk"]
        return "".join([
            "create_bd_design shell\n",
            self._ps(),
            "create_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset rst_ps\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma axi_dma\n",
            "set_property -dict [list "
            + " ".join(f"CONFIG.{k} {{{v}}}" for k, v in dma.items()) + "] [get_bd_cells axi_dma]\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect axi_ctrl\n",
            "set_property -dict [list CONFIG.NUM_SI {1} CONFIG.NUM_MI {1}] [get_bd_cells axi_ctrl]\n",
            "create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect axi_mem\n",
            "set_property -dict [list CONFIG.NUM_SI {2} CONFIG.NUM_MI {1}] [get_bd_cells axi_mem]\n",
            hwgen_cell("hwgen", d.clock_mhz),
            f"connect_bd_intf_net [get_bd_intf_pins ps/{self.master}] "
            "[get_bd_intf_pins axi_ctrl/S00_AXI]\n",
            "connect_bd_intf_net [get_bd_intf_pins axi_ctrl/M00_AXI] "
            "[get_bd_intf_pins axi_dma/S_AXI_LITE]\n",
            "connect_bd_intf_net [get_bd_intf_pins axi_dma/M_AXI_MM2S] "
            "[get_bd_intf_pins axi_mem/S00_AXI]\n",
            "connect_bd_intf_net [get_bd_intf_pins axi_dma/M_AXI_S2MM] "
            "[get_bd_intf_pins axi_mem/S01_AXI]\n",
            f"connect_bd_intf_net [get_bd_intf_pins axi_mem/M00_AXI] "
            f"[get_bd_intf_pins ps/{self.slave}]\n",
            stream_path("axi_dma/M_AXIS_MM2S", "hwgen/s_axis", dma_in // 8,
                        d.in_beat_bytes, "width_in", clk, rst),
            stream_path("hwgen/m_axis", "axi_dma/S_AXIS_S2MM", d.out_beat_bytes,
                        dma_out // 8, "width_out", clk, rst),
            f"connect_bd_net [get_bd_pins {clk}] "
            + " ".join(f"[get_bd_pins {p}]" for p in clocked) + "\n",
            f"connect_bd_net [get_bd_pins ps/{self.pl_resetn}] [get_bd_pins rst_ps/ext_reset_in]\n",
            f"connect_bd_net [get_bd_pins {rst}] [get_bd_pins axi_ctrl/aresetn] "
            "[get_bd_pins axi_mem/aresetn] [get_bd_pins axi_dma/axi_resetn]\n",
            "connect_bd_net [get_bd_pins rst_ps/peripheral_reset] [get_bd_pins hwgen/rst]\n",
            "assign_bd_address\n",
            "validate_bd_design\n",
            "save_bd_design\n",
        ])

    def _script(self) -> str:
        board = _BOARD_PARTS[self.design.board.name]
        hwh = (f"[file join [get_property DIRECTORY [current_project]] {_PROJECT}.gen "
               "sources_1 bd shell hw_handoff shell.hwh]")
        return "".join([
            f"# {self.design.name} on {self.design.board.name}: written by hwgen for Vivado "
            f"{VIVADO_VERSION}. Run from this folder: vivado -mode batch -source {_SCRIPT}\n",
            f"create_project -force {_PROJECT} vivado -part {self.part}\n",
            f"set_property board_part [lindex [get_board_parts -latest_file_version {board}] 0] "
            "[current_project]\n",
            "add_files -norecurse rtl/hwgen_top.v\n",
            "update_compile_order -fileset sources_1\n",
            self._block_design(),
            "set bd [get_files shell.bd]\n",
            # Global synthesis: the IP is synthesized with the design, in this folder, so the
            # ROMs' relative $readmemh paths resolve.
            "set_property synth_checkpoint_mode None $bd\n",
            "generate_target all $bd\n",
            "add_files -norecurse [make_wrapper -files $bd -top]\n",
            f"synth_design -top shell_wrapper -part {self.part}\n",
            "opt_design\nplace_design\nroute_design\n",
            reports_tcl(REPORTS_DIR),
            f"write_bitstream -force {_BITSTREAM}\n",
            f"file copy -force {hwh} {Path(_BITSTREAM).with_suffix('.hwh')}\n",
        ])

    def _readme(self) -> str:
        d = self.design
        return f"""# {d.name} on {d.board.name}: Vivado block-design project

Written by hwgen for Vivado {VIVADO_VERSION} (part `{self.part}`, board files
`{_BOARD_PARTS[d.board.name]}`; install them from the Vivado board store if missing).

Build (about an hour; writes `{_BITSTREAM}`, `top.hwh` and `reports/`):

```sh
vivado -mode batch -source {_SCRIPT} -log vivado.log
```

Run on the board (PYNQ image, Python 3 with `pynq`): copy this folder to the board, then

```sh
python3 pynq_driver.py {_BITSTREAM} --check golden/     # golden/: input_<k>.npy, output_<k>.npy
```

How the host talks to the board: `pynq.Overlay("{_BITSTREAM}")` loads the bitstream and the
`.hwh` beside it; the AXI DMA `axi_dma` (no scatter-gather) sends one frame's bytes from a
`pynq.allocate` buffer to the accelerator's `s_axis` and receives the output frame, which
ends with `m_axis_tlast`, into a second buffer. Bytes are beats back to back, lane 0 in the
low bits (`frames.py`); `design.json` gives the shapes. PL clock 0 is set to
{d.clock_mhz:g} MHz, the report's clock.
"""

    def write(self) -> BoardProject:
        """Write the project into ``design.board_dir``."""
        board_dir = self.design.board_dir
        files = stage_sources(self.design) + copy_host(self.design, "pynq_driver.py")
        files.append(write_text(board_dir / _SCRIPT, self._script()))
        files.append(write_text(board_dir / "README.md", self._readme()))
        return BoardProject(board_dir=board_dir,
                            files=sorted(p.relative_to(board_dir) for p in files),
                            run_command=f"vivado -mode batch -source {_SCRIPT} -log vivado.log",
                            tool="vivado", bitstream=Path(_BITSTREAM))


class Zynq7000Project(ZynqProject):
    """PYNQ-Z2: processing_system7, M_AXI_GP0 to the DMA registers, S_AXI_HP0 to DDR."""

    ps_vlnv = "xilinx.com:ip:processing_system7"
    ps_rule = "xilinx.com:bd_rule:processing_system7"
    ps_rule_config = 'make_external "FIXED_IO, DDR" apply_board_preset "1" Master "Disable" ' \
                     'Slave "Disable"'
    clock_property = "PCW_FPGA0_PERIPHERAL_FREQMHZ"
    ps_config = {"PCW_USE_M_AXI_GP0": "1", "PCW_USE_S_AXI_HP0": "1"}
    pl_clock, pl_resetn = "FCLK_CLK0", "FCLK_RESET0_N"
    master, master_clock = "M_AXI_GP0", "M_AXI_GP0_ACLK"
    slave, slave_clock = "S_AXI_HP0", "S_AXI_HP0_ACLK"


class ZynqMPProject(ZynqProject):
    """Ultra96, ZCU104, ZCU102: zynq_ultra_ps_e, M_AXI_HPM0_FPD to the DMA, S_AXI_HP0_FPD."""

    ps_vlnv = "xilinx.com:ip:zynq_ultra_ps_e"
    ps_rule = "xilinx.com:bd_rule:zynq_ultra_ps_e"
    ps_rule_config = 'apply_board_preset "1"'
    clock_property = "PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"
    ps_config = {"PSU__USE__M_AXI_GP0": "1", "PSU__USE__M_AXI_GP1": "0",
                 "PSU__USE__S_AXI_GP2": "1", "PSU__FPGA_PL0_ENABLE": "1"}
    pl_clock, pl_resetn = "pl_clk0", "pl_resetn0"
    master, master_clock = "M_AXI_HPM0_FPD", "maxihpm0_fpd_aclk"
    slave, slave_clock = "S_AXI_HP0_FPD", "saxihp0_fpd_aclk"


def write_partitioned(board_dir: Path, plan: dict, projects: list[BoardProject]) -> BoardProject:
    """Beside the partitions' Zynq projects in ``board_dir`` (one folder each, as
    :class:`ZynqProject` writes them): ``partitions.json`` (``plan``), ``build_all.sh`` (every
    partition's Vivado run in turn), the host program ``pynq_partitions.py`` with the
    ``pynq_driver.py`` and ``frames.py`` it loads each partition with, and a README."""
    names = [p.board_dir.name for p in projects]
    files = [write_text(board_dir / PARTITIONS_JSON, json.dumps(plan, indent=2) + "\n")]
    files.append(write_text(board_dir / BUILD_ALL, "".join(
        ["#!/bin/sh\n# Every partition's bitstream, one Vivado run after another (written by "
         "hwgen).\nset -e\n"]
        + [f"(cd {name} && {project.run_command})\n" for name, project in zip(names, projects)])))
    files += [Path(shutil.copyfile(HOST_DIR / name, board_dir / name))
              for name in ("frames.py", "pynq_driver.py", "pynq_partitions.py")]
    files.append(write_text(board_dir / "README.md", _partitioned_readme(plan, names)))
    return BoardProject(board_dir=board_dir, files=sorted(p.relative_to(board_dir) for p in files),
                        run_command=f"sh {BUILD_ALL}", tool="vivado",
                        bitstream=Path(names[0]) / _BITSTREAM)


def _partitioned_readme(plan: dict, names: list[str]) -> str:
    rows = "\n".join(
        f"| `{name}/` | {', '.join(f'`{names[j]}`' for j in part['sources']) or 'the image'} |"
        for name, part in zip(names, plan["partitions"]))
    model = plan.get("reconfiguration_seconds_model")
    load = (f"The report's model puts one bitstream load at {1e3 * model:.2f} ms at best (the "
            "bitstream's length over the configuration port's bandwidth); PYNQ's `Overlay` "
            "adds its own parsing, and the host program prints what it measured."
            if model else "The report has no cited bitstream length for this device, so its "
            "fps leaves reconfiguration out; the host program measures it.")
    return f"""# {plan['model']} on {plan['board']}: {len(names)} partitions, one bitstream each

The design does not fit the device at once, so it runs as {len(names)} partitions, each a
complete Vivado block-design project (written by hwgen for Vivado {VIVADO_VERSION}; see the
README in each folder). The host loads their bitstreams in turn and keeps the activations in
the board's DDR between them.

Build every bitstream (one Vivado run per partition, an hour or so each):

```sh
sh {BUILD_ALL}
```

Run on the board (PYNQ image, Python 3 with `pynq`): copy this whole folder to the board, then

```sh
python3 pynq_partitions.py --check golden/ [--batch N]
```

How the host talks to the board: for each batch, `pynq.Overlay("{names[0]}/top.bit")` loads
partition 0, the frames go through it by AXI DMA as in a one-partition design
(`pynq_driver.py`), then the next partition's bitstream is loaded and its input made from the
outputs before it, as `{PARTITIONS_JSON}` says:

| partition | its input: outputs of |
|---|---|
{rows}

Outputs are concatenated along channels (the parts of a layer split by output channels read
the same input, and the partition after them reads all of their outputs); the network's output
is the concatenation of {', '.join(f'`{names[j]}`' for j in plan['output'])}. {load} A larger
`--batch` loads each bitstream once for more frames.
"""
