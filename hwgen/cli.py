"""The ``hwgen`` command line.

Every user mistake (unknown model, bad option, unreadable file, unsupported ONNX node) ends in
one line on stderr and exit code 2; a traceback means a bug in hwgen.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np

from dataflows.golden import DUMP_INDEX
from dataflows.zoo import MODELS
from sim.cache import CACHE_ENV, cosim_cache_dir

from .report import RESOURCE_KEYS

from .outputs import (OutputError, check_output_dir, check_output_file, check_writable_dir,
                      replacing_dir, write_file_atomically)

__all__ = ["main"]

EXIT_USAGE = 2
#: The shell's code for a command ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130

DESCRIPTION = """\
hwgen turns a compact CNN (a zoo model or an ONNX file) into a streaming FPGA dataflow
accelerator and verifies it bit-exactly against a numpy golden model.

MODEL is one of: {models}; or a path to a float .onnx file.
"""

EPILOG = """\
examples:
  hwgen summary squeezenet                      per-layer shapes, params, MACs
  hwgen summary mobilenet_v1 --width 0.5 --resolution 160 --json
  hwgen golden squeezenet --input x.npy --output y.npy --dump-dir layers/
  hwgen export-onnx shufflenet_v2 shufflenet_v2.onnx
  hwgen estimate squeezenet1_1 --board zcu104    folding and figures in seconds, no Verilog
  hwgen estimate mobilenet_v1 --board u250 --fps 2000 --json
  hwgen build squeezenet --board vc707           Verilog, weights, report in build/squeezenet-vc707/
  hwgen cosim squeezenet1_1 --board vc707 --resolution 64
  hwgen bitstream mobilenet_v1 --width 0.125 --resolution 32 --fps 5 --board ecp5-85f
                                                a real ECP5 bitstream from PyPI tools
"""


class UserError(Exception):
    """A mistake in the command line or its inputs: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser with its errors on one line (the usage is what ``--help`` is for)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# -- option types: each says what is valid when a value is not ----------------------------------
def option_type(parse: Callable[[str], object], valid: Callable[[object], bool],
                what: str) -> Callable[[str], object]:
    """An argparse ``type=`` that parses with ``parse`` and accepts values ``valid`` holds
    for; anything else is "must be {what}, not '...'"."""
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value
    return convert


MAX_SEED = 2**32 - 1

positive_int = option_type(int, lambda v: v >= 1, "a positive integer")
bit_width = option_type(int, lambda v: 4 <= v <= 8, "an integer from 4 to 8")
positive_number = option_type(float, lambda v: math.isfinite(v) and v > 0,
                              "a positive finite number")
frame_count = option_type(int, lambda v: v >= 2, "an integer of at least 2 (cycles per frame "
                          "are measured between frames)")
seed = option_type(int, lambda v: 0 <= v <= MAX_SEED, f"an integer from 0 to {MAX_SEED}")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="zoo model name or path to an .onnx file")
    g = p.add_argument_group("zoo model options (an option the model does not take is an error)")
    g.add_argument("--width", type=positive_number, help="width multiplier α (MobileNet) or scale "
                   "(ShuffleNet: V1 0.25-2.0, V2 0.5/1.0/1.5/2.0)")
    g.add_argument("--resolution", type=positive_int, help="input height = width in pixels")
    g.add_argument("--groups", type=positive_int, help="ShuffleNet V1 group count g (1, 2, 3, 4, 8)")
    g.add_argument("--num-classes", type=positive_int, help="classifier outputs (default 1000)")


