"""Whole-network co-simulation: a Verilated ``hwgen_top`` driven by a C++ main, no cocotb.

A network runs millions of cycles, far too many for a Python callback per cycle. The driver
(``sim/cosim_driver.cpp``) streams a file of input beats into the AXI4-Stream slave of an
:class:`rtl_templates.axis_top.AxiStreamTop`, with random idle and backpressure, and writes the
output beats and every transfer's cycle back to files. Usage::

    exe = build_cosim(path_to_verilog, SIM_BUILD / "cosim")
    run = run_cosim(exe, beats, in_bits=8, out_lanes=4, out_bits=8, out_beats_per_frame=10)
    run.outputs, run.latency(), run.cycles_per_frame(), run.cycles_per_second()

File formats are described at the top of the driver. Lanes are packed into little-endian uint32
words, ``ceil(lanes * bits / 32)`` per beat, lane 0 in the least significant bits.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boards.host.frames import pack_beats, unpack_beats, words_per_beat
from hwgen.outputs import private_dir, remove_abandoned

from .bench import VERILATOR_ARGS, _ensure_verilator_on_path, _pch_flag_fixed

__all__ = ["DRIVER", "CosimError", "CosimRun", "build_cosim", "run_cosim", "pack_beats",
           "unpack_beats", "words_per_beat"]

DRIVER = Path(__file__).resolve().parent / "cosim_driver.cpp"
TOP = "hwgen_top"

# Compiler optimization per file class, measured on a 0.68 MB Verilog chain of five MVUs
# (320 multipliers), 2 cores, build seconds / simulated cycles per second:
#   verilated.mk default (-Os everywhere)      30.5 s   208k
#   -O1 everywhere                             25.2 s   192k
#   -O2 everywhere                             34.8 s   243k
#   -O0 everywhere                             18.0 s    26k
#   -O2 eval code, -O0 set-up code, -O1 rest   24.9 s   247k   <- chosen
# OPT_FAST covers the per-cycle eval code, OPT_SLOW the run-once constructors and initial
# blocks, OPT_GLOBAL Verilator's runtime library. X-randomization is off (Amaranth initializes
# every register) and Amaranth designs have no assertions to keep.
#
# Verilator's merge-cond pass (merging if-statements on the same condition) took 37 of 52 s of
# verilation on MobileNet V3-Small at 32x32 (549 modules) and cost 8% simulation speed when
# turned off (47k -> 43k cycles/s); building dominates whole-network runs, so it is off.
# Functions are split at 1000 statements: g++ -O2 is superlinear in function size and spent
# 190 s on one 6,000-line input-combinational function of the same design (26.7 s in total
# for all files once split, at 62k instead of 66k cycles/s).
BUILD_ARGS = [*VERILATOR_ARGS, "--x-assign", "fast", "--x-initial", "fast", "--noassert",
              "-fno-merge-cond", "--output-split-cfuncs", "1000"]
MAKE_OVERRIDES = ["OPT_FAST=-O2", "OPT_SLOW=-O0", "OPT_GLOBAL=-O1"]


class CosimError(RuntimeError):
    """The driver failed: a timeout, extra output beats, or a bad input."""


def _digest(verilog_texts: list[bytes], driver: Path, top: str) -> str:
    h = hashlib.sha256()
    for part in (*verilog_texts, driver.read_bytes(), top.encode(),
                 " ".join(BUILD_ARGS + MAKE_OVERRIDES).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def build_cosim(verilog: Path | list[Path], build_dir: Path, *, jobs: int = 2,
                top: str = TOP, driver: Path = DRIVER) -> Path:
    """Verilate ``verilog`` (top module ``top``) with a C++ driver; return the binary.

    The build goes to ``build_dir/cosim-<hash>`` where the hash covers the Verilog text, the
    driver source, the top's name and the flags, so an unchanged design is not rebuilt.
    ``verilog`` may be several files (a shell and the accelerator it instantiates); the default
    driver is the AXI4-Stream one (``cosim_driver.cpp``), whose top is ``hwgen_top``.

    Raises
    ------
    FileNotFoundError
        If ``verilog`` does not exist.
    CosimError
        If Verilator or the C++ compiler fails; the message holds the log's tail.
    """
    sources = [Path(v) for v in (verilog if isinstance(verilog, (list, tuple)) else [verilog])]
    for source in sources:
        if not source.is_file():
            raise FileNotFoundError(f"no Verilog file at {str(source)!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, not {jobs!r}")
    build_dir = Path(build_dir)
    driver = Path(driver)
    obj_dir = build_dir / f"cosim-{_digest([v.read_bytes() for v in sources], driver, top)}"
    exe = obj_dir / f"V{top}"
    if exe.is_file():
        return exe
    # Build in a private folder and rename it into place: a concurrent or interrupted build
    # never leaves a half-written binary under the cached name, and the private folders of
    # builds whose process died (killed, power lost) are removed here.
    remove_abandoned(build_dir)
    work = private_dir(build_dir, obj_dir.name)
    try:
        _verilate(sources, work, exe.name, jobs, obj_dir.parent / f"{obj_dir.name}.build.log",
                  top=top, driver=driver)
        if obj_dir.exists() and not exe.is_file():  # left by a build that predates the rename
            shutil.rmtree(obj_dir, ignore_errors=True)
        try:
            work.rename(obj_dir)
        except OSError:  # another process finished the same build first; theirs is identical
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:   # Ctrl-C included: no private folder outlives its build
        shutil.rmtree(work, ignore_errors=True)
        raise
    if not exe.is_file():
        raise CosimError(f"Verilator build produced no {exe}")
    return exe


#: The header the driver includes for the design's DDR read ports (``HWGEN_DDR_PORTS``).
DDR_PORTS_HEADER = "hwgen_ddr_ports.h"


def ddr_ports(verilog_texts: list[str]) -> int:
    """AXI4 read ports ``m_axi_ddr<k>_*`` of the top (numbered from 0)."""
    found = {int(k) for text in verilog_texts
             for k in re.findall(r"\bm_axi_ddr(\d+)_araddr\b", text)}
    if found != set(range(len(found))):
        raise CosimError(f"DDR read ports are not numbered from 0: {sorted(found)}")
    return len(found)


def _ddr_header(ports: int) -> str:
    return ("// Written by sim/cosim.py: the design's AXI4 read ports.\n"
            "#define HWGEN_DDR_PORTS(X)" + "".join(f" X({k})" for k in range(ports)) + "\n")


def _verilate(sources: list[Path], work: Path, exe_name: str, jobs: int, log: Path, *,
              top: str, driver: Path) -> None:
    """Run Verilator and the C++ build in ``work``; the log goes to ``log``.

    Verilator runs in a session of its own so that an interrupt stops make and every compiler
    it started before ``work`` is removed (SIGINT to Python alone would leave them writing).
    """
    _ensure_verilator_on_path()
    # The obj dir is on the driver's include path (verilated.mk's -I.).
    (work / DDR_PORTS_HEADER).write_text(_ddr_header(ddr_ports(
        [s.read_text(errors="replace") for s in sources])))
    cmd = ["verilator", "--cc", "--exe", "--build", "-j", str(jobs), "--top-module", top,
           "--Mdir", str(work), "-o", exe_name, *BUILD_ARGS,
           *[arg for o in MAKE_OVERRIDES for arg in ("-MAKEFLAGS", o)],
           *[str(v.resolve()) for v in sources], str(driver)]
    start = time.perf_counter()
    with _pch_flag_fixed(), open(work / "build.log", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
    text = (work / "build.log").read_text(errors="replace")
    log.write_text(f"{text}\nbuild seconds: {time.perf_counter() - start:.1f}\n")
    if proc.returncode or not (work / exe_name).is_file():
        raise CosimError(f"Verilator build failed (log {log}):\n{text[-3000:]}")


@dataclass
class CosimRun:
    """What one driver run observed.

    Attributes
    ----------
    outputs : numpy.ndarray
        (frames, out_beats_per_frame, out_lanes) int64, lanes sign-extended.
    tlast_ok : bool
        ``m_axis_tlast`` was high exactly on the last beat of every output frame.
    input_cycles, output_cycles : numpy.ndarray
        Cycle of every input / output beat transfer (flat, in order).
    total_cycles : int
        Cycles from the end of reset to the last output transfer, inclusive.
    sim_seconds : float
        Wall-clock seconds of the simulation loop (not file I/O or start-up).
    """

    outputs: np.ndarray
    tlast_ok: bool
    input_cycles: np.ndarray
    output_cycles: np.ndarray
    total_cycles: int
    sim_seconds: float

    @property
    def frames(self) -> int:
        return self.outputs.shape[0]

    def first_output_cycles(self) -> np.ndarray:
        """Cycle of each frame's first output beat."""
        return self.output_cycles[::self.outputs.shape[1]]

    def latency(self) -> int:
        """First output transfer of frame 0 minus first input transfer of frame 0."""
        return int(self.output_cycles[0] - self.input_cycles[0])

    def cycles_per_frame(self) -> float:
        """Steady-state cycles between frames' first output beats.

        With three or more frames frame 0 is left out: its spacing to frame 1 can include
        start-up effects (buffers filling, a FIFO's first write) that later frames do not see,
        so the mean over frames 1 .. last is the steady state. With two frames it is the one
        difference there is.

        Raises
        ------
        ValueError
            With fewer than two frames.
        """
        firsts = self.first_output_cycles()
        if len(firsts) < 2:
            raise ValueError(f"need at least two frames to measure cycles per frame, "
                             f"not {len(firsts)}")
        if len(firsts) == 2:
            return float(firsts[1] - firsts[0])
        return float(firsts[-1] - firsts[1]) / (len(firsts) - 2)

    def cycles_per_second(self) -> float:
        """Simulated clock cycles per wall-clock second of the driver's loop."""
        return self.total_cycles / self.sim_seconds if self.sim_seconds > 0 else float("inf")


