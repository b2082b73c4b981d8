"""A whole generated design through yosys synthesis, for the ECP5 and for 7-series Xilinx.

``hwgen_top.v`` is read as written (``read_verilog`` without ``-defer``: the ROM module's
default parameters elaborate), its weight ROMs in LUTs map to LUTs (``rom_style`` spelled for
the tool reading it), and the netlist is held to the resource model: multipliers and block RAMs
within 10% (what the PE-level synthesis tests hold them to, plus what the whole design adds:
yosys maps a few narrow products of the requantizers to DSPs as well), LUTs and flip-flops
within a factor of two (rough models; the FF model counts too few pipeline registers).
"""

from __future__ import annotations

import pytest

from hwgen.build import BuildOptions, build
from rtl_templates.axis_top import TOP_NAME
from sim.synth import synthesize_file

#: MobileNet V1 reduced: every stage kind of a depthwise-separable network, fully folded.
MODEL = {"width": 0.25, "resolution": 32, "num_classes": 10}


@pytest.mark.synth
@pytest.mark.parametrize("board, family", [("ecp5-85f", "ecp5"), ("pynq-z2", "xc7")])
def test_whole_design_synthesizes_within_the_resource_model(tmp_path, board, family):
    result = build(BuildOptions(model="mobilenet_v1", board=board, fps=50, out_dir=tmp_path,
                                model_options=MODEL, calibration_images=1))
    (part,) = result.parts
    model = part.resources
    cells = synthesize_file(result.emitted[0].verilog, TOP_NAME, family)
    print(f"{board}: model {model}; yosys dsp {cells['dsp']} bram18 {cells['bram18']} "
          f"lut {cells['lut']} ff {cells['ff']}")
    assert abs(cells["dsp"] - model.dsp) <= max(1, model.dsp // 10)
    assert abs(cells["bram18"] - model.bram18) <= max(1, model.bram18 // 10)
    assert 0.5 <= model.lut / cells["lut"] <= 2
    assert 0.5 <= model.ff / cells["ff"] <= 2