def _add_build_args(p: argparse.ArgumentParser) -> None:
    """The options of every command that builds (build, cosim, bitstream)."""
    p.add_argument("--board", required=True, help="target board (vc707, zcu104, zcu102, "
                   "pynq-z2, ultra96, u250, ecp5-85f)")
    p.add_argument("--fps", type=positive_number, help="frames per second to reach with the least "
                   "hardware (default: as fast as the budget allows)")
    p.add_argument("--abits", type=bit_width, default=8, help="activation bits (4-8, default 8)")
    p.add_argument("--wbits", type=bit_width, default=8, help="weight bits (4-8, default 8)")
    p.add_argument("--batch", type=positive_int, help="frames each partition of a partitioned "
                   "design runs before the next one's bitstream is loaded; its fps counts one "
                   "reconfiguration per partition per batch (default 1)")
    p.add_argument("--uram-weights", action="store_true", help="put every weight memory that "
                   "would take block RAM into URAM (UltraScale+ boards), written at start through "
                   "the weight-load path: the weights become replaceable at run time")
    p.add_argument("--ddr-weights", choices=["auto", "fc", "off"], default="auto",
                   help="which layers read their weights from the board's DDR every frame (an "
                   "AXI4 read port each): auto (default) those of least reuse a design needs "
                   "to fit one bitstream, if streaming makes it fit; fc every fully connected "
                   "layer; off none (a design too large is partitioned)")
    p.add_argument("--out", metavar="DIR", help="output directory (default "
                   "build/<model>-<board>), replaced whole: new, empty or an earlier build's")


def _load(args, *, weights: bool = True):
    from dataflows.source import ModelSourceError, load_model
    try:
        return load_model(args.model, weights=weights, width=args.width,
                          resolution=args.resolution, groups=args.groups,
                          num_classes=args.num_classes)
    except ModelSourceError as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:  # a builder or importer rejected the model: say which
        raise UserError(f"{args.model}: {exc}") from None


def _progress(message: str) -> None:
    print(f"[hwgen] {message}", file=sys.stderr, flush=True)


# -- summary ----------------------------------------------------------------------------------
def _weight_bytes(model, name: str, wbits: int) -> int:
    layer = model.layer(name)
    shape = layer.weight_shape(model.input_shapes(name))
    if shape is None:
        return 0
    n_weights = int(np.prod(shape))
    n_bias = shape[0] if getattr(layer, "bias", False) else 0
    return -(-n_weights * wbits // 8) + 4 * n_bias  # biases are int32, see docs/numerics.md


def _fmt_kernel(kernel):
    return "-" if kernel is None else f"{kernel[0]}x{kernel[1]}"


def _note_unsupported(model) -> None:
    """Say which nodes ``hwgen build`` would refuse (summary and golden take any graph)."""
    from .lower import unsupported_nodes
    for line in unsupported_nodes(model):
        print(f"[hwgen] note: hardware cannot build {line}", file=sys.stderr)


def cmd_summary(args) -> int:
    model = _load(args, weights=False).model   # counts need shapes only
    _note_unsupported(model)
    if args.json:
        rows = model.summary()
        doc = {
            "model": model.name,
            "input_shape": list(model.input_shape),
            "layers": [{"name": r.name, "op": r.op,
                        "kernel": list(r.kernel) if r.kernel else None,
                        "groups": r.groups, "out_shape": list(r.out_shape),
                        "params": r.params, "macs": r.macs} for r in rows],
            "total": {"params": model.params, "macs": model.macs},
        }
        print(json.dumps(doc))
    else:
        print_summary_table(model, args.wbits)
    return 0


def print_summary_table(model, wbits: int) -> None:
    rows = model.summary()
    wbytes = {r.name: _weight_bytes(model, r.name, wbits) for r in rows}
    width = max(len("layer"), *(len(r.name) for r in rows))
    header = (f"{'layer':<{width}}  {'op':<15} {'kernel':>6} {'groups':>6} {'output HxWxC':>14} "
              f"{'params':>10} {'MACs':>13} {'weight B':>10}")
    h, w, c = model.input_shape
    print(f"{model.name}: input {h}x{w}x{c}, weights {wbits}-bit, int32 bias")
    print(header)
    print("-" * len(header))
    for r in rows:
        shape = "x".join(str(v) for v in r.out_shape)
        groups = "-" if r.groups is None else str(r.groups)
        print(f"{r.name:<{width}}  {r.op:<15} {_fmt_kernel(r.kernel):>6} {groups:>6} {shape:>14} "
              f"{r.params:>10,} {r.macs:>13,} {wbytes[r.name]:>10,}")
    print("-" * len(header))
    total_b = sum(wbytes.values())
    print(f"{'total':<{width}}  {'':<15} {'':>6} {'':>6} {'':>14} {model.params:>10,} "
          f"{model.macs:>13,} {total_b:>10,}")
    print(f"{len(rows)} layers; {model.params / 1e6:.3f} M params; {model.macs / 1e6:.1f} M MACs "
          f"({2 * model.macs / 1e9:.3f} GOPs); weights {total_b / 2**20:.2f} MiB")


# -- golden -----------------------------------------------------------------------------------
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _read_npy(path: str, what: str) -> np.ndarray:
    """A real-valued, finite array from the .npy file ``path``, or one line saying why not."""
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_NPY_MAGIC))
            if magic[:4] == _ZIP_MAGIC:
                raise UserError(f"{what} file {path!r} is a .npz archive; give one array "
                                "saved with numpy.save (.npy)")
            if magic != _NPY_MAGIC:
                raise UserError(f"{what} file {path!r} is not a .npy file (it does not start "
                                "with the NumPy header); save the array with numpy.save")
            f.seek(0)
            x = np.load(f, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{what} file {path!r} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{what} file {path!r} is a folder") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {what} file {path!r} as .npy: {exc}") from None
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise UserError(f"{what} file {path!r} holds {x.dtype} values; it must hold real "
                        "numbers (integers or floats)")
    bad = np.count_nonzero(~np.isfinite(x)) if np.issubdtype(x.dtype, np.floating) else 0
    if bad:
        first = tuple(int(i) for i in np.argwhere(~np.isfinite(x))[0])
        raise UserError(f"{what} file {path!r} holds {bad:,} NaN or infinite values (the "
                        f"first at index {first})")
    return x


