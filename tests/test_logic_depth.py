"""Timing evidence: every stage kind at its widest folding within the logic depth the board's
clock allows (:func:`sim.logic_depth.max_logic_levels`, docs/timing.md).

Each build is shared by its parametrizations; depths are cached by RTLIL hash
(``cache_root()/depth``), so a second run does not synthesize again. Stage kinds known to exceed
the rule are expected failures (a kind that pipelining brings within the rule simply passes;
its entry in :data:`EXCEEDS` then goes).
"""

from __future__ import annotations

import pytest

from boards import get_board
from hwgen.build import BuildOptions, build
from hwgen.hwgraph import Op
from sim.logic_depth import max_logic_levels, netlist_depth, stage_logic_depth

#: (model, options, board): small builds covering every stage kind, on a 7-series and on
#: UltraScale+ boards (three levels at 250 MHz, the stricter rule).
BUILDS = {
    "mobilenet_v1-vc707": ("mobilenet_v1", {"width": 0.25, "resolution": 32, "num_classes": 10},
                           "vc707"),
    "mobilenet_v2-zcu104": ("mobilenet_v2", {"width": 0.35, "resolution": 32, "num_classes": 10},
                            "zcu104"),
    "squeezenet-zcu104": ("squeezenet", {"resolution": 64, "num_classes": 10}, "zcu104"),
    "shufflenet_v1-zcu104": ("shufflenet_v1", {"width": 0.25, "resolution": 32,
                                               "num_classes": 10}, "zcu104"),
    "shufflenet_v2-zcu104": ("shufflenet_v2", {"width": 0.5, "resolution": 32, "num_classes": 10},
                             "zcu104"),
    "mobilenet_v3_small-zcu104": ("mobilenet_v3_small", {"width": 0.5, "resolution": 32,
                                                         "num_classes": 10}, "zcu104"),
}

_BASE = ["conv", "depthwise", "fc", "global_avgpool", "fifo", "width_converter", "add", "fork"]
#: Per build, the kinds measured: every kind in at least one build, each build adding the kinds
#: it brings (SqueezeNet's concat FIFOs hold thousands of beats; its pools follow BRAM windows).
KINDS = {
    "mobilenet_v1-vc707": _BASE,
    "mobilenet_v2-zcu104": _BASE,
    "squeezenet-zcu104": ["maxpool", "concat", "fifo", "global_avgpool"],
    "shufflenet_v1-zcu104": ["avgpool", "channel_shuffle", "lut_activation", "maxpool"],
    "shufflenet_v2-zcu104": ["split", "concat"],
    "mobilenet_v3_small-zcu104": ["channel_scale", "lut_activation"],
}
CASES = [(key, kind) for key, kinds in KINDS.items() for kind in kinds]

#: Per build, stage kinds measured beyond the rule (docs/timing.md). None today: every kind
#: meets 200 MHz on 7-series and 250 MHz on UltraScale+; a kind a change pushes over goes here
#: with its measurement, so the suite records it rather than hides it.
EXCEEDS: dict[str, set[str]] = {key: set() for key in BUILDS}


@pytest.fixture(scope="module")
def widest(tmp_path_factory):
    """Per build: the widest stage (most lanes; for FIFOs the deepest, whose counts are
    widest) of every kind."""
    def size(st):
        lanes = st.pe * st.simd
        return (st.fifo_depth, lanes) if st.op is Op.FIFO else (lanes,)

    out = {}
    for key, (model, options, board) in BUILDS.items():
        result = build(BuildOptions(model=model, board=board, model_options=options,
                                    out_dir=tmp_path_factory.mktemp(key), calibration_images=1))
        kinds = {}
        for part in result.parts:
            for st in part.hw.stages():
                best = kinds.get(st.op.value)
                if best is None or size(st) > size(best):
                    kinds[st.op.value] = st
        out[key] = kinds
    return out


def test_every_stage_kind_is_measured():
    assert {kind for _, kind in CASES} == {op.value for op in Op}


@pytest.mark.synth
@pytest.mark.parametrize(("key", "kind"), CASES)
def test_widest_stage_of_each_kind_is_within_the_clock_rule(widest, key, kind):
    stage = widest[key].get(kind)
    if stage is None:
        pytest.skip(f"{key} has no {kind} stage")
    board = get_board(BUILDS[key][2])
    depth = stage_logic_depth(stage, board.family)
    allowed = max_logic_levels(board.family, board.clock_mhz)
    print(f"{key} {kind} {stage.name} PE {stage.pe} SIMD {stage.simd}: {depth} levels, "
          f"{allowed} allowed at {board.clock_mhz:g} MHz")
    if kind in EXCEEDS[key] and depth > allowed:
        pytest.xfail(f"{kind}: {depth} levels > {allowed} (not yet pipelined)")
    assert depth <= allowed


@pytest.mark.synth
def test_fallback_script_measures_as_the_default(widest):
    # The no-lutpack script runs only where the default aborts; on a stage both synthesize
    # it must give the same depth, so a fallback measurement is one of the same kind.
    from sim.logic_depth import _stage_rtlil, rtlil_logic_depth

    top, text, roms = _stage_rtlil(widest["squeezenet-zcu104"]["maxpool"])
    default = rtlil_logic_depth(text, top, "xcup", roms, script="default")
    fallback = rtlil_logic_depth(text, top, "xcup", roms, script="no-lutpack")
    assert default[0] == pytest.approx(fallback[0]) and default[0] >= 1
    with pytest.raises(ValueError, match="no yosys script 'abc9' for xcup; known: default, no-lutpack"):
        rtlil_logic_depth(text, top, "xcup", roms, script="abc9")


def _cell(kind, ins, outs):
    return {"type": kind,
            "port_directions": {**{p: "input" for p in ins}, **{p: "output" for p in outs}},
            "connections": {**ins, **outs}}


def test_carry_chain_counts_its_entry_and_a_fraction_per_cascaded_cell():
    # FF -> LUT -> CARRY4 -> CARRY4 (through CI) -> FF: 1 + 508/642 + 114/642 levels.
    cells = {"ff0": _cell("FDRE", {"D": [9]}, {"Q": [2]}),
             "lut": _cell("$lut", {"A": [2]}, {"Y": [3]}),
             "c0": _cell("CARRY4", {"S": [3, 3, 3, 3], "CI": ["0"]}, {"CO": [4, 5, 6, 7]}),
             "c1": _cell("CARRY4", {"S": ["0"] * 4, "CI": [7]}, {"CO": [8, 10, 11, 12]}),
             "ff1": _cell("FDRE", {"D": [12]}, {"Q": [13]})}
    levels, path = netlist_depth({"modules": {"top": {"cells": cells}}}, "top")
    assert levels == pytest.approx(1 + 508 / 642 + 114 / 642)
    assert path == ["$lut", "CARRY4", "CARRY4"]


def test_rule_allows_fewer_levels_at_a_faster_clock():
    assert max_logic_levels("7series", 100) > max_logic_levels("7series", 200) > 0
    with pytest.raises(ValueError):
        max_logic_levels("7series", 0)
    with pytest.raises(ValueError):
        max_logic_levels("stratix", 100)


def test_parallel_measurement_needs_a_positive_job_count():
    from sim.logic_depth import stage_depths

    with pytest.raises(ValueError, match="jobs must be a positive int, not 0"):
        stage_depths(None, "7series", jobs=0)
