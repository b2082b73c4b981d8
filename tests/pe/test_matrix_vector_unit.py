"""MatrixVectorUnit on Verilator: 1x1 / 3x3 convs and a fully connected layer, bit-exact with the
numpy behaviour under idle gaps and backpressure; latency and cycles per frame as modelled."""

import dataclasses

import numpy as np
import pytest

from dataflows import numerics as nm
from rtl_templates.beats import WindowOrder, frame_to_beats, window_beats
from rtl_templates.matrix_vector_unit import MatrixVectorParams, MatrixVectorUnit
from rtl_templates.resources import MemoryStyle
from sim.bench import VerilatorBench


def make_params(seed, *, cin, cout, kernel, pe, simd, pixels, in_bits=8, wbits=8, out_bits=8,
                relu=False, per_tensor=False):
    rng = np.random.default_rng(seed)
    taps = kernel * kernel * cin
    wlo, whi = nm.qrange(wbits, narrow=True)
    weights = rng.integers(wlo, whi + 1, (cout, taps))
    bound = nm.bias_bound(in_bits, wbits, taps)
    bias = rng.integers(-min(bound, 4000), min(bound, 4000) + 1, cout)
    lo, hi = nm.qrange(out_bits)
    ratios = rng.uniform(1 / 200, 1 / 50, cout) * 2.0 ** (8 - in_bits) * 2.0 ** (8 - wbits)
    spec = nm.RequantSpec.from_ratios(ratios[:1] if per_tensor else ratios, 0 if relu else lo, hi)
    return MatrixVectorParams(in_bits=in_bits, out_bits=out_bits, weights=weights, bias=bias,
                              requant=spec, wbits=wbits,
                              acc_bits=nm.accumulator_bits(in_bits, wbits, taps),
                              pe=pe, simd=simd, pixels=pixels)


# name: (params, image (H, W, Cin), kernel, padding); kernel 0 means a fully connected input.
CASES = {
    "conv1x1": (make_params(1, cin=8, cout=8, kernel=1, pe=2, simd=4, pixels=16), (4, 4, 8), 1, 0),
    "conv3x3": (make_params(2, cin=4, cout=6, kernel=3, pe=3, simd=4, pixels=25), (5, 5, 4), 3, 1),
    "fc": (make_params(3, cin=16, cout=4, kernel=1, pe=4, simd=16, pixels=1), (1, 1, 16), 1, 0),
    "serial": (make_params(4, cin=3, cout=2, kernel=1, pe=1, simd=1, pixels=9, in_bits=4, wbits=4,
                           out_bits=4, per_tensor=True), (3, 3, 3), 1, 0),
    "relu3x3": (make_params(5, cin=2, cout=4, kernel=3, pe=2, simd=2, pixels=9, relu=True),
                (3, 3, 2), 3, 1),
    # 10 groups x 40 steps = 400-word weight ROMs in logic, read as two banks (256 + 144 words:
    # rtl_templates.rom.banked_rom_read).
    "banked": (dataclasses.replace(make_params(7, cin=40, cout=20, kernel=1, pe=2, simd=1,
                                               pixels=3), weight_style=MemoryStyle.LUT),
               (1, 3, 40), 1, 0),
}
CONFIGS = {name: case[0] for name, case in CASES.items()}
BENCH = VerilatorBench("mvu_bench", {name: MatrixVectorUnit(p) for name, p in CONFIGS.items()})


def input_beats(name, frames, rng):
    p, shape, kernel, pad = CASES[name]
    lo, hi = nm.qrange(p.in_bits)
    out = []
    for _ in range(frames):
        frame = rng.integers(lo, hi + 1, shape)
        if kernel == 1:
            out.append(frame_to_beats(frame, p.simd))
        else:
            out.append(window_beats(frame, (kernel, kernel), (1, 1), (pad,) * 4, p.simd,
                                    WindowOrder.TAP_MAJOR))
    return np.concatenate(out)


@pytest.mark.parametrize("name", CASES)
def test_mvu_matches_behaviour_under_gaps_and_backpressure(name):
    dut = BENCH.configs[name]
    frames = 24 if name == "fc" else 2
    beats = input_beats(name, frames, np.random.default_rng(11))
    expected = dut.behaviour(beats)
    assert len(expected) == frames * CONFIGS[name].pixels * CONFIGS[name].groups
    result = BENCH.run(name, {"i": beats}, {"o": len(expected)})
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", ["conv3x3", "fc"])
def test_mvu_holds_data_under_heavy_backpressure(name):
    dut = BENCH.configs[name]
    beats = input_beats(name, 3, np.random.default_rng(21))
    expected = dut.behaviour(beats)
    result = BENCH.run(name, {"i": beats}, {"o": len(expected)}, idle=0.1, backpressure=0.8,
                       seed=4, tag="stall")
    np.testing.assert_array_equal(result.beats["o"], expected)