def _save_npy(path: str, array: np.ndarray) -> None:
    write_file_atomically(Path(path), lambda f: np.save(f, array))


def cmd_golden(args) -> int:
    from dataflows.golden import dump_layers, run_quantized
    from dataflows.quantize import QuantConfig, quantize
    from dataflows.reference import run_float

    try:   # every destination before any work
        check_output_file(Path(args.output), "--output")
        if args.dump_dir is not None:
            check_output_dir(Path(args.dump_dir), "--dump-dir", owned_by=DUMP_INDEX)
    except OutputError as exc:
        raise UserError(str(exc)) from None
    raw = _read_npy(args.input, "input")
    calibration = _read_npy(args.calibration, "calibration") if args.calibration else None
    loaded = _load(args)
    model = loaded.model
    _note_unsupported(model)
    try:
        x = loaded.to_hwc(raw)
        calibration = None if calibration is None else [loaded.to_hwc(c) for c in calibration]
    except ValueError as exc:
        raise UserError(str(exc)) from None
    t0 = time.perf_counter()
    keep = args.dump_dir is not None
    if args.float:
        _progress(f"running float model {model.name}")
        result = run_float(model, x, keep_all=keep)
        values, scales = (result, None) if keep else ({model.output: result}, None)
        y = values[model.output]
    else:
        images = "supplied images" if calibration is not None else "seeded random inputs"
        _progress(f"quantizing {model.name}: {args.abits}-bit activations, {args.wbits}-bit "
                  f"weights, calibration on {images}")
        try:
            qmodel = quantize(model, QuantConfig(abits=args.abits, wbits=args.wbits),
                              calibration=calibration)
        except ValueError as exc:
            raise UserError(f"quantization failed: {exc}") from None
        _progress("running the integer golden model")
        result = run_quantized(qmodel, qmodel.quantize_input(x), keep_all=keep)
        values = result if keep else {model.output: result}
        y = values[model.output]
        scales = qmodel
    _progress(f"inference took {time.perf_counter() - t0:.2f} s")
    out = loaded.from_hwc(y)
    _save_npy(args.output, out)
    _progress(f"wrote {args.output} {out.shape} {out.dtype}")
    if keep:
        with replacing_dir(Path(args.dump_dir)) as work:
            dump_layers(values, work, scales)
        _progress(f"wrote {len(values)} layer outputs to {args.dump_dir}/")
    return 0


