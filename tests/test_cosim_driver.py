"""The C++ co-simulation driver (sim/cosim.py, sim/cosim_driver.cpp) on small AxiStreamTops.

A FIFO of 16 x 8-bit lanes gives 128-bit tdata on both sides (Verilator's VlWide ports); a
3x3-conv MVU gives narrow ports (32-bit in, 16-bit out with 12 bits used) and a latency and
cycles per frame worth measuring.
"""

import time

import numpy as np
import pytest

from dataflows import numerics as nm
from rtl_templates.axis_top import AxiStreamTop, to_verilog
from rtl_templates.fifo import Fifo, FifoParams
from rtl_templates.matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit
from sim.bench import SIM_BUILD
from sim.cosim import (CosimError, CosimRun, build_cosim, pack_beats, run_cosim, unpack_beats,
                       words_per_beat)

COSIM_BUILD = SIM_BUILD / "cosim"


def mvu_top() -> AxiStreamTop:
    """3x3 conv, 4 -> 6 channels, 4 output pixels: steps 9, groups 2, 72 cycles per frame."""
    rng = np.random.default_rng(11)
    taps, cout = 36, 6
    weights = rng.integers(-127, 128, (cout, taps))
    bias = rng.integers(-2000, 2001, cout)
    ratios = rng.uniform(1 / 200, 1 / 50, cout) / 16
    p = MatrixVectorParams(in_bits=8, out_bits=4, weights=weights, bias=bias,
                           requant=nm.RequantSpec.from_ratios(ratios, -8, 7), wbits=8,
                           acc_bits=nm.accumulator_bits(8, 8, taps), pe=3, simd=4, pixels=4)
    return AxiStreamTop(MatrixVectorUnit(p), in_beats_per_frame=p.pixels * p.steps,
                        out_beats_per_frame=p.pixels * p.groups)


def fifo_top() -> AxiStreamTop:
    core = Fifo(FifoParams(bits=8, lanes=16, depth=4, frame_beats=5))
    return AxiStreamTop(core, in_beats_per_frame=5, out_beats_per_frame=5)


def build(top: AxiStreamTop, name: str):
    src = COSIM_BUILD / "src"
    src.mkdir(parents=True, exist_ok=True)
    path = src / f"{name}.v"
    text = to_verilog(top)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return build_cosim(path, COSIM_BUILD)


@pytest.fixture(scope="module")
def fifo():
    top = fifo_top()
    return top, build(top, "cosim_fifo128")


@pytest.fixture(scope="module")
def mvu():
    top = mvu_top()
    return top, build(top, "cosim_mvu")


def frames_for(top: AxiStreamTop, frames: int, seed: int) -> np.ndarray:
    lo, hi = nm.qrange(top.in_bits)
    rng = np.random.default_rng(seed)
    return rng.integers(lo, hi + 1, (frames, top.in_beats_per_frame, top.in_lanes))


def expected(top: AxiStreamTop, beats: np.ndarray) -> np.ndarray:
    out = np.stack([top.core.behaviour(f) for f in beats])
    return out.reshape(len(beats), top.out_beats_per_frame, top.out_lanes)


def run(top: AxiStreamTop, exe, beats, **kwargs) -> CosimRun:
    return run_cosim(exe, beats, in_bits=top.in_bits, out_lanes=top.out_lanes,
                     out_bits=top.out_bits, out_beats_per_frame=top.out_beats_per_frame,
                     **kwargs)


# -- packing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("lanes, bits", [(1, 1), (3, 4), (4, 8), (5, 7), (16, 8), (3, 32), (9, 9)])
def test_pack_unpack_round_trip(lanes, bits):
    rng = np.random.default_rng(lanes * 100 + bits)
    values = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (50, lanes))
    words = pack_beats(values, bits)
    assert words.shape == (50, words_per_beat(lanes, bits)) and words.dtype == np.dtype("<u4")
    np.testing.assert_array_equal(unpack_beats(words, lanes, bits), values)


def test_pack_puts_lane_zero_in_the_low_bits():
    words = pack_beats(np.array([[1, -1, 0, 2]]), 8)
    assert words.tolist() == [[0x0200FF01]]
    assert pack_beats(np.array([[-1] * 5]), 8).tolist() == [[0xFFFFFFFF, 0xFF]]


def test_pack_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError, match="value 8 does not fit in 4 signed bits"):
        pack_beats(np.array([[1, 8]]), 4)


# -- runs --------------------------------------------------------------------------------------

