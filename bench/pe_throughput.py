"""PE throughput on Verilator: busy fraction on a long stall-free stream, and simulation speed.

For the MatrixVectorUnit and the SlidingWindow, streams many frames back to back with no idle
inputs and no backpressure, then prints

- busy fraction: the ideal cycles (one MAC step, or one window beat, per cycle) over the
  measured steady-state cycles per frame (target >= 0.99);
- cycles per second of the simulation (Verilator driven by cocotb, so Python per cycle sets the
  pace, not Verilator).

Run: ``make bench`` or ``.venv/bin/python bench/pe_throughput.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dataflows import numerics as nm  # noqa: E402
from rtl_templates.beats import frame_to_beats  # noqa: E402
from rtl_templates.matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit  # noqa: E402
from rtl_templates.sliding_window import SlidingWindow, SlidingWindowParams  # noqa: E402
from sim.bench import VerilatorBench  # noqa: E402

FRAMES = 12


def mvu_params(rng, cin=32, cout=32, pe=4, simd=8, side=8) -> MatrixVectorParams:
    lo, hi = nm.qrange(8, narrow=True)
    return MatrixVectorParams(
        in_bits=8, out_bits=8, weights=rng.integers(lo, hi + 1, (cout, cin)),
        bias=rng.integers(-1000, 1000, cout),
        requant=nm.RequantSpec.from_ratios(rng.uniform(1 / 400, 1 / 100, cout), -128, 127),
        wbits=8, acc_bits=nm.accumulator_bits(8, 8, cin), pe=pe, simd=simd, pixels=side * side)


def measure(bench, name, beats, out_beats, frame_out_beats, ideal_cycles_per_frame):
    start = time.perf_counter()
    result = bench.run(name, {"i": beats}, {"o": out_beats}, idle=0, backpressure=0,
                       tag="throughput")
    wall = time.perf_counter() - start
    measured = result.cycles_per_frame("o", frame_out_beats)
    total_cycles = int(result.times["o"][-1]) + 1
    return ideal_cycles_per_frame / measured, measured, total_cycles / wall, wall


def main() -> int:
    rng = np.random.default_rng(0)
    mvu = MatrixVectorUnit(mvu_params(rng))
    window = SlidingWindow(SlidingWindowParams(bits=8, channels=8, height=12, width=12, kernel=3,
                                               stride=1, padding=1, simd=4))
    bench = VerilatorBench("throughput_bench", {"mvu": mvu, "window": window})
    t0 = time.perf_counter()
    bench.build()
    print(f"Verilator build: {time.perf_counter() - t0:.1f} s (cached after the first run)")
    print(f"{'PE':<28} {'ideal c/f':>10} {'measured c/f':>13} {'busy':>7} {'sim cycles/s':>13}")

    p = mvu.params
    frames = [rng.integers(-128, 128, (8, 8, 32)) for _ in range(FRAMES)]
    beats = np.concatenate([frame_to_beats(f, p.simd) for f in frames])
    cout, taps = p.weights.shape
    ideal = p.pixels * (cout // p.pe) * (taps // p.simd)
    per_frame_out = p.pixels * cout // p.pe
    busy, measured, speed, _ = measure(bench, "mvu", beats, FRAMES * per_frame_out,
                                       per_frame_out, ideal)
    print(f"{'MatrixVectorUnit 32x32 4x8':<28} {ideal:>10} {measured:>13.1f} {busy:>7.4f} {speed:>13,.0f}")

    wp = window.params
    frames = [rng.integers(-128, 128, (12, 12, 8)) for _ in range(FRAMES)]
    beats = np.concatenate([frame_to_beats(f, wp.simd) for f in frames])
    per_frame_out = 12 * 12 * 9 * 8 // wp.simd
    busy, measured, speed, _ = measure(bench, "window", beats, FRAMES * per_frame_out,
                                       per_frame_out, per_frame_out)
    print(f"{'SlidingWindow 12x12x8 K3':<28} {per_frame_out:>10} {measured:>13.1f} {busy:>7.4f} "
          f"{speed:>13,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
