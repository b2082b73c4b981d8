"""Whole-network co-simulation: the generated top on Verilator against the golden model.

:func:`cosimulate` streams seeded random images through a built design twice: once with no
idle cycles and no backpressure (to measure cycles per frame and latency against the cycle
model) and once with random input gaps and output backpressure (the FIFO sizing must hold),
and compares every output integer with :func:`dataflows.golden.run_quantized`. On a mismatch
it co-simulates prefixes of the network (the graph cut after a stage) to name the first stage
whose output diverges from the golden per-layer values. A partitioned design runs partition by
partition, each fed with the previous one's co-simulated outputs.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from boards.host.frames import bytes_to_beats
from boards.host.pynq_partitions import chain_input
from dataflows.golden import run_quantized
from hwgen.outputs import write_file_atomically
from rtl_templates.beats import frame_to_beats

from .cache import cosim_cache_dir
from .cosim import CosimError, build_cosim, run_cosim

__all__ = ["CosimReport", "PartitionCosim", "cosimulate", "first_divergence", "output_layer"]


@dataclass
class PartitionCosim:
    """One partition's figures in a partitioned co-simulation."""

    index: int
    bit_exact: bool
    measured_cycles_per_frame: float
    estimated_cycles_per_frame: int
    cycle_error_pct: float
    measured_latency_cycles: int
    estimated_latency_cycles: int


@dataclass
class CosimReport:
    """What ``cosim.json`` holds (the first eight keys are the stable schema).

    For a partitioned design the cycle and latency figures add up the partitions' (they run
    one after another, each on the whole batch of frames), and ``partition_results`` gives
    each partition's."""

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
    partitions: int = 1
    partition_results: list[PartitionCosim] = field(default_factory=list)

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


def weight_load(emitted) -> np.ndarray | None:
    """The input beats of ``emitted``'s weight load (its ``weights/weight_load.bin``, the
    bytes a host sends), or None when every weight is in the bitstream."""
    if not emitted.load_beats:
        return None
    return bytes_to_beats(emitted.weight_load.read_bytes(), emitted.in_lanes, emitted.in_bits)


def _stream(exe, emitted, images, where, **kw):
    beats = np.stack([frame_to_beats(img, emitted.in_lanes) for img in images])
    with _cwd(where):
        return run_cosim(exe, beats, in_bits=emitted.in_bits, out_lanes=emitted.out_lanes,
                         out_bits=emitted.out_bits,
                         out_beats_per_frame=emitted.out_beats_per_frame,
                         load=weight_load(emitted), load_beats=emitted.load_beats,
                         ddr=emitted.ddr_regions,
                         ddr_bytes_per_cycle=emitted.ddr_bytes_per_cycle or 16.0, **kw)


def _golden(qmodel, images) -> list[dict]:
    """Every layer's golden output, per image."""
    return [run_quantized(qmodel, img, keep_all=True) for img in images]


def output_layer(hw) -> str | None:
    """The model layer whose tensor leaves ``hw`` (through any plumbing: FIFOs, forks, width
    converters), or None if none does."""
    name = hw.output[0]
    while hw.stage(name).layer is None:
        preds = list(hw.graph.predecessors(name))
        if len(preds) != 1:
            return None
        name = preds[0]
    return hw.stage(name).layer


def _wanted(golden: list[dict], hw, layer: str | None) -> list[np.ndarray] | None:
    """The golden frames a partition must output: the tensor at its cut (``layer``, or the one
    leaving ``hw``), only its channels for a part of a split layer; None if no model tensor
    leaves it."""
    layer = layer or output_layer(hw)
    if layer is None:
        return None
    c = hw.channels
    frames = [np.asarray(g[layer]) for g in golden]
    return [f[..., c.lo:c.hi] for f in frames] if c is not None else frames


