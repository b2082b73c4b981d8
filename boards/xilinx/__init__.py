"""Vivado and Vitis projects for the Xilinx boards, written without the vendor tools.

>>> project = write_project(design)            # design: boards.design.BoardDesign
>>> project.run_command                        # run in project.board_dir
'vivado -mode batch -source build.tcl -log vivado.log'
>>> implementation = run_project(project, design)   # needs Vivado; ToolMissingError if absent

See ``docs/xilinx_flow.md`` for what each project holds and what its tests check.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess

from ..design import BoardDesign, BoardProject, FlowError, Implementation, ToolMissingError
from .alveo import AlveoKernelProject
from .pcie_shell import XdmaShellProject
from .project import TIMING_REPORT, UTILIZATION_REPORT
from .reports import parse_timing, parse_utilization
from .zynq import Zynq7000Project, ZynqMPProject, ZynqProject, write_partitioned

__all__ = ["write_project", "run_project", "vivado_present", "UnsupportedBoardError",
           "WRITERS", "XilinxFlow"]

#: Board name -> the writer of its project.
WRITERS: dict[str, type] = {
    "pynq-z2": Zynq7000Project,
    "ultra96": ZynqMPProject,
    "zcu104": ZynqMPProject,
    "zcu102": ZynqMPProject,
    "vc707": XdmaShellProject,
    "u250": AlveoKernelProject,
}

# Tools a project's run needs besides its own: Vitis builds call Vivado too.
_TOOLS = {"vivado": ("vivado",), "v++": ("vivado", "v++")}


class UnsupportedBoardError(ValueError):
    """A board with no Xilinx project writer; the message lists the valid boards on one line."""


def write_project(design: BoardDesign) -> BoardProject:
    """Write the board's Vivado or Vitis project into ``design.board_dir``.

    Raises
    ------
    UnsupportedBoardError
        If the design's board has no Xilinx flow (an ECP5 board, for instance).
    """
    writer = WRITERS.get(design.board.name)
    if writer is None:
        raise UnsupportedBoardError(f"no Xilinx project for board {design.board.name!r}; "
                                    f"Xilinx boards: {', '.join(sorted(WRITERS))}")
    return writer(design).write()


def vivado_present() -> bool:
    """Whether ``vivado`` is on the PATH."""
    return shutil.which("vivado") is not None


def _tool_version(log_text: str) -> str:
    # Vivado's log starts "#-----" then "# Vivado v2023.2 (64-bit)".
    match = re.search(r"Vivado v(\S+)", log_text)
    return match.group(1) if match else "unknown"


def run_project(project: BoardProject, design: BoardDesign) -> Implementation:
    """Run ``project.run_command`` in its folder and read the tools' reports.

    Utilization is that of the accelerator's own cells (``hwgen_top``), not the shell's;
    ``fmax_mhz`` is 1000 / (period - WNS) of the clock nearest ``design.clock_mhz``.

    Raises
    ------
    ToolMissingError
        If Vivado (or v++, for a Vitis project) is not on the PATH.
    FlowError
        If the build exits non-zero or leaves no reports.
    """
    missing = [t for t in _TOOLS.get(project.tool, (project.tool,)) if shutil.which(t) is None]
    if missing:
        raise ToolMissingError(f"building the {design.board.name} project needs "
                               f"{' and '.join(missing)} on the PATH (Vivado/Vitis 2023.2)")
    log = project.board_dir / "hwgen_run.log"
    with log.open("w") as out:
        done = subprocess.run(shlex.split(project.run_command), cwd=project.board_dir,
                              stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise FlowError(f"'{project.run_command}' failed (exit {done.returncode}); see {log}")
    try:
        util = parse_utilization((project.board_dir / UTILIZATION_REPORT).read_text())
        timing = parse_timing((project.board_dir / TIMING_REPORT).read_text(), design.clock_mhz)
    except FileNotFoundError as err:
        raise FlowError(f"the build left no report {err.filename}; see {log}") from None
    return Implementation(
        tool=project.tool, tool_version=_tool_version(log.read_text(errors="replace")),
        lut=util.lut, ff=util.ff, dsp=util.dsp, bram18=util.bram18, uram=util.uram,
        fmax_mhz=round(timing.fmax_mhz, 3), clock_mhz=design.clock_mhz,
        bitstream=str(project.board_dir.relative_to(design.build_dir) / project.bitstream))


class XilinxFlow:
    """The Xilinx boards' flow as ``hwgen bitstream`` drives it (see :mod:`hwgen.bitstream`)."""

    tool = "vivado"

    def __init__(self, board_name: str):
        if board_name not in WRITERS:
            raise UnsupportedBoardError(f"no Xilinx project for board {board_name!r}; "
                                        f"Xilinx boards: {', '.join(sorted(WRITERS))}")
        # An Alveo card's kernel is linked by Vitis (v++), which calls Vivado.
        self.tools = _TOOLS["v++"] if WRITERS[board_name] is AlveoKernelProject else _TOOLS["vivado"]
        self.tool = " and ".join(self.tools)
        # A Zynq's PS reloads the PL under Linux (PYNQ's Overlay), so partitions load in turn;
        # reconfiguring the VC707 would drop its PCIe link, and the U250's kernels are not
        # written for it yet.
        self.partitioned = issubclass(WRITERS[board_name], ZynqProject)

    def tools_present(self) -> bool:
        return all(shutil.which(t) for t in self.tools)

    def write(self, design: BoardDesign) -> BoardProject:
        return write_project(design)

    def write_partitioned(self, board_dir, plan: dict, projects: list[BoardProject]) -> BoardProject:
        if not self.partitioned:
            raise UnsupportedBoardError(f"the {self.tool} flow of this board takes designs "
                                        "that fit on chip")
        return write_partitioned(board_dir, plan, projects)

    def run(self, project: BoardProject, design: BoardDesign, progress=None) -> Implementation:
        if progress:
            progress(f"running `{project.run_command}` in {project.board_dir} (log "
                     "hwgen_run.log); Vivado takes a while")
        return run_project(project, design)