def _check_probability(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), not {value!r}")
    return float(value)


def run_cosim(exe: Path, frames_beats: np.ndarray, *, in_bits: int, out_lanes: int,
              out_bits: int, out_beats_per_frame: int, idle: float = 0.0,
              backpressure: float = 0.0, seed: int = 0,
              max_cycles: int | None = None, load: np.ndarray | None = None,
              load_beats: int = 0, ddr: list[Path] = (), ddr_latency: int = 64,
              ddr_bytes_per_cycle: float = 16.0) -> CosimRun:
    """Stream ``frames_beats`` through the binary from :func:`build_cosim`.

    Parameters
    ----------
    exe : Path
        The driver binary.
    frames_beats : numpy.ndarray
        (frames, in_beats_per_frame, in_lanes) input values, each within ``in_bits`` signed.
    in_bits, out_lanes, out_bits, out_beats_per_frame : int
        The top's beat shapes, as in :class:`rtl_templates.axis_top.AxiStreamTop`.
    idle, backpressure : float
        Per-cycle probability that the source withholds a beat / the sink withholds ready.
    seed : int
        The driver's random streams depend on nothing else, so runs are reproducible.
    max_cycles : int, optional
        Give up after this many cycles; default: the driver's (1000 + 64 per beat).
    load : numpy.ndarray, optional
        (beats, in_lanes) values of the design's weight load (docs/streams.md), streamed
        before the first frame.
    load_beats : int
        The design's weight-load length (:attr:`hwgen.emit.Emitted.load_beats`); the driver
        rejects a ``load`` of any other length in one line.
    ddr : list of Path
        The weight region of each DDR read port, in port order (``weights/ddr<k>.bin``).
    ddr_latency, ddr_bytes_per_cycle
        The memory model: cycles from a burst's address to its first beat; bytes a cycle
        each port may read at most.

    Raises
    ------
    CosimError
        On a timeout (the message says how many output beats arrived) or extra output beats.
    ValueError
        On malformed arguments.
    """
    frames_beats = np.asarray(frames_beats, dtype=np.int64)
    if frames_beats.ndim != 3 or 0 in frames_beats.shape:
        raise ValueError(f"frames_beats must be a non-empty (frames, beats, lanes) array, "
                         f"not shape {frames_beats.shape}")
    for name, value in (("in_bits", in_bits), ("out_lanes", out_lanes), ("out_bits", out_bits),
                        ("out_beats_per_frame", out_beats_per_frame)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, not {value!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, not {seed!r}")
    idle = _check_probability("idle", idle)
    backpressure = _check_probability("backpressure", backpressure)
    frames, in_beats, in_lanes = frames_beats.shape
    words = pack_beats(frames_beats.reshape(-1, in_lanes), in_bits)
    out_words = words_per_beat(out_lanes, out_bits)
    with tempfile.TemporaryDirectory(prefix="cosim-") as tmp:
        tmp = Path(tmp)
        words.tofile(tmp / "in.bin")
        cmd = [str(exe), "--in", str(tmp / "in.bin"), "--out", str(tmp / "out.bin"),
               "--timing", str(tmp / "timing.bin"), "--frames", str(frames),
               "--in-beats-per-frame", str(in_beats),
               "--out-beats-per-frame", str(out_beats_per_frame),
               "--idle", repr(idle), "--backpressure", repr(backpressure), "--seed", str(seed),
               "--in-words", str(words.shape[1]), "--out-words", str(out_words)]
        if isinstance(load_beats, bool) or not isinstance(load_beats, int) or load_beats < 0:
            raise ValueError(f"load_beats must be a non-negative int, not {load_beats!r}")
        if (load is None) != (load_beats == 0):
            raise ValueError("a weight load and its length (load_beats) go together")
        if load is not None:
            load = np.asarray(load, dtype=np.int64)
            if load.ndim != 2 or load.shape[1] != in_lanes:
                raise ValueError(f"load must be a (beats, {in_lanes}) array, not shape "
                                 f"{load.shape}")
            pack_beats(load, in_bits).tofile(tmp / "load.bin")
            cmd += ["--load", str(tmp / "load.bin"), "--load-beats", str(load_beats)]
        for region in ddr:
            cmd += ["--ddr", str(Path(region).resolve())]
        if ddr:
            cmd += ["--ddr-latency", str(int(ddr_latency)),
                    "--ddr-bytes-per-cycle", repr(float(ddr_bytes_per_cycle))]
        if max_cycles is not None:
            if not isinstance(max_cycles, int) or max_cycles < 1:
                raise ValueError(f"max_cycles must be a positive int, not {max_cycles!r}")
            cmd += ["--max-cycles", str(max_cycles)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise CosimError(f"{exe.name} exited with {proc.returncode}: "
                             f"{proc.stderr.strip() or proc.stdout.strip()}")
        timing = np.fromfile(tmp / "timing.bin", dtype="<i8")
        raw = np.fromfile(tmp / "out.bin", dtype="<u4")
    total_cycles, wall_ns, n_in, n_out = (int(v) for v in timing[:4])
    input_cycles = timing[6:6 + n_in]
    output_cycles = timing[6 + n_in:6 + n_in + n_out]
    tlast = timing[6 + n_in + n_out:6 + n_in + 2 * n_out].astype(bool)
    expected_last = (np.arange(n_out) % out_beats_per_frame) == out_beats_per_frame - 1
    outputs = unpack_beats(raw.reshape(n_out, out_words), out_lanes, out_bits)
    return CosimRun(outputs=outputs.reshape(frames, out_beats_per_frame, out_lanes),
                    tlast_ok=bool(np.array_equal(tlast, expected_last)),
                    input_cycles=input_cycles, output_cycles=output_cycles,
                    total_cycles=total_cycles, sim_seconds=wall_ns / 1e9)
