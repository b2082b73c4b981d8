"""wrapping_counter: value and registered first/last flags against a Python model under random
steps and resets (Amaranth's simulator), and the point of it, measured: after yosys synthesis
for UltraScale+, a 12-bit counter's increment feeds its flip-flops directly."""

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rtl_templates.counter import wrapping_counter
from sim.logic_depth import max_logic_levels, rtlil_logic_depth


class _Counted(wiring.Component):
    def __init__(self, limit: int):
        self.limit = limit
        self.domain = ClockDomain("sync")
        super().__init__({"step": In(1), "value": Out(range(max(limit, 2))),
                          "first": Out(1), "last": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.domain
        c = wrapping_counter(m, "count", self.limit, self.step)
        m.d.comb += [self.value.eq(c.value), self.first.eq(c.first), self.last.eq(c.last)]
        return m


@pytest.mark.parametrize("limit", [1, 2, 5, 16])
def test_counter_follows_its_model_under_random_steps_and_resets(limit):
    dut = _Counted(limit)
    rng = np.random.default_rng(limit)
    steps = rng.integers(0, 2, 300)
    resets = rng.random(300) < 0.03
    seen = []

    async def bench(ctx):
        for step, reset in zip(steps, resets):
            ctx.set(dut.step, int(step))
            ctx.set(dut.domain.rst, int(reset))
            seen.append((ctx.get(dut.value), ctx.get(dut.first), ctx.get(dut.last)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    value = 0
    for step, reset, (got, first, last) in zip(steps, resets, seen):
        assert (got, first, last) == (value, int(value == 0), int(value == limit - 1))
        value = 0 if reset else (value + step) % limit


def test_limit_must_be_a_positive_int():
    with pytest.raises(ValueError, match="limit must be a positive int, not 0"):
        wrapping_counter(Module(), "c", 0, Signal())


@pytest.mark.synth
def test_wide_counter_is_an_increment_into_its_flip_flops():
    # LUT (bit 0's inverter) + CARRY4 entry + two cascades: about 2.15 levels, where a compare
    # and a wrap mux after the carries measured 3.15 (docs/timing.md).
    text = rtlil.convert(_Counted(4000), name="counted", emit_src=False)
    levels, path = rtlil_logic_depth(text, "counted", "ultrascale")
    assert levels < 2.5, path
    assert levels <= max_logic_levels("ultrascale", 250)
