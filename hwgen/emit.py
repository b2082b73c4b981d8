"""Emission: the folded hardware graph as Verilog plus weight files.

``hwgen_top.v`` holds the AXI4-Stream top (:class:`rtl_templates.axis_top.AxiStreamTop`)
around the :class:`~hwgen.accelerator.Accelerator`, every stage a module named after its
layer, and the ROM module the weight stores instantiate; ``weights/rom_<hash>.hex`` hold the
weights, loaded with ``$readmemh`` (paths relative to the directory the tools run in, the
build directory). Same design, same bytes: names and file names are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from rtl_templates.axis_top import AxiStreamTop
from rtl_templates.rom import ROM_VERILOG, RomFiles, external_roms

from .accelerator import Accelerator
from .hwgraph import HwGraph

__all__ = ["Emitted", "emit", "TOP_NAME"]

TOP_NAME = "hwgen_top"


@dataclass(frozen=True)
class Emitted:
    """What :func:`emit` wrote and the top's stream shapes (for drivers)."""

    verilog: Path
    weight_files: list[Path]
    in_lanes: int
    in_bits: int
    in_beats_per_frame: int
    out_lanes: int
    out_bits: int
    out_beats_per_frame: int


def emit(hw: HwGraph, out_dir: Path, *, header: str = "") -> Emitted:
    """Write ``hwgen_top.v`` and ``weights/*.hex`` for ``hw`` into ``out_dir``."""
    out_dir = Path(out_dir)
    acc = Accelerator(hw)
    shape_in = hw.input_shape
    last = hw.stage(hw.output[0])
    shape_out = last.out_shape
    in_beats = shape_in.h * shape_in.w * shape_in.c // acc.in_lanes
    out_beats = shape_out.h * shape_out.w * shape_out.c // acc.out_lanes
    top = AxiStreamTop(acc, in_beats_per_frame=in_beats, out_beats_per_frame=out_beats)
    roms = RomFiles("weights/")
    with external_roms(roms):
        text = verilog.convert(top, name=TOP_NAME, emit_src=False)
    comment = "".join(f"// {line}\n" for line in header.splitlines())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{TOP_NAME}.v"
    path.write_text(comment + text + "\n" + ROM_VERILOG)
    wdir = out_dir / "weights"
    wdir.mkdir(exist_ok=True)
    for old in wdir.glob("rom_*.hex"):
        if old.name not in roms.files:
            old.unlink()
    files = []
    for name, body in sorted(roms.files.items()):
        f = wdir / name
        f.write_text(body)
        files.append(f)
    return Emitted(path, files, acc.in_lanes, hw.input_bits, in_beats, acc.out_lanes,
                   acc.out_bits, out_beats)
