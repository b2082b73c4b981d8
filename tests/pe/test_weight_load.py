"""The weight-load path (rtl_templates.weight_load): a loaded URAM memory reads back what was
loaded, across banks; the loader assembles beats into words target by target and then passes
frames through; the URAM model against yosys's mapping (synth_xilinx -family xcup)."""

from dataclasses import replace

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl_templates.matrix_vector_unit import MatrixVectorUnit
from rtl_templates.resources import URAM_DEPTH, MemoryStyle, uram_count
from rtl_templates.weight_load import (LoadTarget, WeightLoader, load_image, load_signature,
                                       loaded_memory, loaded_memory_resources)

from amaranth_sim import simulate
from test_matrix_vector_unit import make_params


class LoadedMemory(wiring.Component):
    """A loaded memory behind ports: the write port, and a read port registered as PEs do."""

    def __init__(self, width, depth):
        self.width, self.depth = width, depth
        super().__init__({"load": In(load_signature(width)), "addr": In(range(depth)),
                          "en": In(1), "data": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.data.eq(loaded_memory(m, "mem", self.width, self.depth, self.load,
                                               self.addr, self.en))
        return m


@pytest.mark.parametrize("depth", [5, URAM_DEPTH + 37])      # one bank; two, the last short
def test_a_loaded_memory_reads_back_every_word(depth):
    width = 11
    dut = LoadedMemory(width, depth)
    rng = np.random.default_rng(depth)
    words = [int(w) for w in rng.integers(0, 2 ** width, depth)]

    async def bench(ctx):
        k = 0
        while k < depth:                        # words in address order, with idle cycles
            valid = rng.random() < 0.7
            ctx.set(dut.load.valid, int(valid))
            ctx.set(dut.load.data, words[k] if valid else 0)
            await ctx.tick()
            k += valid
        ctx.set(dut.load.valid, 0)
        held = None
        for addr in [*rng.permutation(depth)[:300], 0, depth - 1]:
            en = rng.random() < 0.8
            ctx.set(dut.addr, int(addr))
            ctx.set(dut.en, int(en))
            await ctx.tick()
            held = words[addr] if en else held
            assert ctx.get(dut.data) == held, f"address {addr}"
    simulate(dut, bench)


def test_the_loader_fills_its_targets_in_order_then_passes_frames_through():
    targets = [LoadTarget("a", 20, 3), LoadTarget("b", 5, 4)]   # 3 beats a word; 1 beat a word
    bits, lanes = 4, 2
    dut = WeightLoader(bits, lanes, targets)
    rng = np.random.default_rng(7)
    words = {t.name: [int(w) for w in rng.integers(0, 2 ** t.width, t.depth)] for t in targets}
    image = load_image([(t, words[t.name]) for t in targets], bits, lanes)
    assert len(image) == dut.beats == 3 * 3 + 4
    frames = rng.integers(-8, 8, (6, lanes))
    got = {t.name: [] for t in targets}
    passed = []

    async def bench(ctx):
        beats = [*image, *frames]
        k = 0
        while len(passed) < len(frames):
            valid = k < len(beats) and rng.random() < 0.7
            ready = rng.random() < 0.6
            ctx.set(dut.i.valid, int(valid))
            if valid:
                ctx.set(dut.i.payload, [int(v) for v in beats[k]])
            ctx.set(dut.o.ready, int(ready))
            loading = ctx.get(dut.loading)
            assert ctx.get(dut.o.valid) == (valid and not loading)
            if loading:
                assert ctx.get(dut.i.ready)
            elif ctx.get(dut.o.valid) and ready:
                passed.append([int(v) for v in ctx.get(dut.o.payload)])
            fire = valid and ctx.get(dut.i.ready)
            for n, t in enumerate(targets):
                port = getattr(dut, f"load{n}")
                if ctx.get(port.valid):
                    got[t.name].append(ctx.get(port.data))
            await ctx.tick()
            k += fire
    simulate(dut, bench)
    assert got == words
    assert passed == frames.tolist()


def test_a_weight_load_image_rejects_words_that_do_not_fit():
    with pytest.raises(ValueError, match="3 words for a memory of 4"):
        load_image([(LoadTarget("x", 8, 4), [1, 2, 3])], 8, 1)
    with pytest.raises(ValueError, match="does not fit 8 bits"):
        load_image([(LoadTarget("x", 8, 1), [256])], 8, 1)


def test_ultra_weights_need_a_memory_of_more_than_one_word():
    p = make_params(1, cin=4, cout=4, kernel=1, pe=4, simd=4, pixels=1)
    with pytest.raises(ValueError, match="groups \\* steps > 1"):
        replace(p, weight_style=MemoryStyle.ULTRA)


# (width, depth): one URAM its full width; two side by side; two banks; a short memory
# (yosys takes most of a minute on a memory both wide and deeper than one bank).
SHAPES = [(72, 1024), (144, 1000), (16, URAM_DEPTH + 300), (16, 64)]


@pytest.mark.synth
@pytest.mark.parametrize("width, depth", SHAPES)
def test_a_loaded_memory_synthesizes_to_its_model(width, depth):
    from sim.synth import synthesize
    cells = synthesize(LoadedMemory(width, depth), "loaded_memory", "xcup")
    model = loaded_memory_resources(width, depth, "ultrascale")
    assert cells["uram"] == model.uram == uram_count(width, URAM_DEPTH) * -(-depth // URAM_DEPTH)
    assert cells["bram18"] == 0
    assert cells["ff"] == model.ff, cells
    assert abs(cells["lut"] - model.lut) <= 0.15 * model.lut + 3, (cells, model)


@pytest.mark.synth
def test_a_matrix_vector_unit_with_weights_in_uram_maps_to_its_model():
    from sim.synth import synthesize
    p = make_params(2, cin=64, cout=16, kernel=1, pe=4, simd=8, pixels=1)
    mvu = MatrixVectorUnit(replace(p, weight_style=MemoryStyle.ULTRA))
    model = mvu.resources("ultrascale")
    cells = synthesize(mvu, "mvu_uram", "xcup")
    assert model.uram == cells["uram"] == 4          # 4 x 8 x 8 = 256 bits: 4 URAMs wide
    assert cells["bram18"] == model.bram18 == 0
    assert cells["dsp"] == model.dsp