# -- export-onnx ------------------------------------------------------------------------------
def cmd_export_onnx(args) -> int:
    from dataflows.onnx_export import export_onnx
    try:
        check_output_file(Path(args.out), "output file")
    except OutputError as exc:
        raise UserError(str(exc)) from None
    loaded = _load(args)
    if loaded.origin != "zoo":
        raise UserError("export-onnx takes a zoo model name; the model is already ONNX")
    write_file_atomically(Path(args.out), lambda f: export_onnx(loaded.model, f))
    _progress(f"wrote {args.out}")
    return 0


# -- build ------------------------------------------------------------------------------------
def _model_options(args) -> dict:
    return {k: v for k, v in (("width", args.width), ("resolution", args.resolution),
                              ("groups", args.groups), ("num_classes", args.num_classes))
            if v is not None}


def _build_options(args):
    from .build import BuildOptions
    from .compile import DdrWeights
    return BuildOptions(model=args.model, board=args.board, fps=args.fps, abits=args.abits,
                        wbits=args.wbits, batch=args.batch, out_dir=args.out,
                        model_options=_model_options(args), uram_weights=args.uram_weights,
                        ddr_weights=DdrWeights(args.ddr_weights))


@contextmanager
def _build_errors(args):
    """A build's user mistakes as one-line :class:`UserError` s."""
    from boards import UnknownBoardError
    from dataflows.source import ModelSourceError
    from .build import NotOnChipError
    from .compile import FitError, PaceUnreachableError
    from .lower import LoweringError
    try:
        yield
    except (UnknownBoardError, ModelSourceError, LoweringError, OutputError) as exc:
        raise UserError(str(exc)) from None
    except (PaceUnreachableError, NotOnChipError) as exc:
        raise UserError(f"{args.model} on {args.board}: {exc}") from None
    except FitError as exc:
        raise UserError(f"{args.model} does not fit {args.board}: {exc}") from None
    except ValueError as exc:  # a builder rejected an option
        raise UserError(f"{args.model}: {exc}") from None


def _build(args):
    from .build import build
    with _build_errors(args):
        return build(_build_options(args), progress=_progress)


def cmd_build(args) -> int:
    _build(args)
    return 0


def cmd_estimate(args) -> int:
    from .estimate import estimate
    from .report import reconfiguration_note
    # With --json, stdout carries the report alone; the progress lines stay on stderr.
    with _build_errors(args):
        done = estimate(_build_options(args), progress=_progress)
    r = done.report
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
        return 0
    used, avail = r["resources"]["used"], r["resources"]["available"]
    print(f"{r['model']} on {r['board']}: {r['fps']:,.1f} fps at {r['clock_mhz']:g} MHz "
          f"({r['cycles_per_frame']:,} cycles/frame, {r['partitions']} partition"
          f"{'s' if r['partitions'] > 1 else ''}), MAC efficiency {r['mac_efficiency']:.3f}, "
          f"limited by {r['limited_by']}{reconfiguration_note(r)}")
    print("  " + ", ".join(f"{k.upper() if k != 'bram18' else 'BRAM18'} {used[k]:,}/{avail[k]:,}"
                           for k in RESOURCE_KEYS if k != "uram" or avail[k])
          + f"; latency {r['latency_ms']:.3f} ms; DDR {r['bandwidth']['ddr_mbps']:,.1f} MB/s")
    return 0


def cmd_cosim(args) -> int:
    from sim.network_cosim import cosimulate
    cache = cosim_cache_dir()
    try:
        check_writable_dir(cache, f"co-simulation cache (set {CACHE_ENV} to move it)")
    except OutputError as exc:
        raise UserError(str(exc)) from None
    result = _build(args)
    rep = cosimulate(result, frames=args.frames, seed=args.seed, cache_dir=cache,
                     progress=_progress)
    for part in rep.partition_results:
        print(f"partition {part.index}: bit_exact={part.bit_exact} cycles/frame "
              f"measured={part.measured_cycles_per_frame:.0f} "
              f"estimated={part.estimated_cycles_per_frame} error={part.cycle_error_pct:+.2f}%")
    print(f"bit_exact={rep.bit_exact} frames={rep.frames} "
          f"cycles/frame measured={rep.measured_cycles_per_frame:.0f} "
          f"estimated={rep.estimated_cycles_per_frame} error={rep.cycle_error_pct:+.2f}% "
          f"latency measured={rep.measured_latency_cycles} "
          f"estimated={rep.estimated_latency_cycles} error={rep.latency_error_pct:+.1f}% "
          f"sim={rep.sim_seconds:.1f}s "
          f"({rep.cycles_per_second:,.0f} cycles/s)")
    if rep.first_diverging_stage:
        print(f"first diverging stage: {rep.first_diverging_stage}")
    _progress(f"wrote {result.out_dir / 'cosim.json'}")
    return 0 if rep.bit_exact else 1


