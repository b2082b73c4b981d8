"""The open ECP5 flow on generated designs: `hwgen bitstream` for the ULX3S 85F.

For each design (default: the CI's MobileNet V1 0.125 at 32x32, 10 classes, fully folded, and
MobileNet V1 0.25, the largest zoo network that fits the 85F at 32x32) this runs the product's
own flow (build, the ULX3S project with its UART shell, yosys ``synth_ecp5``, nextpnr-ecp5,
ecppack, all from PyPI) and prints each step's wall time, nextpnr's utilization beside the
resource model, and the achieved Fmax beside the clock the report assumes.

Run: .venv/bin/python bench/ecp5_flow.py [--only small|large]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from hwgen.bitstream import bitstream
from hwgen.build import BuildOptions

DESIGNS = {
    "small": {"width": 0.125, "resolution": 32, "num_classes": 10},
    "large": {"width": 0.25, "resolution": 32, "num_classes": 10},
}


def run(name: str, options: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        done = bitstream(BuildOptions(model="mobilenet_v1", board="ecp5-85f", fps=5.0,
                                      out_dir=Path(tmp) / "hw", model_options=options), run=True)
        total = time.perf_counter() - start
        bit_bytes = (done.design.build_dir / done.implementation.bitstream).stat().st_size
    impl, report = done.implementation, done.build.report
    used = report["resources"]["used"]
    print(f"== {name}: mobilenet_v1 {options}, fps 5 ({report['cycles_per_frame']:,} "
          f"cycles/frame) on ecp5-85f; {impl.tool_version}")
    print(f"  {'hwgen build':<16} {done.build.seconds:7.1f} s")
    for step, seconds in impl.step_seconds.items():
        print(f"  {step:<16} {seconds:7.1f} s")
    print(f"  {'total':<16} {total:7.1f} s")
    print(f"  {'resource':<8} {'model':>8} {'nextpnr':>8} {'diff':>8}")
    for key, label in (("dsp", "MULT18"), ("bram18", "EBR"), ("lut", "LUT4"), ("ff", "FF")):
        mine, theirs = used[key], getattr(impl, key)
        print(f"  {label:<8} {mine:>8,} {theirs:>8,} {100 * (theirs - mine) / mine:>+7.0f}%")
    verdict = "met" if impl.timing_met else "NOT MET"
    print(f"  Fmax {impl.fmax_mhz:.1f} MHz against the report's {impl.clock_mhz:g} MHz "
          f"({verdict}); bitstream {bit_bytes:,} bytes")


def main() -> None:
    warnings.filterwarnings("ignore", message=".*created but never used")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=sorted(DESIGNS))
    args = ap.parse_args()
    for name, options in DESIGNS.items():
        if args.only in (None, name):
            run(name, options)


if __name__ == "__main__":
    main()
