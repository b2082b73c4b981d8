"""SlidingWindow on Verilator: window beats as window_beats under gaps and backpressure, exact
timing, line-buffer sizing, parameter checks."""

import numpy as np
import pytest

from rtl_templates.beats import WindowOrder, frame_to_beats
from rtl_templates.sliding_window import SlidingWindow, SlidingWindowParams
from sim.bench import VerilatorBench

TAP, CHAN = WindowOrder.TAP_MAJOR, WindowOrder.CHANNEL_MAJOR
CONFIGS = {
    # SqueezeNet expand3x3
    "k3s1": SlidingWindowParams(bits=8, channels=4, height=6, width=6, kernel=3, stride=1,
                                padding=1, simd=2),
    # MobileNet depthwise stride 2
    "dw_s2": SlidingWindowParams(bits=8, channels=4, height=9, width=9, kernel=3, stride=2,
                                 padding=1, simd=4, order=CHAN),
    # SqueezeNet max pool (ceil_mode rounds the same as floor at 9x9)
    "pool": SlidingWindowParams(bits=8, channels=2, height=9, width=9, kernel=3, stride=2,
                                padding=0, ceil_mode=True, simd=1, order=CHAN, pad_value=-128),
    # ceil_mode adding a bottom row and right column of pad_value
    "pool_ceil": SlidingWindowParams(bits=8, channels=2, height=6, width=6, kernel=3, stride=2,
                                     padding=0, ceil_mode=True, simd=2, pad_value=-128),
    # TensorFlow "same" at stride 2: padding only bottom and right
    "tf_same": SlidingWindowParams(bits=6, channels=2, height=6, width=6, kernel=3, stride=2,
                                   padding=(0, 0, 1, 1), simd=1),
    # EfficientNet 5x5
    "k5": SlidingWindowParams(bits=8, channels=2, height=7, width=7, kernel=5, stride=1,
                              padding=2, simd=2),
    # SqueezeNet conv1
    "k7s2": SlidingWindowParams(bits=8, channels=3, height=13, width=13, kernel=7, stride=2,
                                padding=0, simd=3),
    # SIMD over the kernel's columns: conv1 with a 7-tap row per beat
    "k7s2_kx7": SlidingWindowParams(bits=8, channels=3, height=13, width=13, kernel=7, stride=2,
                                    padding=0, simd=3, kx_lanes=7),
    # 3 columns per beat with "same" padding (left-edge banks start one column in)
    "k3s1_kx3": SlidingWindowParams(bits=8, channels=4, height=6, width=7, kernel=3, stride=1,
                                    padding=1, simd=4, kx_lanes=3),
    # stride 2 walking the banks out of step, right-only padding, fewer outputs than inputs
    "k3s2_kx3": SlidingWindowParams(bits=6, channels=2, height=8, width=8, kernel=3, stride=2,
                                    padding=(0, 0, 1, 1), simd=2, kx_lanes=3),
    "k5_kx5": SlidingWindowParams(bits=8, channels=2, height=7, width=7, kernel=5, stride=1,
                                  padding=2, simd=2, kx_lanes=5),
    # ShuffleNet / ResNet downsampling
    "k1s2": SlidingWindowParams(bits=8, channels=4, height=6, width=6, kernel=1, stride=2,
                                simd=4),
    "k1s1": SlidingWindowParams(bits=8, channels=4, height=6, width=6, kernel=1, stride=1,
                                simd=2),
}
BENCH = VerilatorBench("sliding_window_bench",
                       {name: SlidingWindow(p) for name, p in CONFIGS.items()})


def _frames(p: SlidingWindowParams, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (p.bits - 1)), 1 << (p.bits - 1)
    return [rng.integers(lo, hi, (p.height, p.width, p.channels)) for _ in range(n)]


@pytest.mark.parametrize("name", CONFIGS)
def test_windows_match_behaviour_under_gaps_and_backpressure(name):
    p, dut = CONFIGS[name], BENCH.configs[name]
    frames = _frames(p, 2, seed=len(name))
    beats = np.concatenate([frame_to_beats(f, p.simd) for f in frames])
    expected = np.concatenate([dut.behaviour(f) for f in frames])
    assert len(expected) == 2 * dut.output_beats()
    result = BENCH.run(name, {"i": beats}, {"o": len(expected)}, idle=0.3, backpressure=0.3)
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", CONFIGS)
def test_timing_matches_model(name):
    p, dut = CONFIGS[name], BENCH.configs[name]
    frames = _frames(p, 3, seed=7)
    beats = np.concatenate([frame_to_beats(f, p.simd) for f in frames])
    n_out = dut.output_beats()
    result = BENCH.run(name, {"i": beats}, {"o": 3 * n_out}, idle=0, backpressure=0,
                       tag="timing")
    np.testing.assert_array_equal(result.beats["o"],
                                  np.concatenate([dut.behaviour(f) for f in frames]))
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", n_out) == dut.cycles_per_frame()


