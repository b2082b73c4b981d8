"""Emission: the folded hardware graph as Verilog plus weight files.

``hwgen_top.v`` holds the AXI4-Stream top (:class:`rtl_templates.axis_top.AxiStreamTop`)
around the :class:`~hwgen.accelerator.Accelerator`, every stage a module named after its
layer, and the ROM module the weight stores instantiate; ``weights/rom_<hash>.hex`` hold the
weights, loaded with ``$readmemh`` (paths relative to the directory the tools run in, the
build directory). Same design, same bytes: names and file names are deterministic.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil, verilog

from rtl_templates.axis_top import TOP_NAME, AxiStreamTop, to_verilog
from rtl_templates.rom import ROM_VERILOG, RomFiles, external_roms

from .accelerator import AcceleratorShell, StageBlock, verilog_name
from .hwgraph import HwGraph

__all__ = ["Emitted", "emit", "TOP_NAME"]


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


_HW: HwGraph | None = None   # the graph being emitted, inherited by forked workers


def _stage_rtlil(name: str) -> tuple[str, dict[str, str]]:
    """One stage's RTLIL (elaborated in Python) and the weight files its ROMs load."""
    roms = RomFiles("weights/")
    with external_roms(roms):
        text = rtlil.convert(StageBlock(_HW.stage(name)), name=verilog_name(name),
                             emit_src=False)
    return text, roms.files


def _rtlil_to_verilog(texts: list[str]) -> str:
    """Every stage's RTLIL to Verilog in one yosys run.

    This is what ``amaranth.back.verilog.convert`` does per design; one run for all stages
    instead of one per stage, because starting the WebAssembly yosys costs ~0.3 s a time:
    emitting MobileNet V3-Small's 183 stages took 65 s of yosys that way, 1.9 s batched.
    ``_convert_rtlil_text`` is Amaranth's own yosys step (the script ``convert`` runs); the
    version is pinned below 0.6 in pyproject.toml.
    """
    return verilog._convert_rtlil_text("\n".join(texts))


def _modules(text: str) -> list[str]:
    """Split converted Verilog at module boundaries (memory names are per module)."""
    parts = re.split(r"(?=^\(\* generator|^module )", text, flags=re.M)
    out, cur = [], ""
    for part in parts:
        cur += part
        if "endmodule" in part:
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


def _module_name(text: str) -> str:
    return re.search(r"^module \\?([^\s(]+)", text, re.M).group(1)


_ZERO_INIT = re.compile(r"^  initial begin\n((?:    (\\?\S+)\[\d+\] = \d+'h0+;\n)+)  end\n", re.M)


def strip_ram_zero_init(text: str) -> str:
    """Drop the all-zero ``initial`` blocks Amaranth writes for every RAM that is written
    before it is read (FIFOs, line buffers, input buffers).

    Their contents at power-up never reach an output, block RAM powers up to zero anyway,
    and on a whole network they are a fifth of the Verilog and of Verilator's C++. ROMs (no
    write port) keep their ``initial`` block even when it is all zeros.
    """
    def keep_or_drop(match):
        names = set(re.findall(r"^    (\\?\S+)\[\d+\] =", match.group(1), re.M))
        if len(names) == 1:
            (name,) = names
            if re.search(rf"^\s+{re.escape(name)}\[[^\]]+\] <=", text, re.M):
                return ""
        return match.group(0)
    return _ZERO_INIT.sub(keep_or_drop, text)


def _ports(text: str, module: str) -> set[str]:
    header = re.search(rf"^module {re.escape(module)}\((.*?)\);", text, re.M)
    return {p.strip() for p in header.group(1).split(",")} if header else set()


def emit(hw: HwGraph, out_dir: Path, *, header: str = "", jobs: int | None = None) -> Emitted:
    """Write ``hwgen_top.v`` and ``weights/*.hex`` for ``hw`` into ``out_dir``.

    Each stage's module is converted on its own, ``jobs`` at a time (default: one per CPU),
    then the top instantiates them; the text is the same whatever ``jobs`` is.
    """
    global _HW
    out_dir = Path(out_dir)
    names = [st.name for st in hw.stages()]
    jobs = jobs or os.cpu_count() or 1
    _HW = hw
    try:
        if jobs > 1 and len(names) > 1:
            ctx = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                results = list(pool.map(_stage_rtlil, names))
        else:
            results = [_stage_rtlil(n) for n in names]
    finally:
        _HW = None
    files: dict[str, str] = {}
    for _, roms in results:
        files.update(roms)
    # Group the modules by stage, in stage order (a stage's submodules are named after it).
    by_stage: dict[str, list[str]] = {verilog_name(n): [] for n in names}
    for module in _modules(_rtlil_to_verilog([t for t, _ in results])):
        by_stage[_module_name(module).split(".")[0]].append(strip_ram_zero_init(module))
    stage_text = {n: "".join(by_stage[verilog_name(n)]) for n in names}
    clocked = {}
    for name in names:
        ports = _ports(stage_text[name], verilog_name(name))
        clocked[name] = ("clk" in ports, "rst" in ports)
    shell = AcceleratorShell(hw, clocked)
    shape_in = hw.input_shape
    shape_out = hw.stage(hw.output[0]).out_shape
    if hw.output[1] != "o":
        raise ValueError(f"the design output must be a stage's 'o' port, not {hw.output!r}")
    in_beats = shape_in.h * shape_in.w * shape_in.c // shell.in_lanes
    out_beats = shape_out.h * shape_out.w * shape_out.c // shell.out_lanes
    top = AxiStreamTop(shell, in_beats_per_frame=in_beats, out_beats_per_frame=out_beats)
    text = to_verilog(top)
    comment = "".join(f"// {line}\n" for line in header.splitlines())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{TOP_NAME}.v"
    path.write_text(comment + text + "".join(stage_text[n] for n in names) + "\n" + ROM_VERILOG)
    wdir = out_dir / "weights"
    wdir.mkdir(exist_ok=True)
    for old in wdir.glob("rom_*.hex"):
        if old.name not in files:
            old.unlink()
    written = []
    for name, body in sorted(files.items()):
        f = wdir / name
        if not f.is_file() or f.read_text() != body:
            f.write_text(body)
        written.append(f)
    return Emitted(path, written, shell.in_lanes, hw.input_bits, in_beats, shell.out_lanes,
                   shell.out_bits, out_beats)
