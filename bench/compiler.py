"""Compiler figures: `make hw` wall time for SqueezeNet 1.0 on the VC707, and the MAC
efficiency and frame rate at 200 MHz of SqueezeNet 1.0 on the VC707 and SqueezeNet 1.1 on the
ZCU104 (folded at 200 MHz for comparability; the report uses the board's own clock).

Run: .venv/bin/python bench/compiler.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

from boards import get_board
from dataflows.quantize import QuantConfig, quantize
from dataflows.source import load_model
from hwgen.build import make_report
from hwgen.compile import compile_model


def wall_time_make_hw() -> float:
    """`hwgen build squeezenet --board vc707` as a fresh process, as `make hw` runs it."""
    hwgen = Path(sys.executable).with_name("hwgen")
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([str(hwgen), "build", "squeezenet", "--board", "vc707", "--out", out],
                       check=True, capture_output=True)
        return time.perf_counter() - start


def at_200mhz(model: str, board_name: str) -> dict:
    board = replace(get_board(board_name), clock_mhz=200.0)
    q = quantize(load_model(model).model, QuantConfig())
    parts = compile_model(q, board)
    return make_report(model, board, q.model, parts, 8)


def main() -> None:
    warnings.filterwarnings("ignore", message=".*created but never used")
    seconds = wall_time_make_hw()
    print(f"make hw squeezenet/vc707 (hwgen build, fresh process): {seconds:.1f} s")
    for model, board in (("squeezenet", "vc707"), ("squeezenet1_1", "zcu104")):
        r = at_200mhz(model, board)
        used = r["resources"]["used"]
        print(f"{model} on {board} at 200 MHz: {r['fps']:.1f} fps, "
              f"{r['cycles_per_frame']:,} cycles/frame, MAC efficiency {r['mac_efficiency']:.3f}, "
              f"{r['partitions']} partition(s), DSP {used['dsp']}, BRAM18 {used['bram18']}, "
              f"LUT {used['lut']}, limited by {r['limited_by']}")


if __name__ == "__main__":
    main()
