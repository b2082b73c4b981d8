"""What every Xilinx project writer shares: the staged sources, the host files and the reports.

A project folder (``build/<model>-<board>/board/``) is self-contained: Vivado runs in it, so
``hwgen_top.v`` is copied to ``rtl/`` and the ROM files to ``weights/`` (the Verilog reads
``weights/<file>`` relative to the folder the tools run in), and the host programs, the
framing module and ``design.json`` sit beside the bitstream.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..design import DESIGN_JSON, BoardDesign

__all__ = ["HOST_DIR", "VIVADO_VERSION", "REPORTS_DIR", "UTILIZATION_REPORT", "TIMING_REPORT",
           "UnsupportedWidthError", "stream_width", "stage_sources", "copy_host",
           "reports_tcl", "write_text"]

#: The Vivado / Vitis release the projects were written against.
VIVADO_VERSION = "2023.2"
REPORTS_DIR = "reports"
#: ``report_utilization`` of the accelerator's own cells (what ``run_project`` reads).
UTILIZATION_REPORT = f"{REPORTS_DIR}/utilization_hwgen.rpt"
TIMING_REPORT = f"{REPORTS_DIR}/timing_summary.rpt"

#: Where the host programs a project copies live (``boards/host/``).
HOST_DIR = Path(__file__).resolve().parent.parent / "host"
# The widths AXI DMA, XDMA data movers and HLS streams take: a power of two bytes.
_STREAM_WIDTHS = (8, 16, 32, 64, 128, 256, 512, 1024)


class UnsupportedWidthError(ValueError):
    """A ``tdata`` wider than the widest DMA stream (1024 bits)."""


def stream_width(tdata_bits: int) -> int:
    """The narrowest DMA stream width (8, 16, ... 1024 bits) that holds ``tdata_bits``.

    Raises
    ------
    UnsupportedWidthError
        If ``tdata_bits`` exceeds 1024.
    """
    for width in _STREAM_WIDTHS:
        if width >= tdata_bits:
            return width
    raise UnsupportedWidthError(f"a tdata of {tdata_bits} bits is wider than the 1024-bit "
                                "streams AXI DMA and HLS data movers take")


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def stage_sources(design: BoardDesign) -> list[Path]:
    """Copy ``hwgen_top.v`` to ``rtl/`` and the weight files to ``weights/`` of the project."""
    board_dir = design.board_dir
    (board_dir / "rtl").mkdir(parents=True, exist_ok=True)
    (board_dir / "weights").mkdir(exist_ok=True)
    written = [Path(shutil.copyfile(design.verilog, board_dir / "rtl" / "hwgen_top.v"))]
    for weights in map(Path, design.weight_files):
        written.append(Path(shutil.copyfile(weights, board_dir / "weights" / weights.name)))
    return written


def copy_host(design: BoardDesign, program: str, folder: Path | None = None) -> list[Path]:
    """The host program ``program``, ``frames.py`` (the framing and golden-file helpers every
    host program shares), ``design.json`` and the weight load, if any, into the project
    (``folder``, by default ``design.board_dir``)."""
    board_dir = design.board_dir if folder is None else folder
    load = ([Path(shutil.copyfile(design.weight_load, board_dir / design.WEIGHT_LOAD))]
            if design.load_beats else [])
    return [Path(shutil.copyfile(HOST_DIR / name, board_dir / name))
            for name in sorted({program, "frames.py"})] + \
        [write_text(board_dir / DESIGN_JSON, design.host_json())] + load


def reports_tcl(folder: str) -> str:
    """TCL that writes the routed design's reports into ``folder`` (a Tcl expression).

    The accelerator is found by its module name, so the reports work whatever the shell names
    its instance.
    """
    return "\n".join([
        f"file mkdir {folder}",
        f"report_utilization -file {folder}/utilization.rpt",
        "report_utilization -cells [get_cells -hierarchical -filter {REF_NAME == hwgen_top}] "
        f"-file {folder}/utilization_hwgen.rpt",
        f"report_timing_summary -max_paths 10 -file {folder}/timing_summary.rpt",
    ]) + "\n"
