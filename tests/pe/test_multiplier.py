"""The registered multiplier (rtl_templates/multiplier.py): exact products at the extremes of
signed operands, ``stages`` enabled cycles late, under gaps and backpressure on Verilator; its
module form (generic, and MULT18X18D with registers when read for the ECP5) held to
:func:`product_cost` by yosys."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl_templates.multiplier import (PRODUCT_STAGES, WIDE_PRODUCT_STAGES, module_name,
                                      multiplier_verilog, product_cost, registered_product,
                                      verilog_defines)
from rtl_templates.pe import beat_signature
from sim.bench import VerilatorBench
from sim.synth import synthesize_file

#: (a_bits, b_bits, stages): a DSP product, a requantizer's (split on ECP5), one kept in LUTs.
SHAPES = {"p8x8": (8, 8, PRODUCT_STAGES), "p30x16": (30, 16, WIDE_PRODUCT_STAGES),
          "p4x4": (4, 4, PRODUCT_STAGES)}


class _Product(wiring.Component):
    """``a * b`` of the two lanes of each input beat, as the PEs pipeline it: every register
    moves when the output register is empty or read."""

    def __init__(self, a_bits, b_bits, stages):
        self.a_bits, self.b_bits, self.stages = a_bits, b_bits, stages
        super().__init__({"i": In(beat_signature(max(a_bits, b_bits), 2)),
                          "o": Out(beat_signature(a_bits + b_bits, 1))})

    def elaborate(self, platform):
        m = Module()
        advance = ~self.o.valid | self.o.ready
        valid = [self.i.valid & advance] + [Signal(name=f"v{t}") for t in range(self.stages)]
        with m.If(advance):
            m.d.sync += [later.eq(earlier) for earlier, later in zip(valid, valid[1:])]
        product = registered_product(m, "product", self.i.payload[0][:self.a_bits],
                                     self.i.payload[1][:self.b_bits], advance, self.stages)
        m.d.comb += [self.i.ready.eq(advance), self.o.valid.eq(valid[-1]),
                     self.o.payload[0].eq(product)]
        return m


BENCH = VerilatorBench("multiplier_bench", {name: _Product(*s) for name, s in SHAPES.items()})


def _operands(a_bits, b_bits, rng, count=200):
    """The four corners of the signed ranges, then random pairs."""
    lo_a, hi_a = -2 ** (a_bits - 1), 2 ** (a_bits - 1) - 1
    lo_b, hi_b = -2 ** (b_bits - 1), 2 ** (b_bits - 1) - 1
    corners = [(x, y) for x in (lo_a, hi_a, 0, -1) for y in (lo_b, hi_b, 0, -1)]
    rand = np.stack([rng.integers(lo_a, hi_a + 1, count), rng.integers(lo_b, hi_b + 1, count)], 1)
    return np.concatenate([np.array(corners), rand])


@pytest.mark.parametrize("name", SHAPES)
def test_product_is_exact_under_gaps_and_backpressure(name):
    a_bits, b_bits, stages = SHAPES[name]
    beats = _operands(a_bits, b_bits, np.random.default_rng(7))
    want = beats[:, :1] * beats[:, 1:]
    rough = BENCH.run(name, {"i": beats}, {"o": len(beats)}, idle=0.3, backpressure=0.3)
    np.testing.assert_array_equal(rough.beats["o"], want)
    steady = BENCH.run(name, {"i": beats}, {"o": len(beats)}, idle=0, backpressure=0,
                       tag="timing")
    np.testing.assert_array_equal(steady.beats["o"], want)
    assert steady.latency("i", "o") == stages


def test_stages_are_checked():
    with pytest.raises(ValueError, match="stages must be 3 or 4, not 2"):
        registered_product(Module(), "p", Signal(8), Signal(8), Signal(), 2)


@pytest.mark.synth
@pytest.mark.parametrize("family", ["xc7", "ecp5"])
@pytest.mark.parametrize("shape", [(8, 8, 3), (8, 16, 4), (20, 16, 4), (30, 16, 4), (40, 16, 4)])
def test_module_synthesizes_to_its_cost(tmp_path, family, shape):
    a_bits, b_bits, stages = shape
    top = "product_top"
    (tmp_path / "p.v").write_text(multiplier_verilog(*shape) + f"""
module {top}(input clk, input en, input signed [{a_bits - 1}:0] a,
    input signed [{b_bits - 1}:0] b, output signed [{a_bits + b_bits - 1}:0] p);
  {module_name(*shape)} u (.clk(clk), .en(en), .a(a), .b(b), .p(p));
endmodule
""")
    cells = synthesize_file(tmp_path / "p.v", top, family)
    board_family = {"xc7": "7series", "ecp5": "ecp5"}[family]
    cost = product_cost(a_bits, b_bits, stages, board_family)
    assert cells["dsp"] == cost.dsp
    if family == "ecp5":
        # Every register is accounted for: the operands' and the sum's in fabric, the rest
        # inside the MULT18X18Ds; the sum of the pieces is carry cells.
        assert verilog_defines(family)
        assert cells["ff"] == sum(cost.operand_ff) + cost.ff
        assert 2 * cells.get("CCU2C", 0) == cost.lut
    elif cost.dsp == 1:
        # One DSP48 holds the operand, M and P registers; a fourth stage is flip-flops.
        assert cells["ff"] == cost.ff
