"""Whole-network co-simulation: the generated top on Verilator against the golden model.

:func:`cosimulate` streams seeded random images through a built design twice: once with no
idle cycles and no backpressure (to measure cycles per frame and latency against the cycle
model) and once with random input gaps and output backpressure (the FIFO sizing must hold),
and compares every output integer with :func:`dataflows.golden.run_quantized`. On a mismatch
it co-simulates prefixes of the network (the graph cut after a stage) to name the first stage
whose output diverges from the golden per-layer values.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dataflows.golden import run_quantized
from hwgen.outputs import write_file_atomically
from rtl_templates.beats import frame_to_beats

from .cache import cosim_cache_dir
from .cosim import CosimError, build_cosim, run_cosim

__all__ = ["CosimReport", "cosimulate", "first_divergence"]


@dataclass
class CosimReport:
    """What ``cosim.json`` holds (the first eight keys are the stable schema)."""

    bit_exact: bool
    frames: int
    measured_cycles_per_frame: float
    estimated_cycles_per_frame: int
    cycle_error_pct: float
    measured_latency_cycles: int
    sim_seconds: float
    cycles_per_second: float
    estimated_latency_cycles: int
    backpressure_bit_exact: bool
    build_seconds: float
    latency_error_pct: float
    first_diverging_stage: str | None = None

    def write(self, path: Path) -> None:
        text = (json.dumps(asdict(self), indent=2) + "\n").encode()
        write_file_atomically(Path(path), lambda f: f.write(text))


@contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _images(qmodel, frames: int, seed: int) -> list[np.ndarray]:
    """Seeded random quantized images in the model's input range."""
    rng = np.random.default_rng(seed)
    shape = tuple(qmodel.model.input_shape)
    x = rng.standard_normal((frames, *shape))
    return [qmodel.quantize_input(f) for f in x]


def _stream(exe, emitted, images, where, **kw):
    beats = np.stack([frame_to_beats(img, emitted.in_lanes) for img in images])
    with _cwd(where):
        return run_cosim(exe, beats, in_bits=emitted.in_bits, out_lanes=emitted.out_lanes,
                         out_bits=emitted.out_bits,
                         out_beats_per_frame=emitted.out_beats_per_frame, **kw)


def _expected(qmodel, images, node: str | None = None) -> list[np.ndarray]:
    out = []
    for img in images:
        values = run_quantized(qmodel, img, keep_all=True)
        out.append(np.asarray(values[node or qmodel.model.output]).reshape(-1))
    return out


def cosimulate(build_result, *, frames: int = 3, seed: int = 0, idle: float = 0.2,
               backpressure: float = 0.3, cache_dir: Path | None = None,
               progress=None) -> CosimReport:
    """Co-simulate partition 0 of a :class:`hwgen.build.BuildResult` (a design that fits on
    chip) and write ``cosim.json`` next to its report. Verilator builds are cached in
    ``cache_dir`` (default :func:`sim.cache.cosim_cache_dir`)."""
    say = progress or (lambda msg: None)
    if len(build_result.parts) != 1:
        raise ValueError("co-simulation runs designs that fit on chip (one partition)")
    if frames < 2:
        raise ValueError(f"frames must be at least 2 to measure cycles per frame, not {frames!r}")
    out_dir = build_result.out_dir
    emitted = build_result.emitted[0]
    part = build_result.parts[0]
    q = build_result.qmodel
    cache = Path(cache_dir or cosim_cache_dir()).resolve()
    say(f"building the Verilator model of {emitted.verilog} (cached by content)")
    t0 = time.perf_counter()
    exe = build_cosim(emitted.verilog, cache).resolve()
    build_s = time.perf_counter() - t0
    images = _images(q, frames, seed)
    expected = _expected(q, images)
    pace = part.cycles_per_frame
    from hwgen.compile import stage_latency
    estimated_latency = stage_latency(part.hw)
    # Generous: squeeze-excite networks hold many frames in flight (EfficientNet-B0: ~25).
    limit = (2 * estimated_latency + pace * (frames + 4)) * 4 + 200_000
    say(f"streaming {frames} frames at full rate")
    clean = _stream(exe, emitted, images, out_dir, max_cycles=limit)
    exact = all(np.array_equal(clean.outputs[k].reshape(-1), expected[k]) for k in range(frames))
    say(f"streaming {frames} frames with idle {idle} and backpressure {backpressure}")
    rough = _stream(exe, emitted, images, out_dir, idle=idle, backpressure=backpressure,
                    seed=seed + 1, max_cycles=limit * 4)
    exact_bp = all(np.array_equal(rough.outputs[k].reshape(-1), expected[k])
                   for k in range(frames))
    measured = clean.cycles_per_frame()
    report = CosimReport(
        bit_exact=bool(exact and exact_bp), frames=frames,
        measured_cycles_per_frame=float(measured), estimated_cycles_per_frame=int(pace),
        cycle_error_pct=round(100.0 * (measured - pace) / pace, 3),
        measured_latency_cycles=int(clean.latency()),
        sim_seconds=round(clean.sim_seconds + rough.sim_seconds, 3),
        cycles_per_second=round((clean.total_cycles + rough.total_cycles)
                                / max(1e-9, clean.sim_seconds + rough.sim_seconds), 1),
        estimated_latency_cycles=estimated_latency, backpressure_bit_exact=bool(exact_bp),
        build_seconds=round(build_s, 1),
        latency_error_pct=round(100.0 * (estimated_latency - clean.latency())
                                / max(1, clean.latency()), 2))
    if not report.bit_exact:
        say("outputs differ from the golden model; locating the first diverging stage")
        report.first_diverging_stage = first_divergence(build_result, images[:2], cache)
    report.write(out_dir / "cosim.json")
    return report


def first_divergence(build_result, images, cache: Path) -> str | None:
    """Name of the first stage (in topological order) whose co-simulated output differs from
    the golden model, found by bisection over network prefixes."""
    from hwgen.emit import emit
    from hwgen.hwgraph import Op, truncated
    part = build_result.parts[0]
    q = build_result.qmodel
    order = [s for s in part.hw.stages() if s.layer and s.op is not Op.SPLIT and s.outputs == 1]

    def ok(stage) -> bool:
        hw = truncated(part.hw, stage.name)
        with tempfile.TemporaryDirectory(dir=cache.parent if cache.parent.exists() else None) as d:
            e = emit(hw, Path(d))
            try:
                run = _stream(build_cosim(e.verilog, cache).resolve(), e, images, Path(d),
                              max_cycles=part.cycles_per_frame * 20 + 200_000)
            except CosimError:
                return False
            want = _expected(q, images, stage.layer)
            return all(np.array_equal(run.outputs[k].reshape(-1), want[k])
                       for k in range(len(images)))

    lo, hi = 0, len(order) - 1      # invariant: order[hi] diverges (the whole network does)
    if not order:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(order[mid]):
            lo = mid + 1
        else:
            hi = mid
    return order[hi].name
