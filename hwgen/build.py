"""``hwgen build``: model + board -> Verilog, weights and a report in ``build/<model>-<board>/``."""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from dataflows.quantize import QuantConfig, quantize
from rtl_templates.resources import RESOURCE_FIELDS, MemoryStyle

from .capacity import check_layers_fit
from .compile import (Compiled, compile_model, partition_ddr_bytes, partition_ddr_cycles,
                      DdrWeights, require_ddr, require_uram, stage_latency)
from .emit import Emitted, emit
from .hwgraph import Op
from .outputs import check_output_dir, replacing_dir
from .report import reconfiguration_note, write_report
from .units import stage_resources, stage_units

__all__ = ["BuildOptions", "BuildResult", "Design", "NotOnChipError", "build", "compile_design",
           "make_report", "options_record", "BUILD_MARKER"]

#: The file that marks a folder as a build's (a later build may replace such a folder whole).
BUILD_MARKER = "build.json"


class NotOnChipError(ValueError):
    """The design needs several partitions where one was required (a board flow whose shell
    and host program run one bitstream). ``why`` says whose requirement it is."""

    def __init__(self, partitions: int, board: str, why: str = "one partition was asked for"):
        self.partitions, self.board = partitions, board
        super().__init__(f"the design needs {partitions} partitions on {board}; {why} (try "
                         "--resolution, --width, --fps or a larger board; `hwgen cosim` "
                         "verifies partitioned designs)")