def cmd_bitstream(args) -> int:
    from boards.design import FlowError, ToolMissingError
    from sim.logic_depth import LogicDepthError
    from .bitstream import NoShellError, bitstream
    options = _build_options(args)
    try:
        with _build_errors(args):
            done = bitstream(options, run=args.run, progress=_progress)
    except (NoShellError, ToolMissingError) as exc:
        raise UserError(str(exc)) from None
    except FlowError as exc:
        print(f"hwgen bitstream: {exc}", file=sys.stderr)
        return 1
    except LogicDepthError as exc:   # yosys itself failed: not the user's mistake, one line
        log = options.output_dir(args.board) / "logic_depth_error.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"{exc}\n")
        print(f"hwgen bitstream: measuring logic depth: {str(exc).splitlines()[0].rstrip(':')} "
              f"(its output: {log})", file=sys.stderr)
        return 1
    project, impl = done.project, done.implementation
    for line in done.warnings:
        print(f"[hwgen] {line}", file=sys.stderr)
    if impl is None:
        print(f"wrote the project to {project.board_dir}/; to make the bitstream, run "
              f"`{project.run_command}` there on a machine with {project.tool} "
              f"(see {project.board_dir / 'README.md'})")
        return 0
    used = done.build.report["resources"]["used"]
    print(f"bitstream {done.design.build_dir / impl.bitstream}: LUT {impl.lut:,} (model "
          f"{used['lut']:,}), FF {impl.ff:,} ({used['ff']:,}), DSP {impl.dsp} ({used['dsp']}), "
          f"BRAM18 {impl.bram18} ({used['bram18']}); Fmax {impl.fmax_mhz:g} MHz against "
          f"{impl.clock_mhz:g} MHz")
    return 0


