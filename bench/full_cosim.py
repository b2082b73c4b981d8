"""Full-resolution co-simulation: SqueezeNet 1.0 at 227x227 on the VC707 design.

Builds the design, verilates it from scratch (a fresh cache directory, so the Verilator build
is in the figure) and streams three frames at full rate (frames 1 and 2 give the steady-state
cycles per frame; frame 0's spacing includes buffers filling), then three under idle and
backpressure. Prints wall time including the build,
simulated cycles per second and the cycle model's error. Target: <= 5 min on 2 cores.

Run: .venv/bin/python bench/full_cosim.py [--model M] [--board B]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

from hwgen.build import BuildOptions, build
from sim.network_cosim import cosimulate


def main() -> None:
    warnings.filterwarnings("ignore", message=".*created but never used")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="squeezenet")
    ap.add_argument("--board", default="vc707")
    args = ap.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = build(BuildOptions(model=args.model, board=args.board, out_dir=Path(tmp) / "hw"),
                       progress=lambda m: print(f"[build] {m}", flush=True))
        built = time.perf_counter()
        rep = cosimulate(result, frames=3, cache_dir=Path(tmp) / "cosim",
                         progress=lambda m: print(f"[cosim] {m}", flush=True))
    total = time.perf_counter() - start
    print(f"{args.model} on {args.board}: bit_exact={rep.bit_exact}")
    print(f"wall time {total:.0f} s (hwgen build {built - start:.0f} s, Verilator build "
          f"{rep.build_seconds:.0f} s, simulation {rep.sim_seconds:.0f} s)")
    print(f"cycles/frame measured {rep.measured_cycles_per_frame:,.0f}, estimated "
          f"{rep.estimated_cycles_per_frame:,}, error {rep.cycle_error_pct:+.2f}%; latency "
          f"measured {rep.measured_latency_cycles:,}, estimated {rep.estimated_latency_cycles:,}")
    print(f"simulation speed {rep.cycles_per_second:,.0f} cycles/s")


if __name__ == "__main__":
    main()
