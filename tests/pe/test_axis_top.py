"""AxiStreamTop: a core behind flat AXI4-Stream ports, module ``hwgen_top``.

Simulated two ways: the C++ co-simulation driver (sim/cosim.py) and one cocotb test with
cocotbext-axi AxiStreamSource / AxiStreamSink (idle gaps on the input, backpressure on the
output). The sink groups beats into frames by ``tlast``, so frame lengths check its position.
"""

from pathlib import Path

import numpy as np
import pytest

from dataflows import numerics as nm
from rtl_templates.axis_top import AxiStreamTop, tdata_width, to_verilog
from rtl_templates.fifo import Fifo, FifoParams
from rtl_templates.matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit
from sim.bench import SIM_BUILD

COSIM_BUILD = SIM_BUILD / "cosim"


def mvu_params(seed, *, cin=4, cout=6, kernel=3, pe=3, simd=4, pixels=4, in_bits=8, wbits=8,
               out_bits=4):
    """A small MVU whose 3 x 4-bit output lanes make a 12-bit beat (16-bit tdata)."""
    rng = np.random.default_rng(seed)
    taps = kernel * kernel * cin
    wlo, whi = nm.qrange(wbits, narrow=True)
    weights = rng.integers(wlo, whi + 1, (cout, taps))
    bias = rng.integers(-2000, 2001, cout)
    ratios = rng.uniform(1 / 200, 1 / 50, cout) * 2.0 ** (out_bits - 8)
    lo, hi = nm.qrange(out_bits)
    return MatrixVectorParams(in_bits=in_bits, out_bits=out_bits, weights=weights, bias=bias,
                              requant=nm.RequantSpec.from_ratios(ratios, lo, hi), wbits=wbits,
                              acc_bits=nm.accumulator_bits(in_bits, wbits, taps),
                              pe=pe, simd=simd, pixels=pixels)


def mvu_top() -> AxiStreamTop:
    p = mvu_params(7)
    return AxiStreamTop(MatrixVectorUnit(p), in_beats_per_frame=p.pixels * p.steps,
                        out_beats_per_frame=p.pixels * p.groups)


def random_frames(top: AxiStreamTop, frames: int, seed: int) -> np.ndarray:
    lo, hi = nm.qrange(top.in_bits)
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, (frames, top.in_beats_per_frame, top.in_lanes))


def expected_outputs(top: AxiStreamTop, frames_beats: np.ndarray) -> np.ndarray:
    outs = [top.core.behaviour(f) for f in frames_beats]
    return np.stack(outs).reshape(len(frames_beats), top.out_beats_per_frame, top.out_lanes)


def write_top(top: AxiStreamTop, name: str) -> Path:
    directory = COSIM_BUILD / "src"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.v"
    text = to_verilog(top)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


# -- constructor and ports ----------------------------------------------------------------------

def test_invalid_arguments_are_rejected():
    core = Fifo(FifoParams(bits=8, lanes=2, depth=4))
    AxiStreamTop(core, in_beats_per_frame=1, out_beats_per_frame=1)
    with pytest.raises(TypeError, match="'fifo'"):
        AxiStreamTop("fifo", in_beats_per_frame=1, out_beats_per_frame=1)
    with pytest.raises(ValueError, match="out_beats_per_frame must be positive, not 0"):
        AxiStreamTop(core, in_beats_per_frame=1, out_beats_per_frame=0)
    with pytest.raises(TypeError, match="in_beats_per_frame must be an int, not 2.0"):
        AxiStreamTop(core, in_beats_per_frame=2.0, out_beats_per_frame=1)
    with pytest.raises(TypeError, match="must be an AxiStreamTop"):
        to_verilog(core)


def test_core_without_streams_is_rejected():
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class NoStreams(wiring.Component):
        i: In(8)
        o: Out(8)

        def elaborate(self, platform):
            raise AssertionError("not elaborated")

    with pytest.raises(TypeError, match="stream member 'i'"):
        AxiStreamTop(NoStreams(), in_beats_per_frame=1, out_beats_per_frame=1)


