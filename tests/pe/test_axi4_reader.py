"""DDR-streamed weights (rtl_templates.axi4_reader): the AXI4 reader streams its region's
words in order, pass after pass, under memory latency, gaps and consumer backpressure, with
legal bursts; a matrix-vector unit fed by it is exact and runs at its cycle model's DDR bound;
the reader's resource model against yosys."""

from dataclasses import replace

import numpy as np
import pytest

from rtl_templates.axi4_reader import (BOUNDARY_BYTES, Axi4Reader, ReaderParams, ddr_image,
                                       reader_port_bits)
from rtl_templates.matrix_vector_unit import MatrixVectorUnit
from rtl_templates.resources import MemoryStyle

from amaranth_sim import simulate
from test_matrix_vector_unit import make_params


class Memory:
    """An AXI4 read slave for a testbench: bursts answered in order ``latency`` cycles after
    their address, a beat when the token bucket holds one (``rate`` bytes a cycle) and a coin
    says so; every burst checked against the region and the 4 KB rule."""

    def __init__(self, image: bytes, beat_bytes: int, latency: int, rate: float, rng,
                 gaps: float = 0.0):
        self.image, self.beat_bytes, self.latency, self.rate = image, beat_bytes, latency, rate
        self.rng, self.gaps, self.tokens = rng, gaps, 0.0
        self.queue, self.beat, self.bursts = [], 0, []

    async def drive(self, ctx, bus, cycle):
        """Set this cycle's inputs; returns a callable that samples the handshakes."""
        ctx.set(bus.arready, int(len(self.queue) < 4))
        head = self.queue[0] if self.queue else None
        valid = (head is not None and cycle >= head[2] and self.tokens >= self.beat_bytes
                 and self.rng.random() >= self.gaps)
        ctx.set(bus.rvalid, int(valid))
        if valid:
            addr = head[0] + self.beat * self.beat_bytes
            ctx.set(bus.rdata, int.from_bytes(self.image[addr:addr + self.beat_bytes], "little"))
            ctx.set(bus.rlast, int(self.beat + 1 == head[1]))

        def sample():
            if ctx.get(bus.arvalid) and len(self.queue) < 4:
                addr, beats = ctx.get(bus.araddr), ctx.get(bus.arlen) + 1
                assert addr + beats * self.beat_bytes <= len(self.image), (addr, beats)
                assert addr // BOUNDARY_BYTES == (addr + beats * self.beat_bytes - 1) // BOUNDARY_BYTES
                self.bursts.append((addr, beats))
                self.queue.append([addr, beats, cycle + self.latency])
            if valid:
                assert ctx.get(bus.rready)
                self.tokens -= self.beat_bytes
                self.beat += 1
                if self.beat == head[1]:
                    self.queue.pop(0)
                    self.beat = 0
            self.tokens = min(self.tokens + self.rate, self.rate + self.beat_bytes)
        return sample


# (word bits, words): 8-bit words four to a 32-bit beat, the region's last beat full or part
# empty (300 and 1,027 words: one burst and two, the last short); words of two 128-bit beats;
# a one-burst region of 64-bit words, one a beat; 24-bit words, one a 32-bit beat.
SHAPES = [(8, 300), (8, 1027), (200, 50), (64, 37), (24, 77)]


@pytest.mark.parametrize("word_bits, words", SHAPES)
def test_the_reader_streams_its_region_pass_after_pass(word_bits, words):
    p = ReaderParams(word_bits, words)
    assert p.data_bits == reader_port_bits(word_bits)
    assert p.words_per_beat == (4 if word_bits == 8 else 1)
    dut = Axi4Reader(p)
    rng = np.random.default_rng(word_bits)
    values = [int(v) for v in rng.integers(0, 2 ** min(word_bits, 62), words)]
    values = [v | (1 << (word_bits - 1)) if k % 3 == 0 else v for k, v in enumerate(values)]
    memory = Memory(ddr_image(p, values), p.beat_bytes, latency=7, rate=p.beat_bytes, rng=rng,
                    gaps=0.2)
    got = []

    async def bench(ctx):
        ctx.set(dut.base, 0)
        cycle = 0
        while len(got) < 3 * words:
            sample = await memory.drive(ctx, dut.bus, cycle)
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, int(ready))
            if ctx.get(dut.o.valid) and ready:
                got.append(ctx.get(dut.o.payload))
            sample()
            await ctx.tick()
            cycle += 1
            assert cycle < 50_000
    simulate(dut, bench)
    assert got == values * 3
    lengths = [b for _, b in memory.bursts]
    assert set(lengths[:p.bursts]) <= {p.burst, p.region_beats - (p.bursts - 1) * p.burst}
    assert [a for a, _ in memory.bursts[:p.bursts]] == [k * p.burst * p.beat_bytes
                                                        for k in range(p.bursts)]


def test_a_unit_with_weights_from_ddr_is_exact_at_its_ddr_bound():
    p = make_params(4, cin=64, cout=16, kernel=1, pe=2, simd=4, pixels=2)
    rate = 2.0                                   # bytes a cycle: well under a beat (8 bytes)
    mvu = MatrixVectorUnit(replace(p, weight_style=MemoryStyle.DDR, ddr_bytes_per_cycle=rate))
    r = mvu.reader_params
    assert mvu.ddr_bytes_per_frame() == 2 * r.region_bytes
    assert mvu.cycles_per_frame() == mvu.ddr_cycles_per_frame() > 2 * p.groups * p.steps
    rng = np.random.default_rng(3)
    frames = 4
    beats = rng.integers(-128, 128, (frames * p.pixels * p.steps, p.simd))
    want = mvu.behaviour(beats)
    memory = Memory(ddr_image(r, mvu.load_words()), r.beat_bytes, latency=30, rate=rate, rng=rng)
    got, first_of_frame = [], []
    per_frame = p.pixels * p.groups

    async def bench(ctx):
        ctx.set(mvu.ddr_base, 0)
        k, cycle = 0, 0
        while len(got) < len(want):
            sample = await memory.drive(ctx, mvu.ddr, cycle)
            ctx.set(mvu.i.valid, int(k < len(beats)))
            if k < len(beats):
                ctx.set(mvu.i.payload, [int(v) for v in beats[k]])
            ctx.set(mvu.o.ready, 1)
            if ctx.get(mvu.o.valid):
                if len(got) % per_frame == 0:
                    first_of_frame.append(cycle)
                got.append([int(v) for v in ctx.get(mvu.o.payload)])
            k += k < len(beats) and ctx.get(mvu.i.ready)
            sample()
            await ctx.tick()
            cycle += 1
            assert cycle < 100_000
    simulate(mvu, bench)
    assert got == want.tolist()
    steady = np.diff(first_of_frame[1:])
    assert all(abs(d - mvu.cycles_per_frame()) <= 0.02 * mvu.cycles_per_frame() for d in steady), \
        (steady, mvu.cycles_per_frame())


@pytest.mark.synth
@pytest.mark.parametrize("word_bits, words", [(8, 1027), (200, 50), (128, 3000)])
def test_the_reader_synthesizes_to_its_model(word_bits, words):
    from sim.synth import synthesize
    p = ReaderParams(word_bits, words)
    model = Axi4Reader(p).resources("ultrascale")
    cells = synthesize(Axi4Reader(p), "axi4_reader", "xcup")
    assert cells["bram18"] == model.bram18 and cells["dsp"] == 0
    assert abs(cells["ff"] - model.ff) <= 0.15 * model.ff + 4, (cells, model)
    assert abs(cells["lut"] - model.lut) <= 0.15 * model.lut + 4, (cells, model)