@pytest.mark.parametrize("name", ["conv3x3", "fc", "serial", "banked"])
def test_mvu_timing_matches_model(name):
    p, dut = CONFIGS[name], BENCH.configs[name]
    frames = 6 if name == "fc" else 3
    beats = input_beats(name, frames, np.random.default_rng(5))
    n_out = frames * p.pixels * p.groups
    result = BENCH.run(name, {"i": beats}, {"o": n_out}, idle=0, backpressure=0, tag="timing")
    np.testing.assert_array_equal(result.beats["o"], dut.behaviour(beats))
    assert result.latency("i", "o") == dut.latency()
    assert result.cycles_per_frame("o", p.pixels * p.groups) == dut.cycles_per_frame()
    assert dut.cycles_per_frame() == p.pixels * p.groups * p.steps


def test_resource_model_counts_multipliers_and_roms():
    res = BENCH.configs["conv1x1"].resources()
    # 2 x 4 products (8x8 bits) + 2 requant multipliers (20-bit acc x 16-bit M: one DSP each).
    assert res.dsp == 2 * 4 + 2
    assert res.lut > 0 and res.ff > 0
    assert BENCH.configs["serial"].resources().dsp == 0 + 1  # 4x4 products stay in LUTs


def test_invalid_params_are_rejected():
    good = dict(in_bits=8, out_bits=8, weights=np.ones((4, 8), dtype=np.int64),
                bias=np.zeros(4, dtype=np.int64),
                requant=nm.RequantSpec.from_ratios([0.01], -128, 127), wbits=8,
                acc_bits=nm.accumulator_bits(8, 8, 8), pe=2, simd=4, pixels=1)
    MatrixVectorParams(**good)
    with pytest.raises(ValueError, match="pe must divide cout=4, not 3"):
        MatrixVectorParams(**{**good, "pe": 3})
    with pytest.raises(ValueError, match="simd must divide taps=8, not 3"):
        MatrixVectorParams(**{**good, "simd": 3})
    with pytest.raises(ValueError, match="128"):
        MatrixVectorParams(**{**good, "weights": np.full((4, 8), 128)})
    with pytest.raises(ValueError, match="acc_bits"):
        MatrixVectorParams(**{**good, "acc_bits": 10})
    with pytest.raises(ValueError, match="bias"):
        MatrixVectorParams(**{**good, "bias": np.full(4, 2 ** 40)})
    with pytest.raises(ValueError, match="pixels"):
        MatrixVectorParams(**{**good, "pixels": 0})
    with pytest.raises(ValueError, match="requant"):
        MatrixVectorParams(**{**good, "requant": nm.RequantSpec.from_ratios([0.01] * 3, -128, 127)})
    with pytest.raises(TypeError):
        MatrixVectorUnit(good)


# Synthesis: the DSP and block-RAM models against yosys synth_xilinx (xc7). "conv1x1" keeps its
# small ROMs in logic; "wide" has 256 x 32-bit weight ROMs, one RAMB18 per PE row; "wide_lut"
# the same ROMs forced into LUTs, as the compiler does when block RAM runs out.
SYNTH = {
    "conv1x1": CONFIGS["conv1x1"],
    "wide": make_params(9, cin=64, cout=32, kernel=1, pe=2, simd=4, pixels=4),
    "wide_lut": dataclasses.replace(make_params(9, cin=64, cout=32, kernel=1, pe=2, simd=4,
                                                pixels=4), weight_style=MemoryStyle.LUT),
    "banked": CONFIGS["banked"],
    "fc": CONFIGS["fc"],   # constant weights: two of them are powers of two, no DSP for those
}


@pytest.mark.synth
@pytest.mark.parametrize("name", SYNTH)
def test_mvu_synthesis_matches_resource_model(name):
    from sim.synth import synthesize
    dut = MatrixVectorUnit(SYNTH[name])
    model, cells = dut.resources("7series"), synthesize(dut, f"mvu_{name}")
    assert cells.get("DSP48E1", 0) == model.dsp
    assert abs(cells["bram18"] - model.bram18) <= max(1, model.bram18 // 10)
    # LUT and FF are rough models: within a factor of two of what yosys builds.
    assert 0.5 <= model.lut / cells["lut"] <= 2 and 0.5 <= model.ff / cells["ff"] <= 2


def test_weights_forced_into_luts():
    # 4 groups x 16 steps = 64 words of 8 x 8 bits per PE row: block RAM by size.
    from dataclasses import replace

    from sim.harness import to_verilog
    p = make_params(6, cin=128, cout=8, kernel=1, pe=2, simd=8, pixels=1)
    auto, lut = MatrixVectorUnit(p), MatrixVectorUnit(replace(p, weight_style=MemoryStyle.LUT))
    assert auto.weight_memory_resources().bram18 == 2 * 2 and lut.weight_memory_resources().bram18 == 0
    assert lut.resources().bram18 == auto.resources().bram18 - 2 * 2
    assert lut.resources().lut == auto.resources().lut + 2 * 64   # 64 bits x 1 LUT (64 deep)
    assert 'rom_style = "block"' in to_verilog(auto, "mvu_block_weights")
    assert 'rom_style = "block"' not in to_verilog(lut, "mvu_lut_weights")
    with pytest.raises(TypeError, match="MemoryStyle"):
        replace(p, weight_style="distributed")