def _same(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    return all(np.array_equal(g.reshape(-1), w.reshape(-1)) for g, w in zip(got, want))


def _pct(measured: float, model: float) -> float:
    return round(100.0 * (measured - model) / max(1.0, model), 3)


def cosimulate(build_result, *, frames: int = 3, seed: int = 0, idle: float = 0.2,
               backpressure: float = 0.3, cache_dir: Path | None = None,
               progress=None) -> CosimReport:
    """Co-simulate a :class:`hwgen.build.BuildResult` and write ``cosim.json`` next to its
    report. Verilator builds are cached in ``cache_dir`` (default
    :func:`sim.cache.cosim_cache_dir`).

    A partitioned design runs its partitions in order, as the board would after each
    reconfiguration: every frame through partition 0, its outputs (the activations the board
    keeps in DDR) into partition 1, and so on, once at full rate and once with gaps and
    backpressure. Each partition's output is compared with the golden model's tensor at the
    cut; the first partition that differs is searched for its first diverging stage, fed with
    the golden model's input to it."""
    say = progress or (lambda msg: None)
    if frames < 2:
        raise ValueError(f"frames must be at least 2 to measure cycles per frame, not {frames!r}")
    from hwgen.compile import partition_sources, stage_latency
    q, parts = build_result.qmodel, build_result.parts
    cache = Path(cache_dir or cosim_cache_dir()).resolve()
    images = _images(q, frames, seed)
    golden = _golden(q, images)
    sources = partition_sources([p.hw for p in parts])
    clean_out, rough_out = [], []     # each partition's output frames, (H, W, C)
    results, runs, build_s, diverging = [], [], 0.0, None
    exact = exact_bp = True
    for k, (part, emitted) in enumerate(zip(parts, build_result.emitted)):
        where = emitted.verilog.parent          # the weight files are relative to it
        named = f"partition {k} of {len(parts)} " if len(parts) > 1 else ""
        say(f"building the Verilator model of {named}{emitted.verilog} (cached by content)")
        t0 = time.perf_counter()
        exe = build_cosim(emitted.verilog, cache).resolve()
        build_s += time.perf_counter() - t0
        pace, latency = part.cycles_per_frame, stage_latency(part.hw)
        # Generous: squeeze-excite networks hold many frames in flight (EfficientNet-B0: ~25).
        limit = (2 * latency + pace * (frames + 4)) * 4 + 200_000 + 64 * emitted.load_beats
        say(f"streaming {frames} frames through {named or 'the design '}at full rate")
        # The partition's input frames as the board's host program chains them.
        in_shape = tuple(part.hw.input_shape)
        clean = _stream(exe, emitted, chain_input(images, clean_out, sources[k], in_shape), where,
                        max_cycles=limit)
        say(f"streaming {frames} frames with idle {idle} and backpressure {backpressure}")
        rough = _stream(exe, emitted, chain_input(images, rough_out, sources[k], in_shape), where,
                        idle=idle, backpressure=backpressure, seed=seed + 1 + k,
                        max_cycles=limit * 4)
        runs += [clean, rough]
        shape = tuple(part.hw.stage(part.hw.output[0]).out_shape)
        clean_out.append([o.reshape(shape) for o in clean.outputs])
        rough_out.append([o.reshape(shape) for o in rough.outputs])
        want = _wanted(golden, part.hw, q.model.output if k == len(parts) - 1 else None)
        ok = want is None or _same(clean_out[k], want)
        ok_bp = want is None or _same(rough_out[k], want)
        measured = clean.cycles_per_frame()
        results.append(PartitionCosim(
            index=k, bit_exact=bool(ok and ok_bp), measured_cycles_per_frame=float(measured),
            estimated_cycles_per_frame=int(pace), cycle_error_pct=_pct(measured, pace),
            measured_latency_cycles=int(clean.latency()), estimated_latency_cycles=latency))
        exact, exact_bp = exact and ok, exact_bp and ok_bp
        if not (ok and ok_bp):
            say(f"{named or 'the design '}differs from the golden model; locating the first "
                "diverging stage")
            feed = images[:2] if not sources[k] else [
                np.asarray(g[output_layer(parts[sources[k][0]].hw)]) for g in golden[:2]]
            diverging = first_divergence(part, q, images[:2], feed, cache)
            break
    measured = sum(r.measured_cycles_per_frame for r in results)
    pace = sum(p.cycles_per_frame for p in parts)
    latency_m = sum(r.measured_latency_cycles for r in results)
    latency_e = sum(stage_latency(p.hw) for p in parts)
    sim_s = sum(r.sim_seconds for r in runs)
    report = CosimReport(
        bit_exact=bool(exact and exact_bp and len(results) == len(parts)), frames=frames,
        measured_cycles_per_frame=float(measured), estimated_cycles_per_frame=int(pace),
        cycle_error_pct=_pct(measured, pace), measured_latency_cycles=int(latency_m),
        sim_seconds=round(sim_s, 3),
        cycles_per_second=round(sum(r.total_cycles for r in runs) / max(1e-9, sim_s), 1),
        estimated_latency_cycles=int(latency_e), backpressure_bit_exact=bool(exact_bp),
        build_seconds=round(build_s, 1),
        latency_error_pct=round(100.0 * (latency_e - latency_m) / max(1, latency_m), 2),
        first_diverging_stage=diverging, partitions=len(parts),
        partition_results=results if len(parts) > 1 else [])
    report.write(build_result.out_dir / "cosim.json")
    return report


def first_divergence(part, qmodel, images, feed, cache: Path) -> str | None:
    """Name of the first stage (in topological order) of partition ``part`` whose
    co-simulated output differs from the golden model, found by bisection over prefixes of
    the partition. ``images`` are the network's inputs (for the golden model), ``feed`` the
    partition's inputs for them."""
    from hwgen.emit import emit
    from hwgen.hwgraph import Op, truncated
    order = [s for s in part.hw.stages() if s.layer and s.op is not Op.SPLIT and s.outputs == 1]

    def ok(stage) -> bool:
        hw = truncated(part.hw, stage.name)
        with tempfile.TemporaryDirectory(dir=cache.parent if cache.parent.exists() else None) as d:
            e = emit(hw, Path(d))
            try:
                run = _stream(build_cosim(e.verilog, cache).resolve(), e, feed, Path(d),
                              max_cycles=part.cycles_per_frame * 20 + 200_000 + 64 * e.load_beats)
            except CosimError:
                return False
            c = part.hw.channels
            want = [np.asarray(values[stage.layer]) for values in _golden(qmodel, images)]
            if c is not None and stage.layer == c.layer:
                want = [w[..., c.lo:c.hi] for w in want]
            return _same(list(run.outputs), want)

    lo, hi = 0, len(order) - 1      # invariant: order[hi] diverges (the whole partition does)
    if not order:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(order[mid]):
            lo = mid + 1
        else:
            hi = mid
    return order[hi].name
