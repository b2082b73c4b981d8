"""The compiler without a simulator: lowering, folding, FIFO sizing, partitioning, reports,
emission determinism and the CLI's errors. (Co-simulation: tests/test_network_cosim.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from boards import get_board
from dataflows.quantize import QuantConfig, quantize
from dataflows.source import load_model
from hwgen.cli import main
from hwgen.compile import (DdrWeights, LayerTooLargeError, PaceUnreachableError, _shares, compile_model,
                           output_partitions, partition_sources)
from hwgen.fifo_sizing import JOINS
from hwgen.fold import candidates, fold_for, insert_width_converters, stage_cycles
from hwgen.hwgraph import Op
from hwgen.lower import LoweringError, lower
from hwgen.build import make_report
from hwgen.report import REPORT_KEYS, render_markdown
from hwgen.units import stage_units
from rtl_templates.resources import MemoryStyle

warnings.filterwarnings("ignore", message=".*created but never used")

SMALL = {  # every zoo model, reduced so the whole suite stays fast
    "squeezenet": {"resolution": 32},
    "squeezenet1_1": {"resolution": 32},
    "mobilenet_v1": {"resolution": 32, "width": 0.25},
    "mobilenet_v2": {"resolution": 32, "width": 0.35},
    "mobilenet_v3_small": {"resolution": 32, "width": 0.5},
    "mobilenet_v3_large": {"resolution": 32, "width": 0.35},
    "shufflenet_v1": {"resolution": 32, "width": 0.25},
    "shufflenet_v2": {"resolution": 32, "width": 0.5},
    "efficientnet_b0": {"resolution": 32},
}


def quantized(name, **options):
    return quantize(load_model(name, **options).model, QuantConfig(calibration_images=1))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_lowering_and_cycle_closed_form(name):
    """Every model lowers; the folding's closed-form cycles equal the PEs' own models."""
    q = quantized(name, **SMALL[name])
    hw = lower(q)
    assert hw.input is not None and hw.output is not None
    layers = {s.layer for s in hw.stages() if s.layer}
    weighted = set(q.model.weighted_layers())
    assert weighted <= layers, f"weighted layers without a stage: {weighted - layers}"
    for target in (10**9, 20_000):
        fold_for(hw, target)
        for st in hw.stages():
            units = stage_units(st)
            assert stage_cycles(st, st.pe, st.simd) == max(u.cycles_per_frame() for _, u in units), st.name


def test_folding_balances_to_the_bottleneck():
    q = quantized("squeezenet", resolution=64)
    hw = lower(q)
    fold_for(hw, 50_000)
    for st in hw.stages():
        cyc = stage_cycles(st, st.pe, st.simd)
        fastest = min(stage_cycles(st, *c) for c in candidates(st))
        assert cyc <= 50_000 or cyc == fastest, st.name
    insert_width_converters(hw)
    for src, sport, dst, dport in hw.edges():
        assert hw.stage(src).out_lanes == hw.stage(dst).in_lanes(dport), (src, dst)


def test_squeezenet_on_vc707_fits_on_chip():
    """The flagship: SqueezeNet 1.0 at 227 entirely on the VC707 within its 85% budget."""
    board = get_board("vc707")
    q = quantized("squeezenet")
    parts = compile_model(q, board)
    assert len(parts) == 1
    report = make_report("squeezenet", board, q.model, parts, 8)
    budget = board.budget()
    used = report["resources"]["used"]
    assert used["dsp"] <= budget.dsp and used["bram18"] <= budget.bram18
    assert used["lut"] <= budget.lut
    assert report["fits_on_chip"] and report["partitions"] == 1
    assert set(REPORT_KEYS) <= set(report)
    # conv1 (7x7 over 3 channels) takes more than its 3 channels a cycle by reading kernel
    # columns side by side; with SIMD <= 3 it set the pace at 111*111 pixels x 49 steps.
    assert parts[0].hw.stage("conv1").simd % 3 == 0 and parts[0].hw.stage("conv1").simd > 3
    assert report["cycles_per_frame"] < 111 * 111 * 49
    assert report["mac_efficiency"] >= 0.9
    joins = [s for s in parts[0].hw.stages() if s.op in JOINS]
    fifos = [s for s in parts[0].hw.stages() if s.op is Op.FIFO and "_fifo" in s.name]
    # Per Fire concat: the expand1x1 bypass, and two pixels before the expand3x3 input.
    assert len(joins) == 8 and len(fifos) == 16
    assert {f.name.rsplit("/", 1)[1] for f in fifos} == {"a_fifo", "b_fifo"}


def test_partitioning_reports_ddr_traffic():
    # 4.2 M weights: more than the ZCU102's block RAM and LUTs together (the VC707 holds
    # them, part of them as LUT ROMs)
    board = get_board("zcu102")
    q = quantized("mobilenet_v1")
    parts = compile_model(q, board, ddr_weights=DdrWeights.OFF)    # partitions, not streaming
    assert len(parts) > 1
    report = make_report("mobilenet_v1", board, q.model, parts, 8)
    assert not report["fits_on_chip"] and report["partitions"] == len(parts)
    assert report["bandwidth"]["ddr_mbps"] > 0
    assert len(report["partition_details"]) == len(parts)
    for p in parts:
        assert p.resources.bram18 <= board.budget().bram18


def test_weights_move_into_luts_when_block_ram_runs_out():
    """SqueezeNet 1.1 needs more block RAM than the ZCU104 has; its worst-packed weight ROMs
    go into LUTs, and the whole network stays on chip."""
    board = get_board("zcu104")
    parts = compile_model(quantized("squeezenet1_1"), board)
    assert len(parts) == 1
    budget, used = board.budget(), parts[0].resources
    assert used.bram18 <= budget.bram18 and used.lut <= budget.lut
    moved = [s for s in parts[0].hw.stages() if s.weight_style is MemoryStyle.LUT]
    assert moved
    for st in moved:
        mvu = stage_units(st)[-1][1]
        assert mvu.weight_memory_resources(board.family).bram18 == 0
        assert mvu.params.weight_style is MemoryStyle.LUT


def test_a_layer_that_cannot_fit_is_named():
    q = quantized("efficientnet_b0")
    with pytest.raises(LayerTooLargeError,
                       match=r"^layer '.*' .* needs [\d,]+ \w+ .*\(over by [\d,]+\)") as info:
        compile_model(q, get_board("ecp5-85f"))
    exc = info.value
    assert exc.needed > exc.budget == getattr(get_board("ecp5-85f").budget(), exc.resource)
    assert exc.layer in str(exc) and exc.first in str(exc) and exc.last in str(exc)


def test_a_layer_too_large_for_a_partition_is_split_by_output_channels():
    # SqueezeNet 1.1's conv10 (512 -> 1000) needs 255 BRAM18 fully folded; the PYNQ-Z2's
    # budget is 238. It becomes two partitions of 500 output channels reading the same input.
    board = get_board("pynq-z2")
    q = quantized("squeezenet1_1", resolution=32)
    parts = compile_model(q, board)
    graphs = [p.hw for p in parts]
    split = [k for k, g in enumerate(graphs) if g.channels is not None]
    assert len(split) == 2
    a, b = (graphs[k].channels for k in split)
    assert (a.layer, a.lo, a.hi, a.of) == ("conv10", 0, 500, 1000)
    assert (b.layer, b.lo, b.hi, b.of) == ("conv10", 500, 1000, 1000)
    sources = partition_sources(graphs)
    assert sources[0] == [] and sources[split[0]] == sources[split[1]] == [split[0] - 1]
    assert sources[split[1] + 1] == split     # the pool reads both halves
    assert output_partitions(graphs) == [len(parts) - 1]
    for k, lo in zip(split, (0, 500)):
        assert parts[k].resources.bram18 <= board.budget().bram18
        stage = graphs[k].stage(f"conv10/out{lo}-{lo + 499}")
        assert stage.out_shape.c == 500 and stage.qparams.weight.shape[0] == 500
        assert stage.layer == "conv10"
    report = make_report("squeezenet1_1", board, q.model, parts, 8)
    details = report["partition_details"]
    assert details[split[0]]["channels"] == {"layer": "conv10", "lo": 0, "hi": 500, "of": 1000}
    # Each half reads the whole input and writes its 500 channels.
    x = graphs[split[0]].input_shape
    assert details[split[0]]["ddr_bytes_per_frame"] == x.h * x.w * x.c + x.h * x.w * 500


def test_a_partition_faster_than_its_ddr_traffic_runs_at_the_ddr_pace():
    # On the ECP5 board (0.2 GB/s at 100 MHz: 2 bytes a cycle) SqueezeNet 1.1's last
    # partition, the pool after the split conv10, computes faster than it can read its input.
    board = get_board("ecp5-85f")
    q = quantized("squeezenet1_1", resolution=32)
    parts = compile_model(q, board)
    report = make_report("squeezenet1_1", board, q.model, parts, 8)
    details = report["partition_details"]
    per_cycle = board.ddr_gbps * 1e9 / (board.clock_mhz * 1e6)
    for d in details:
        assert d["ddr_cycles"] == -(-d["ddr_bytes_per_frame"] // per_cycle)
    paces = [max(d["cycles_per_frame"], d["ddr_cycles"]) for d in details]
    assert report["cycles_per_frame"] == sum(paces)
    limited = [d["index"] for d in details if d["ddr_cycles"] > d["cycles_per_frame"]]
    assert limited and report["ddr_limited"] == limited
    assert report["bandwidth"]["board_ddr_mbps"] == board.ddr_gbps * 1e3


def test_a_pace_counts_the_partitions_ddr_waits():
    # The same ECP5 design: asked for a rate between its compute's fastest and its fastest
    # with the DDR waits, it is refused naming the waiting partition; just under the latter it
    # is met, the waiting partition folded down to its DDR time.
    board = get_board("ecp5-85f")
    q = quantized("squeezenet1_1", resolution=32)
    fastest = make_report("squeezenet1_1", board, q.model, compile_model(q, board), 8)
    compute = sum(d["cycles_per_frame"] for d in fastest["partition_details"])
    assert compute < fastest["cycles_per_frame"]
    clock = board.clock_mhz * 1e6
    between = clock / ((compute + fastest["cycles_per_frame"]) // 2)
    with pytest.raises(PaceUnreachableError, match="DDR makes partition 5 wait"):
        compile_model(q, board, fps=between)
    fps = clock / (fastest["cycles_per_frame"] + 10)
    report = make_report("squeezenet1_1", board, q.model, compile_model(q, board, fps=fps), 8)
    assert report["fps"] >= fps


def test_the_pace_shared_out_gives_a_waiting_partition_its_ddr_time():
    assert _shares([100, 100, 10], [0, 0, 50], 300) == [125, 125, 50]
    # A share that would fall under its DDR time is the DDR time; the rest is re-shared.
    assert _shares([100, 10], [0, 40], 150) == [110, 40]
    assert _shares([100, 100], [0, 0], 400) == [200, 200]


def test_a_partitioned_design_counts_its_bitstream_loads():
    # Three partitions on the PYNQ-Z2: each frame (or batch) loads three bitstreams.
    board = get_board("pynq-z2")
    q = quantized("mobilenet_v1", width=0.5, resolution=32, num_classes=10)
    parts = compile_model(q, board, fps=1000, batch=100_000, ddr_weights=DdrWeights.OFF)
    assert len(parts) == 3
    for batch in (None, 1, 100):
        report = make_report("mobilenet_v1", board, q.model, parts, 8, batch)
        rc = report["reconfiguration"]
        assert rc["included"] and rc["batch"] == (batch or 1)
        assert rc["batch_given"] == (batch is not None)
        assert rc["seconds_per_partition"] == pytest.approx(board.reconfiguration_seconds, abs=1e-6)
        compute_s = report["cycles_per_frame"] / (board.clock_mhz * 1e6)
        frames = batch or 1
        assert report["fps"] == pytest.approx(
            frames / (3 * board.reconfiguration_seconds + frames * compute_s), rel=1e-4)
        assert rc["fps_without_reconfiguration"] == pytest.approx(1 / compute_s, rel=1e-4)
        assert "Reconfiguration" in render_markdown(report)
    # Without a cited bitstream length the figure leaves reconfiguration out and says so.
    zcu = get_board("zcu104")
    report = make_report("mobilenet_v1", zcu, q.model, parts, 8)
    assert report["reconfiguration"]["included"] is False
    assert report["fps"] == pytest.approx(zcu.clock_mhz * 1e6 / report["cycles_per_frame"],
                                          rel=1e-4)
    assert "Reconfiguration not included" in render_markdown(report)


def test_grouped_conv_lowered_as_block_diagonal():
    q = quantized("shufflenet_v1", resolution=32, width=0.25)
    hw = lower(q)
    grouped = [s for s in hw.stages() if s.op is Op.CONV and s.spec.groups > 1]
    assert grouped
    st = grouped[0]
    units = stage_units(st, *candidates(st)[0])
    w = units[-1][1].params.weights
    assert w.shape[1] == st.spec.kernel[0] ** 2 * st.in_channels


def test_unsupported_concat_names_the_node():
    from dataflows import layers as L
    from dataflows.graph import Model
    m = Model("three_way", (4, 4, 2))
    a = m.add("a", L.Conv2d(2, 1))
    b = m.add("b", L.Conv2d(2, 1), "input")
    c = m.add("c", L.Conv2d(2, 1), "input")
    m.add("cat", L.Concat(), [a, b, c])
    m.init_weights(0)
    q = quantize(m, QuantConfig(calibration_images=1))
    with pytest.raises(LoweringError, match="'cat' \\(Concat\\).*3 inputs"):
        lower(q)


def test_build_is_deterministic_and_writes_the_report(tmp_path, capsys):
    args = ["build", "mobilenet_v1", "--width", "0.25", "--resolution", "32",
            "--board", "zcu104", "--fps", "500"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a, b = (tmp_path / "a" / "hwgen_top.v").read_bytes(), (tmp_path / "b" / "hwgen_top.v").read_bytes()
    assert a == b
    text = a.decode()
    assert "module hwgen_top" in text and "s_axis_tdata" in text and "m_axis_tlast" in text
    assert "Conv2d_0" in text and "$readmemh" in text      # layer names, external weights
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert list(report)[:len(REPORT_KEYS)] == list(REPORT_KEYS)
    for f in ("report.md", "stage_cycles.png", "resources.png"):
        assert (tmp_path / "a" / f).is_file()
    hexes = sorted(p.name for p in (tmp_path / "a" / "weights").iterdir())
    assert hexes and hexes == sorted(p.name for p in (tmp_path / "b" / "weights").iterdir())


def test_partitioned_build_does_not_depend_on_the_hash_seed(tmp_path):
    """Two processes with different string hash seeds write the same bytes for a design cut
    into partitions (a networkx subgraph once ordered a partition's stages by the seed)."""
    args = ["build", "mobilenet_v1", "--width", "0.5", "--resolution", "32",
            "--num-classes", "10", "--board", "pynq-z2", "--ddr-weights", "off"]
    runs = {seed: subprocess.Popen([sys.executable, "-m", "hwgen", *args,
                                    "--out", str(tmp_path / seed)],
                                   env={**os.environ, "PYTHONHASHSEED": seed},
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for seed in ("1", "2")}
    for seed, run in runs.items():
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err.decode()[-2000:]

    def outputs(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*"))
                if p.suffix in (".v", ".hex") or p.name in ("report.json", "report.md")}
    one, two = outputs(tmp_path / "1"), outputs(tmp_path / "2")
    tops = [p for p in one if p.name == "hwgen_top.v"]
    assert len(tops) == 3 and all(p.parent.name.startswith("partition") for p in tops)
    assert any(p.suffix == ".hex" for p in one)
    assert one.keys() == two.keys()
    assert [p for p in one if one[p] != two[p]] == []


def test_verilog_does_not_depend_on_the_number_of_cpus(tmp_path):
    # Stages are converted in parallel and in two yosys runs; one process must give the same
    # bytes (yosys numbers its $auto$ names across a run: they are renumbered per module).
    from hwgen.emit import emit
    q = quantized("mobilenet_v1", resolution=32, width=0.25)
    (part,) = compile_model(q, get_board("zcu104"), fps=500.0)
    serial = emit(part.hw, tmp_path / "one", jobs=1).verilog.read_bytes()
    assert emit(part.hw, tmp_path / "two", jobs=2).verilog.read_bytes() == serial
    assert b"dump_module$1 " in serial


@pytest.mark.parametrize("argv, message", [
    (["build", "squeezenet", "--board", "vc709"], "unknown board 'vc709'; known boards: ecp5-85f"),
    (["build", "squeezenet9", "--board", "vc707"], "squeezenet9"),
    (["build", "squeezenet", "--board", "vc707", "--groups", "3"], "groups"),
    (["build", "efficientnet_b0", "--board", "ecp5-85f"], "does not fit ecp5-85f: layer"),
])
def test_build_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("[hwgen]")]          # progress lines come first
    assert len(err) == 1 and err[0].startswith("hwgen build: error:") and message in err[0], err


def test_build_from_onnx(tmp_path):
    onnx_path = tmp_path / "sq.onnx"
    assert main(["export-onnx", "squeezenet1_1", "--resolution", "32", str(onnx_path)]) == 0
    out = tmp_path / "hw"
    assert main(["build", str(onnx_path), "--board", "vc707", "--fps", "1000",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "sq" and report["fits_on_chip"]
    text = (out / "hwgen_top.v").read_text()
    assert "module hwgen_top" in text
