"""``hwgen build``: model + board -> Verilog, weights and a report in ``build/<model>-<board>/``."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from dataflows.quantize import QuantConfig, quantize

from .compile import Compiled, compile_model, stage_latency
from .emit import Emitted, emit
from .report import write_report
from .units import stage_resources, stage_units

__all__ = ["BuildOptions", "BuildResult", "build", "make_report"]


@dataclass(frozen=True)
class BuildOptions:
    """What to build; ``model_options`` go to :func:`dataflows.source.load_model`."""

    model: str
    board: str
    fps: float | None = None
    abits: int = 8
    wbits: int = 8
    out_dir: Path | None = None
    model_options: dict = field(default_factory=dict)
    calibration_images: int = 8


@dataclass
class BuildResult:
    out_dir: Path
    qmodel: object
    loaded: object
    board: object
    parts: list[Compiled]
    emitted: list[Emitted]
    report: dict
    seconds: float


def _stage_row(st, family) -> dict:
    units = stage_units(st)
    res = stage_resources(st, family)
    return {"name": st.name, "op": st.op.value, "pe": st.pe, "simd": st.simd,
            "cycles_per_frame": max(u.cycles_per_frame() for _, u in units),
            "latency": sum(u.latency() for _, u in units),
            "dsp": res.dsp, "bram18": res.bram18, "lut": res.lut, "ff": res.ff}


def _multipliers(hw) -> int:
    total = 0
    for st in hw.stages():
        if st.op.computes:
            unit = stage_units(st)[-1][1]
            total += unit.multipliers() if hasattr(unit, "multipliers") else st.pe * st.simd
    return total


def make_report(model_name: str, board, model, parts: list[Compiled], abits: int) -> dict:
    """The report dict (schema of :mod:`hwgen.report`) of compiled partitions."""
    clock = float(board.clock_mhz)
    cycles = sum(p.cycles_per_frame for p in parts)
    fps = clock * 1e6 / cycles
    mults = max(_multipliers(p.hw) for p in parts)
    # Each partition's multipliers work only during its own share of the frame time.
    busy = sum(_multipliers(p.hw) * p.cycles_per_frame for p in parts)
    macs = model.macs
    used = {k: max(getattr(p.resources, k) for p in parts) for k in ("dsp", "bram18", "lut", "ff")}
    avail = board.available()
    inp, out = model.input_shape, model.output_shape
    to_mb = abits / 8 * fps / 1e6
    ddr_bytes = 0.0
    details = []
    for k, p in enumerate(parts):
        cut_in = p.hw.input_shape if k else None
        moved = (cut_in.h * cut_in.w * cut_in.c * abits / 8) * 2 if cut_in else 0.0
        ddr_bytes += moved
        details.append({"index": k, "stages": [s.name for s in p.hw.stages()],
                        "cycles_per_frame": p.cycles_per_frame,
                        "resources": {f: getattr(p.resources, f) for f in used},
                        "ddr_bytes_per_frame": int(moved)})
    stages = [_stage_row(st, board.family) for p in parts for st in p.hw.stages()]
    latency = sum(stage_latency(p.hw) for p in parts)
    report = {
        "model": model_name, "board": board.name, "clock_mhz": clock,
        "cycles_per_frame": int(cycles), "latency_cycles": int(latency), "fps": round(fps, 3),
        "mac_efficiency": round(macs / busy, 4) if busy else 0.0,
        "fits_on_chip": len(parts) == 1, "partitions": len(parts),
        "resources": {"used": used, "available": {"dsp": avail.dsp, "bram18": avail.bram18,
                                                  "lut": avail.lut, "ff": avail.ff}},
        "bandwidth": {"input_mbps": round(inp.h * inp.w * inp.c * to_mb, 3),
                      "output_mbps": round(out.h * out.w * out.c * to_mb, 3),
                      "ddr_mbps": round(ddr_bytes * fps / 1e6, 3)},
        "stages": stages,
        "latency_ms": round(latency / (clock * 1e3), 4),
        "total_macs": int(macs), "multipliers": int(mults),
        "utilization_cap": board.utilization_cap,
        "limited_by": parts[0].fold.limited_by,
    }
    if len(parts) > 1:
        report["partition_details"] = details
    return report


def build(opts: BuildOptions, progress=None) -> BuildResult:
    """Compile and emit; write Verilog, weights and the report. Progress goes to ``progress``."""
    from boards import get_board
    from dataflows.source import load_model

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    board = get_board(opts.board)
    loaded = load_model(opts.model, **opts.model_options)
    model = loaded.model
    say(f"model {model.name}: {model.params:,} params, {model.macs / 1e6:.1f}M MACs, "
        f"input {tuple(model.input_shape)}")
    q = quantize(model, QuantConfig(abits=opts.abits, wbits=opts.wbits,
                                    calibration_images=opts.calibration_images))
    say(f"quantized to int{opts.abits} activations, int{opts.wbits} weights")
    with warnings.catch_warnings():
        # Resource models build sub-units only to ask them for figures.
        warnings.filterwarnings("ignore", message=".*created but never used")
        parts = compile_model(q, board, fps=opts.fps, progress=say)
        name = Path(opts.model).stem if opts.model.endswith(".onnx") else opts.model
        out_dir = Path(opts.out_dir or Path("build") / f"{name}-{board.name}")
        report = make_report(name, board, model, parts, opts.abits)
        say(f"pace {report['cycles_per_frame']:,} cycles/frame = {report['fps']:.1f} fps at "
            f"{board.clock_mhz:g} MHz, MAC efficiency {report['mac_efficiency']:.3f}, "
            f"DSP {report['resources']['used']['dsp']}, BRAM18 "
            f"{report['resources']['used']['bram18']}")
        emitted = []
        for k, part in enumerate(parts):
            where = out_dir if len(parts) == 1 else out_dir / f"partition{k}"
            say(f"emitting Verilog to {where}/")
            emitted.append(emit(part.hw, where, header=(
                f"hwgen: {name} on {board.name} ({board.part})"
                + (f", partition {k} of {len(parts)}" if len(parts) > 1 else "")
                + f"\n{len(part.hw.graph)} stages, {part.cycles_per_frame} cycles per frame")))
    report["top"] = [{"verilog": str(e.verilog.relative_to(out_dir)), "in_lanes": e.in_lanes,
                      "in_bits": e.in_bits, "in_beats_per_frame": e.in_beats_per_frame,
                      "out_lanes": e.out_lanes, "out_bits": e.out_bits,
                      "out_beats_per_frame": e.out_beats_per_frame} for e in emitted]
    write_report(report, out_dir)
    (out_dir / "build.json").write_text(json.dumps(
        {"model": opts.model, "board": board.name, "fps": opts.fps, "abits": opts.abits,
         "wbits": opts.wbits, "model_options": opts.model_options}, indent=2) + "\n")
    seconds = time.perf_counter() - start
    say(f"wrote {out_dir}/ (report.md, report.json, hwgen_top.v, weights/) in {seconds:.1f} s")
    return BuildResult(out_dir, q, loaded, board, parts, emitted, report, seconds)