def test_tdata_width_rounds_up_to_bytes():
    assert tdata_width(8, 16) == 128
    assert tdata_width(4, 3) == 16
    assert tdata_width(1, 1) == 8


def test_verilog_module_and_port_names():
    top = mvu_top()
    text = to_verilog(top)
    assert "module hwgen_top(" in text
    for port, width in [("clk", 1), ("rst", 1), ("s_axis_tdata", 32), ("s_axis_tvalid", 1),
                        ("s_axis_tready", 1), ("s_axis_tlast", 1), ("m_axis_tdata", 16),
                        ("m_axis_tvalid", 1), ("m_axis_tready", 1), ("m_axis_tlast", 1)]:
        decl = f"[{width - 1}:0] {port};" if width > 1 else f" {port};"
        assert any(line.strip().startswith(("input", "output")) and line.endswith(decl)
                   for line in text.splitlines()), port


# -- through the C++ co-simulation driver --------------------------------------------------------

@pytest.fixture(scope="module")
def mvu_exe():
    from sim.cosim import build_cosim
    return build_cosim(write_top(mvu_top(), "axis_top_mvu"), COSIM_BUILD)


def test_mvu_top_through_cosim_driver(mvu_exe):
    from sim.cosim import run_cosim
    top = mvu_top()
    beats = random_frames(top, 3, seed=3)
    run = run_cosim(mvu_exe, beats, in_bits=top.in_bits, out_lanes=top.out_lanes,
                    out_bits=top.out_bits, out_beats_per_frame=top.out_beats_per_frame,
                    idle=0.3, backpressure=0.3, seed=5)
    np.testing.assert_array_equal(run.outputs, expected_outputs(top, beats))
    assert run.tlast_ok


def test_mvu_top_adds_no_cycles(mvu_exe):
    from sim.cosim import run_cosim
    top = mvu_top()
    beats = random_frames(top, 4, seed=4)
    run = run_cosim(mvu_exe, beats, in_bits=top.in_bits, out_lanes=top.out_lanes,
                    out_bits=top.out_bits, out_beats_per_frame=top.out_beats_per_frame)
    np.testing.assert_array_equal(run.outputs, expected_outputs(top, beats))
    assert run.latency() == top.core.latency()
    assert run.cycles_per_frame() == top.core.cycles_per_frame()


# -- through cocotb and cocotbext-axi (the test coroutine: sim/axis_cocotb.py) ----------------

def test_mvu_top_through_cocotb_axi_stream(tmp_path):
    from cocotb_tools.runner import get_results, get_runner

    from sim.bench import VERILATOR_ARGS, _ensure_verilator_on_path, _pch_flag_fixed
    top = mvu_top()
    beats = random_frames(top, 3, seed=9)
    np.savez(tmp_path / "spec.npz", inputs=beats, expected=expected_outputs(top, beats),
             shape=np.array([top.in_bits, top.out_bits, 2]))
    path = write_top(top, "axis_top_mvu")
    _ensure_verilator_on_path()
    runner = get_runner("verilator")
    build_dir = SIM_BUILD / "axis_top_cocotb"
    with _pch_flag_fixed():
        runner.build(sources=[path], hdl_toplevel="hwgen_top", build_dir=build_dir,
                     build_args=VERILATOR_ARGS, log_file=SIM_BUILD / "axis_top_cocotb.build.log")
    results = runner.test(test_module="sim.axis_cocotb", hdl_toplevel="hwgen_top",
                          hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=tmp_path,
                          extra_env={"HWGEN_AXIS_DIR": str(tmp_path)},
                          log_file=tmp_path / "sim.log")
    n_tests, n_failed = get_results(Path(results))
    assert n_tests == 1 and n_failed == 0, (tmp_path / "sim.log").read_text()[-3000:]
