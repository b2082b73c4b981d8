"""Wall time of one SqueezeNet 1.0 inference: float reference vs integer golden model.

Prints the median of 3 runs at 224x224 and 227x227 and the int/float ratio. The integer model
must stay within 5 s per 224x224 inference on a 2-core machine (it takes well under 1 s).

    .venv/bin/python bench/golden_speed.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from dataflows.golden import run_quantized  # noqa: E402
from dataflows.quantize import quantize  # noqa: E402
from dataflows.reference import run_float  # noqa: E402
from dataflows.zoo import build  # noqa: E402

RUNS = 3
BUDGET_S = 5.0


def median_time(fn, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    print(f"SqueezeNet 1.0, one image, median of {RUNS} runs, {os.cpu_count()} CPUs")
    print(f"{'resolution':>10} {'float_s':>9} {'int_s':>9} {'int/float':>10} {'quantize_s':>11}")
    worst = 0.0
    for resolution in (224, 227):
        model = build("squeezenet", resolution=resolution)
        t0 = time.perf_counter()
        qmodel = quantize(model)      # 8 seeded calibration images
        t_quant = time.perf_counter() - t0
        x = np.random.default_rng(0).standard_normal(model.input_shape).astype(np.float32)
        xq = qmodel.quantize_input(x)
        run_float(model, x), run_quantized(qmodel, xq)   # warm up (BLAS threads, caches)
        t_float = median_time(lambda: run_float(model, x))
        t_int = median_time(lambda: run_quantized(qmodel, xq))
        worst = max(worst, t_int)
        print(f"{resolution:>10} {t_float:>9.3f} {t_int:>9.3f} {t_int / t_float:>10.2f} {t_quant:>11.2f}")
    print(f"integer model within the {BUDGET_S:.0f} s budget: {'yes' if worst <= BUDGET_S else 'NO'}")
    return 0 if worst <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