def test_wide_fifo_under_idle_and_backpressure(fifo):
    top, exe = fifo
    assert top.in_tdata_width == top.out_tdata_width == 128
    beats = frames_for(top, 4, seed=1)
    result = run(top, exe, beats, idle=0.3, backpressure=0.3, seed=3)
    np.testing.assert_array_equal(result.outputs, beats)
    assert result.tlast_ok
    assert len(result.input_cycles) == len(result.output_cycles) == 20
    assert np.all(np.diff(result.input_cycles) > 0) and np.all(np.diff(result.output_cycles) > 0)


def test_wide_fifo_timing_matches_model(fifo):
    top, exe = fifo
    beats = frames_for(top, 4, seed=2)
    result = run(top, exe, beats)
    np.testing.assert_array_equal(result.outputs, beats)
    assert result.latency() == top.core.latency()
    assert result.cycles_per_frame() == top.core.cycles_per_frame()


def test_mvu_under_idle_and_backpressure(mvu):
    top, exe = mvu
    beats = frames_for(top, 4, seed=4)
    result = run(top, exe, beats, idle=0.3, backpressure=0.3, seed=8)
    np.testing.assert_array_equal(result.outputs, expected(top, beats))
    assert result.tlast_ok


def test_mvu_timing_matches_model(mvu):
    top, exe = mvu
    beats = frames_for(top, 4, seed=5)
    result = run(top, exe, beats)
    np.testing.assert_array_equal(result.outputs, expected(top, beats))
    assert result.tlast_ok
    assert result.latency() == top.core.latency()
    assert result.cycles_per_frame() == top.core.cycles_per_frame() == 72
    assert result.total_cycles == result.output_cycles[-1] + 1


def test_runs_are_deterministic_given_the_seed(mvu):
    top, exe = mvu
    beats = frames_for(top, 2, seed=6)
    a, b, c = (run(top, exe, beats, idle=0.4, backpressure=0.4, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.output_cycles, b.output_cycles)
    np.testing.assert_array_equal(a.input_cycles, b.input_cycles)
    assert not np.array_equal(a.output_cycles, c.output_cycles)
    np.testing.assert_array_equal(a.outputs, c.outputs)


def test_cycles_per_frame_with_two_frames(fifo):
    top, exe = fifo
    result = run(top, exe, frames_for(top, 2, seed=7))
    assert result.cycles_per_frame() == top.core.cycles_per_frame()
    one = run(top, exe, frames_for(top, 1, seed=7))
    with pytest.raises(ValueError, match="at least two frames"):
        one.cycles_per_frame()


def test_timeout_reports_how_far_it_got(fifo):
    top, exe = fifo
    beats = frames_for(top, 2, seed=8)
    # backpressure close to 1: the sink takes a beat about once in 10^6 cycles.
    with pytest.raises(CosimError, match=r"timeout after 200 cycles: \d+ of 10 output beats"):
        run(top, exe, beats, backpressure=0.999999, max_cycles=200)


def test_bad_arguments_are_rejected(fifo):
    top, exe = fifo
    beats = frames_for(top, 1, seed=9)
    with pytest.raises(ValueError, match="idle must be a probability in \\[0, 1\\), not 1.0"):
        run(top, exe, beats, idle=1.0)
    with pytest.raises(ValueError, match="seed must be a non-negative int, not -1"):
        run(top, exe, beats, seed=-1)
    with pytest.raises(ValueError, match="frames_beats"):
        run(top, exe, beats[0])
    with pytest.raises(CosimError, match="out-words disagrees"):
        run_cosim(exe, beats, in_bits=8, out_lanes=4, out_bits=8, out_beats_per_frame=5)
    with pytest.raises(FileNotFoundError, match="nope.v"):
        build_cosim(COSIM_BUILD / "nope.v", COSIM_BUILD)


def test_broken_verilog_raises_with_the_log(tmp_path):
    path = tmp_path / "broken.v"
    path.write_text("module hwgen_top(input clk); wire x = ; endmodule\n")
    with pytest.raises(CosimError, match="Verilator build failed"):
        build_cosim(path, tmp_path / "build")
    assert not list((tmp_path / "build").glob("cosim-*/Vhwgen_top"))


def test_rebuild_is_skipped_when_unchanged(fifo):
    top, exe = fifo
    start = time.perf_counter()
    assert build(top, "cosim_fifo128") == exe
    assert time.perf_counter() - start < 2.0


def test_driver_speed(mvu):
    """Many frames: the driver runs far faster than a cocotb bench (well above 1e5 cycles/s)."""
    top, exe = mvu
    beats = frames_for(top, 2000, seed=10)
    result = run(top, exe, beats)
    assert result.total_cycles >= 2000 * 72
    assert result.cycles_per_second() > 1e5
    print(f"\n{result.total_cycles} cycles in {result.sim_seconds:.3f} s: "
          f"{result.cycles_per_second():.3g} cycles/s")