def test_cycle_model_is_the_busy_side():
    k3 = SlidingWindow(CONFIGS["k3s1"])
    assert k3.cycles_per_frame() == 6 * 6 * 9 * 2  # output beats: one per cycle
    k1 = SlidingWindow(CONFIGS["k1s2"])
    assert k1.cycles_per_frame() == 6 * 6  # input beats: decimation waits for the input
    kx = SlidingWindow(CONFIGS["k7s2_kx7"])
    assert kx.output_beats() == 4 * 4 * 7      # one beat per kernel row
    assert kx.params.out_lanes == 21


def test_kx_lanes_beats_are_consecutive_weight_taps():
    # A kx-lane beat is kx_lanes * C consecutive taps of the OHWI-flattened window, the order
    # a MatrixVectorUnit with simd = kx_lanes * C reads its weight rows in. Expected beats are
    # cut straight from the zero-padded frame.
    p = CONFIGS["k3s1_kx3"]
    frame = _frames(p, 1, seed=3)[0]
    padded = np.pad(frame, ((1, 1), (1, 1), (0, 0)))
    beats = SlidingWindow(p).behaviour(frame).reshape(p.out_height, p.out_width, -1, 3 * 4)
    for oy, ox in ((0, 0), (2, 3), (p.out_height - 1, p.out_width - 1)):
        window = padded[oy:oy + 3, ox:ox + 3, :]            # (ky, kx, c): an OHWI weight row
        np.testing.assert_array_equal(beats[oy, ox], window.reshape(3, 3 * 4))


def test_line_buffer_rows_and_resources():
    # "same" padding needs kernel + stride rows; valid padding also keeps the next frame's
    # first rows beside the last windows.
    same = SlidingWindowParams(bits=8, channels=64, height=56, width=56, kernel=3, stride=1,
                               padding=1, simd=8)
    assert same.row_slots == 4
    res = SlidingWindow(same).resources("7series")
    # 4 rows * 56 pixels * 8 groups = 1792 words of 64 bits: 2 BRAM18 (36 x 512) wide x 4 deep
    assert res.bram18 == 8 and res.dsp == 0 and res.lut > 0 and res.ff > 0
    assert CONFIGS["k7s2"].row_slots == 14
    assert SlidingWindow(CONFIGS["k1s1"]).resources().bram18 == 0


def test_invalid_params_are_rejected():
    base = dict(bits=8, channels=4, height=8, width=8, kernel=3)
    with pytest.raises(ValueError, match="4"):
        SlidingWindowParams(**{**base, "kernel": 4})
    with pytest.raises(ValueError, match="3"):
        SlidingWindowParams(**base, stride=3)
    with pytest.raises(ValueError, match="3"):
        SlidingWindowParams(**base, simd=3)
    with pytest.raises(ValueError, match=r"\(1, 1, 3, 1\)"):
        SlidingWindowParams(**base, padding=(1, 1, 3, 1))
    with pytest.raises(ValueError, match="-129"):
        SlidingWindowParams(**base, pad_value=-129)
    with pytest.raises(ValueError, match="0"):
        SlidingWindowParams(**{**base, "height": 0})
    with pytest.raises(ValueError, match="larger"):
        SlidingWindowParams(**{**base, "height": 2})
    with pytest.raises(ValueError, match="order"):
        SlidingWindowParams(**base, order="tap_major")
    with pytest.raises(ValueError, match="kx_lanes 2"):
        SlidingWindowParams(**base, simd=4, kx_lanes=2)
    with pytest.raises(ValueError, match="simd == channels"):
        SlidingWindowParams(**base, simd=2, kx_lanes=3)
    with pytest.raises(ValueError, match="TAP_MAJOR"):
        SlidingWindowParams(**base, simd=4, kx_lanes=3, order=CHAN)
    with pytest.raises(TypeError):
        SlidingWindow(base)


@pytest.mark.synth
@pytest.mark.slow
def test_line_buffer_maps_to_modelled_block_rams(tmp_path):
    # Stops before LUT mapping: that is where the block RAMs already exist, and the WebAssembly
    # yosys cannot run ABC (the full synth_xilinx of sim.synth dies at "Running ABC command").
    import json
    import subprocess

    from sim.harness import to_verilog
    from sim.synth import bram18_total, yosys_command

    p = SlidingWindowParams(bits=8, channels=32, height=16, width=16, kernel=3, stride=1,
                            padding=1, simd=8)
    dut = SlidingWindow(p)
    (tmp_path / "sw.v").write_text(to_verilog(dut, "sw"))
    script = ("read_verilog sw.v; synth_xilinx -family xc7 -flatten -top sw -run :map_luts; "
              "tee -q -o stat.json stat -json")
    proc = subprocess.run([*yosys_command(), "-q", "-p", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads((tmp_path / "stat.json").read_text())
    design = report.get("design") or next(iter(report["modules"].values()))
    cells = {k.lstrip("$"): int(v) for k, v in design["num_cells_by_type"].items()}
    modelled = dut.resources("7series").bram18
    assert modelled == 2  # 4 rows * 16 pixels * 4 groups = 256 words of 64 bits
    assert abs(bram18_total(cells) - modelled) <= max(1, modelled // 10)