@dataclass(frozen=True)
class BuildOptions:
    """What to build; ``model_options`` go to :func:`dataflows.source.load_model`.

    ``on_chip_only`` stops the build before anything is written when the design needs more
    than one partition. ``batch`` is the number of frames a partitioned design runs through
    each partition before the next partition's bitstream is loaded (default 1): its fps counts
    one reconfiguration per partition per batch. ``uram_weights`` puts every weight memory
    that would take block RAM into URAM (loaded through the weight-load path at start, so
    the weights can be replaced at run time); the board must have URAM. ``ddr_weights`` says
    which layers read their weights from the board's DDR every frame
    (:class:`hwgen.compile.DdrWeights`).

    Raises
    ------
    ValueError
        If ``fps`` is not a positive finite number, the bit widths are outside 4..8, or
        ``calibration_images`` or ``batch`` is not positive.
    """

    model: str
    board: str
    fps: float | None = None
    abits: int = 8
    wbits: int = 8
    out_dir: Path | None = None
    model_options: dict = field(default_factory=dict)
    calibration_images: int = 8
    on_chip_only: bool = False
    batch: int | None = None
    uram_weights: bool = False
    ddr_weights: DdrWeights = DdrWeights.AUTO

    def __post_init__(self):
        if self.fps is not None and not (isinstance(self.fps, (int, float))
                                         and math.isfinite(self.fps) and self.fps > 0):
            raise ValueError(f"fps must be a positive finite number, not {self.fps!r}")
        for name in ("abits", "wbits"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 4 <= value <= 8:
                raise ValueError(f"{name} must be an int from 4 to 8, not {value!r}")
        if self.batch is not None and (isinstance(self.batch, bool)
                                       or not isinstance(self.batch, int) or self.batch < 1):
            raise ValueError(f"batch must be a positive int, not {self.batch!r}")
        if not isinstance(self.calibration_images, int) or self.calibration_images < 1:
            raise ValueError(f"calibration_images must be a positive int, "
                             f"not {self.calibration_images!r}")

    @property
    def design_name(self) -> str:
        """The model's name in folder names and reports (an ONNX file's stem)."""
        return Path(self.model).stem if self.model.lower().endswith(".onnx") else self.model

    def output_dir(self, board_name: str, suffix: str = "") -> Path:
        """``out_dir``, or ``build/<model>-<board><suffix>`` if it is not given."""
        return Path(self.out_dir or Path("build") / f"{self.design_name}-{board_name}{suffix}")


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


def _weight_memory(mvu, family) -> str:
    """Where a matrix-vector unit's weights are: "uram", "ddr", "bram", "lut" or "constants"."""
    p = mvu.params
    if p.groups * p.steps == 1:
        return "constants"
    if p.weight_style is MemoryStyle.ULTRA:
        return "uram"
    if p.weight_style is MemoryStyle.DDR:
        return "ddr"
    return "bram" if mvu.weight_memory_resources(family).bram18 else "lut"


def _stage_row(st, family) -> dict:
    units = stage_units(st)
    res = stage_resources(st, family)
    row = {"name": st.name, "op": st.op.value, "pe": st.pe, "simd": st.simd,
           "cycles_per_frame": max(u.cycles_per_frame() for _, u in units),
           "latency": sum(u.latency() for _, u in units),
           "dsp": res.dsp, "bram18": res.bram18, "lut": res.lut, "ff": res.ff,
           "uram": res.uram}
    if st.op in (Op.CONV, Op.FC):
        mvu = units[-1][1]
        row["weights"] = _weight_memory(mvu, family)
        if row["weights"] == "ddr":
            row["ddr_bytes_per_frame"] = mvu.ddr_bytes_per_frame()
    return row


def _multipliers(hw) -> int:
    total = 0
    for st in hw.stages():
        if st.op.computes:
            unit = stage_units(st)[-1][1]
            total += unit.multipliers() if hasattr(unit, "multipliers") else st.pe * st.simd
    return total


def frame_rate(clock_mhz: float, cycles_per_frame: int, partitions: int,
               reconfiguration_s: float | None, batch: int) -> float:
    """Frames per second of a design whose partitions run one after another.

    One partition stays loaded: ``clock / cycles``. With several, each batch of ``batch``
    frames goes through partition 0, then partition 1's bitstream is loaded, and so on, so a
    batch takes ``partitions * reconfiguration_s + batch * cycles / clock``; with the
    reconfiguration time unknown (None) it is left out.
    """
    compute_s = cycles_per_frame / (clock_mhz * 1e6)
    if partitions == 1 or reconfiguration_s is None:
        return 1 / compute_s
    return batch / (partitions * reconfiguration_s + batch * compute_s)


def _reconfiguration(board, batch: int | None) -> dict:
    """``report["reconfiguration"]`` of a partitioned design on ``board``."""
    seconds = board.reconfiguration_seconds
    return {"seconds_per_partition": None if seconds is None else round(seconds, 6),
            "bitstream_bits": board.bitstream_bits or None,
            "config_gbps": board.config_gbps or None,
            "batch": batch or 1, "batch_given": batch is not None,
            "included": seconds is not None}


def make_report(model_name: str, board, model, parts: list[Compiled], abits: int,
                batch: int | None = None) -> dict:
    """The report dict (schema of :mod:`hwgen.report`) of compiled partitions.

    A partition reads its input from DDR and writes its output there (unless they are the
    network's); at the board's DDR bandwidth that takes ``ddr_cycles``, and a partition whose
    compute is faster than that runs at its DDR pace (``ddr_limited``): the frame's cycles are
    each partition's larger figure. (The co-simulation's memory is as fast as the design, so
    it checks the compute cycles.) A partitioned design's ``fps`` also counts loading each
    partition's bitstream once per ``batch`` frames (:func:`frame_rate`; ``reconfiguration``
    says how long that takes and whether it is known)."""
    clock = float(board.clock_mhz)
    graphs = [p.hw for p in parts]
    moved = partition_ddr_bytes(graphs, abits)
    ddr_cycles = partition_ddr_cycles(graphs, abits, board)
    paces = [max(p.cycles_per_frame, d) for p, d in zip(parts, ddr_cycles)]
    cycles = sum(paces)
    reconfiguration = _reconfiguration(board, batch) if len(parts) > 1 else None
    fps = frame_rate(clock, cycles, len(parts),
                     reconfiguration and reconfiguration["seconds_per_partition"],
                     reconfiguration["batch"] if reconfiguration else 1)
    mults = max(_multipliers(p.hw) for p in parts)
    # Each partition's multipliers work only during its own share of the frame time.
    busy = sum(_multipliers(p.hw) * p.cycles_per_frame for p in parts)
    macs = model.macs
    used = {k: max(getattr(p.resources, k) for p in parts) for k in RESOURCE_FIELDS}
    avail = board.available()
    inp, out = model.input_shape, model.output_shape
    to_mb = abits / 8 * fps / 1e6
    details = []
    for k, p in enumerate(parts):
        detail = {"index": k, "stages": [s.name for s in p.hw.stages()],
                  "cycles_per_frame": p.cycles_per_frame,
                  "resources": {f: getattr(p.resources, f) for f in used},
                  "ddr_bytes_per_frame": int(moved[k]), "ddr_cycles": ddr_cycles[k],
                  "ddr_mbps": round(moved[k] * clock / paces[k], 3)}
        if p.hw.channels is not None:
            c = p.hw.channels
            detail["channels"] = {"layer": c.layer, "lo": c.lo, "hi": c.hi, "of": c.of}
        details.append(detail)
    ddr_bytes = sum(moved)
    stages = [_stage_row(st, board.family) for p in parts for st in p.hw.stages()]
    weight_bytes = sum(s.get("ddr_bytes_per_frame", 0) for s in stages)   # streamed weights
    latency = sum(stage_latency(p.hw) for p in parts)
    report = {
        "model": model_name, "board": board.name, "clock_mhz": clock,
        "cycles_per_frame": int(cycles), "latency_cycles": int(latency), "fps": round(fps, 3),
        "mac_efficiency": round(macs / busy, 4) if busy else 0.0,
        "fits_on_chip": len(parts) == 1, "partitions": len(parts),
        "resources": {"used": used,
                      "available": {k: getattr(avail, k) for k in RESOURCE_FIELDS}},
        "bandwidth": {"input_mbps": round(inp.h * inp.w * inp.c * to_mb, 3),
                      "output_mbps": round(out.h * out.w * out.c * to_mb, 3),
                      "ddr_mbps": round((ddr_bytes + weight_bytes) * fps / 1e6, 3),
                      "ddr_weight_bytes_per_frame": int(weight_bytes),
                      "board_ddr_mbps": round(board.ddr_gbps * 1e3, 3)},
        "stages": stages,
        "latency_ms": round(latency / (clock * 1e3), 4),
        "total_macs": int(macs), "multipliers": int(mults),
        "utilization_cap": board.utilization_cap,
        # The partition with the most cycles per frame sets most of the frame time.
        "limited_by": max(parts, key=lambda p: p.cycles_per_frame).fold.limited_by,
    }
    if len(parts) > 1:
        report["partition_details"] = details
        reconfiguration["fps_without_reconfiguration"] = round(clock * 1e6 / cycles, 3)
        report["reconfiguration"] = reconfiguration
        limited = [k for k, p in enumerate(parts) if paces[k] > p.cycles_per_frame]
        if limited:
            report["ddr_limited"] = limited
    return report


@dataclass
class Design:
    """A compiled design before anything is written: what ``build`` emits and ``estimate``
    reports."""

    board: object
    loaded: object
    qmodel: object
    parts: list[Compiled]
    report: dict


def compile_design(opts: BuildOptions, board, progress=None) -> Design:
    """Load, quantize, fold and partition ``opts.model`` for ``board``; make its report.

    Raises
    ------
    FitError
        A layer or the design does not fit the board (``hwgen.compile`` says by how much).
    NotOnChipError
        With ``opts.on_chip_only``, if the design needs partitions.
    """
    from dataflows.source import load_model

    say = progress or (lambda msg: None)
    if opts.uram_weights:
        require_uram(board)           # before the model is loaded and quantized
    if opts.ddr_weights is DdrWeights.FC:
        require_ddr(board)
    loaded = load_model(opts.model, **opts.model_options)
    model = loaded.model
    say(f"model {model.name}: {model.params:,} params, {model.macs / 1e6:.1f}M MACs, "
        f"input {tuple(model.input_shape)}")
    check_layers_fit(model, board, abits=opts.abits, wbits=opts.wbits)   # before calibration
    q = quantize(model, QuantConfig(abits=opts.abits, wbits=opts.wbits,
                                    calibration_images=opts.calibration_images))
    say(f"quantized to int{opts.abits} activations, int{opts.wbits} weights")
    with warnings.catch_warnings():
        # Resource models build sub-units only to ask them for figures.
        warnings.filterwarnings("ignore", message=".*created but never used")
        parts = compile_model(q, board, fps=opts.fps, batch=opts.batch, progress=say,
                              uram_weights=opts.uram_weights, ddr_weights=opts.ddr_weights)
        if opts.on_chip_only and len(parts) > 1:
            raise NotOnChipError(len(parts), board.name)
        report = make_report(opts.design_name, board, model, parts, opts.abits, opts.batch)
    used = report["resources"]["used"]
    say(f"pace {report['cycles_per_frame']:,} cycles/frame = {report['fps']:.1f} fps at "
        f"{board.clock_mhz:g} MHz, MAC efficiency {report['mac_efficiency']:.3f}, "
        f"DSP {used['dsp']}, BRAM18 {used['bram18']}"
        + (f", {len(parts)} partitions" if len(parts) > 1 else "") + reconfiguration_note(report))
    return Design(board, loaded, q, parts, report)


def options_record(opts: BuildOptions, board_name: str) -> str:
    """The options a build or estimate was made with, as the JSON of its marker file."""
    return json.dumps({"model": opts.model, "board": board_name, "fps": opts.fps,
                       "abits": opts.abits, "wbits": opts.wbits, "batch": opts.batch,
                       "model_options": opts.model_options}, indent=2) + "\n"


def build(opts: BuildOptions, progress=None) -> BuildResult:
    """Compile and emit; write Verilog, weights and the report. Progress goes to ``progress``.

    The output folder is checked before any work and written whole at the end: the files go
    to a private folder that then replaces ``out_dir`` (an earlier build there is replaced,
    never mixed with; a failed or interrupted build leaves ``out_dir`` as it was).

    Raises
    ------
    hwgen.outputs.OutputError
        If the output folder is a file, holds files no build wrote, or cannot be written.
    FitError, NotOnChipError
        As :func:`compile_design`.
    """
    from boards import get_board

    say = progress or (lambda msg: None)
    start = time.perf_counter()
    board = get_board(opts.board)
    name = opts.design_name
    out_dir = opts.output_dir(board.name)
    check_output_dir(out_dir, "output folder", owned_by=BUILD_MARKER)
    design = compile_design(opts, board, say)
    parts, report = design.parts, design.report
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*created but never used")
        with replacing_dir(out_dir) as work:
            emitted = []
            for k, part in enumerate(parts):
                where = "" if len(parts) == 1 else f"partition{k}"
                say(f"emitting Verilog to {out_dir / where}/")
                emitted.append(emit(part.hw, work / where, header=(
                    f"hwgen: {name} on {board.name} ({board.part})"
                    + (f", partition {k} of {len(parts)}" if len(parts) > 1 else "")
                    + f"\n{len(part.hw.graph)} stages, {part.cycles_per_frame} cycles per frame")))
            report["top"] = [{"verilog": str(e.verilog.relative_to(work)), "in_lanes": e.in_lanes,
                              "in_bits": e.in_bits, "in_beats_per_frame": e.in_beats_per_frame,
                              "out_lanes": e.out_lanes, "out_bits": e.out_bits,
                              "out_beats_per_frame": e.out_beats_per_frame,
                              "load_beats": e.load_beats,
                              "weight_load": (None if e.weight_load is None
                                              else str(e.weight_load.relative_to(work))),
                              "ddr_regions": [str(f.relative_to(work)) for f in e.ddr_regions]}
                             for e in emitted]
            write_report(report, work)
            (work / BUILD_MARKER).write_text(options_record(opts, board.name))
    emitted = [_moved(e, work, out_dir) for e in emitted]
    seconds = time.perf_counter() - start
    design_files = ("hwgen_top.v, weights/" if len(parts) == 1
                    else f"partition0/ .. partition{len(parts) - 1}/, each hwgen_top.v and "
                    "weights/")
    say(f"wrote {out_dir}/ (report.md, report.json, {design_files}) in {seconds:.1f} s")
    return BuildResult(out_dir, design.qmodel, design.loaded, board, parts, emitted, report,
                       seconds)


def _moved(e: Emitted, old: Path, new: Path) -> Emitted:
    """``e`` with its paths under ``old`` moved to ``new``."""
    return dataclasses.replace(
        e, verilog=new / e.verilog.relative_to(old),
        weight_files=[new / f.relative_to(old) for f in e.weight_files],
        weight_load=None if e.weight_load is None else new / e.weight_load.relative_to(old),
        ddr_regions=tuple(new / f.relative_to(old) for f in e.ddr_regions))