# -- entry point ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    root = _Parser(
        prog="hwgen", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=DESCRIPTION.format(models=", ".join(MODELS)), epilog=EPILOG)
    sub = root.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("summary", help="per-layer table of shapes, params, MACs and weight bytes",
                       description="Print a per-layer table (name, op, kernel, groups, output "
                       "HxWxC, params, MACs, weight bytes) and totals.")
    _add_model_args(p)
    p.add_argument("--wbits", type=bit_width, default=8, help="weight bits for the byte column (4-8)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object {model, input_shape, layers, total} instead")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("golden", help="run the numpy golden model on an input array",
                       description="Run the quantized integer golden model (or the float "
                       "reference with --float) on one image. Zoo models take an NHWC image "
                       "(H, W, C) or (1, H, W, C); ONNX models take the ONNX input's own shape "
                       "and layout. The quantized output is written as integers (int64) in the "
                       "same layout as the float one; see docs/numerics.md.")
    _add_model_args(p)
    p.add_argument("--input", required=True, metavar="X.npy", help="input image array")
    p.add_argument("--output", required=True, metavar="Y.npy", help="where to write the output")
    p.add_argument("--float", action="store_true", help="run the float reference model instead")
    p.add_argument("--dump-dir", metavar="DIR", help="also write every layer's output (.npy) "
                   "and an index.json; co-simulation compares against these")
    p.add_argument("--abits", type=bit_width, default=8, help="activation bits (4-8, default 8)")
    p.add_argument("--wbits", type=bit_width, default=8, help="weight bits (4-8, default 8)")
    p.add_argument("--calibration", metavar="IMAGES.npy", help="calibration images, stacked on "
                   "axis 0 (default: seeded random inputs)")
    p.set_defaults(func=cmd_golden)

    p = sub.add_parser("export-onnx", help="write a zoo model as a float ONNX file",
                       description="Write a zoo model, with its seeded weights, as a float ONNX "
                       "file (NCHW input) that onnxruntime runs.")
    _add_model_args(p)
    p.add_argument("out", metavar="OUT.onnx", help="output file")
    p.set_defaults(func=cmd_export_onnx)

    p = sub.add_parser("build", help="generate the accelerator: Verilog, weights, report",
                       description="Quantize the model, lower it to streaming PEs, fold them "
                       "to the board's DSP/BRAM/LUT budget (or to --fps with the least "
                       "hardware), size the FIFOs, and write build/<model>-<board>/: "
                       "hwgen_top.v (AXI4-Stream in/out), weights/*.hex, report.json, "
                       "report.md and plots. A model that does not fit is split into "
                       "partitions run one after another.")
    _add_model_args(p)
    _add_build_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("estimate", help="fold and report in seconds, without writing Verilog",
                       description="Fold the model for the board (as `hwgen build` does, with "
                       "the same options) and write report.json, report.md and the plots to "
                       "build/<model>-<board>-estimate/ (or --out), without emitting Verilog "
                       "or weights: for sweeps over boards, frame rates and bit widths. "
                       "Prints the headline figures, or with --json the whole report.")
    _add_model_args(p)
    _add_build_args(p)
    p.add_argument("--json", action="store_true",
                   help="print the report (the report.json object) on stdout instead")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("cosim", help="build, then co-simulate the design on Verilator",
                       description="Build the accelerator (as `hwgen build`), verilate its "
                       "top, stream seeded random images through it (once at full rate, once "
                       "with random input gaps and output backpressure) and compare every "
                       "output with the golden model. A partitioned design runs partition "
                       "by partition, each fed with the previous one's outputs and checked "
                       "against the golden tensor at its cut; cycles per frame add up. "
                       "Writes cosim.json next to the report; "
                       "on a mismatch names the first diverging stage. Exit 1 if not "
                       "bit-exact. Verilator builds are cached by content in "
                       f"{cosim_cache_dir()} (the cosim folder under ${CACHE_ENV} if set, "
                       "else under $XDG_CACHE_HOME/hwgen or ~/.cache/hwgen).")
    _add_model_args(p)
    _add_build_args(p)
    p.add_argument("--frames", type=frame_count, default=3, help="images to stream (>= 2)")
    p.add_argument("--seed", type=seed, default=0,
                   help=f"seed of the images and stalls (0 to {MAX_SEED})")
    p.set_defaults(func=cmd_cosim)

    p = sub.add_parser("bitstream", help="build, then write (and run) the board project",
                       description="Build the accelerator (as `hwgen build`), then write "
                       "build/<model>-<board>/board/: the project for the board's tools, the "
                       "shell that moves frames between host and accelerator, the host "
                       "program, golden/ images and outputs for its --check, and a README.md "
                       "with the exact commands. When the board's tools are present (always "
                       "for ecp5-85f, whose tools come from PyPI) the flow runs: report.json "
                       "gains the tools' figures under \"implementation\" and report.md "
                       "shows them beside the model's. A design that misses its clock is "
                       "reported loudly, with fps at the achieved clock.")
    _add_model_args(p)
    _add_build_args(p)
    run = p.add_mutually_exclusive_group()
    run.add_argument("--run", dest="run", action="store_true", default=None,
                     help="run the tools, and fail if they are missing (default: run them "
                     "when present)")
    run.add_argument("--no-run", dest="run", action="store_false",
                     help="only write the project")
    p.set_defaults(func=cmd_bitstream)
    return root


def main(argv: list[str] | None = None) -> int:
    from amaranth.hdl._ir import UnusedElaboratable
    # The resource models build sub-units only to ask them for figures.
    warnings.filterwarnings("ignore", category=UnusedElaboratable)
    parser = _parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with a usage line
    try:
        return args.func(args)
    except UserError as exc:
        print(f"hwgen {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:   # every writer cleans up as the exception passes it
        print(f"hwgen {args.command}: interrupted; no partial output or cache entry was left",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print(f"hwgen {args.command}: error: out of memory (the model or its resolution is "
              "too large for this machine)", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `hwgen summary ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
