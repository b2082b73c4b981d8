"""Designs cut into partitions, co-simulated partition by partition on Verilator.

MobileNet V1 (width 0.5, 32x32, 10 classes) does not fit the PYNQ-Z2's block RAM even fully
folded (356 BRAM18 against 238), so ``hwgen cosim`` builds it in three partitions and runs each
on the previous one's co-simulated outputs, at full rate and under gaps and backpressure. Each
partition's output is the golden model's tensor at its cut; cycles per frame are each
partition's model. SqueezeNet 1.1's conv10 alone does not fit the same board: it is split by
output channels into two partitions that read the same input, and the pool after them reads
both halves.
"""

import dataclasses
import json
import shutil

from hwgen.build import BuildOptions, build
from hwgen.cli import main
from hwgen.compile import DdrWeights
from hwgen.emit import emit
from hwgen.hwgraph import Op
from network_checks import MAX_CYCLE_ERROR_PCT, MAX_LATENCY_ERROR_PCT
from sim.network_cosim import cosimulate

# --fps 1000 one frame at a time would leave no time for the PYNQ-Z2's bitstream loads (10 ms
# each); a long batch makes them a few cycles a frame.
SPLIT_ARGS = ["squeezenet1_1", "--resolution", "32", "--board", "pynq-z2", "--ddr-weights", "off",
              "--fps", "1000",
              "--batch", "100000"]
ARGS = ["mobilenet_v1", "--width", "0.5", "--resolution", "32", "--num-classes", "10",
        "--board", "pynq-z2", "--ddr-weights", "off", "--fps", "1000", "--batch", "100000"]


def test_three_partitions_cosimulate_bit_exactly(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["cosim", *ARGS, "--out", str(out)]) == 0
    printed, _ = capsys.readouterr()
    report = json.loads((out / "report.json").read_text())
    cosim = json.loads((out / "cosim.json").read_text())
    assert report["partitions"] == cosim["partitions"] == 3
    assert cosim["bit_exact"] and cosim["backpressure_bit_exact"]
    assert cosim["first_diverging_stage"] is None
    parts = cosim["partition_results"]
    assert [p["index"] for p in parts] == [0, 1, 2]
    details = report["partition_details"]
    for part, detail in zip(parts, details):
        assert part["bit_exact"]
        assert part["estimated_cycles_per_frame"] == detail["cycles_per_frame"]
        assert abs(part["cycle_error_pct"]) <= MAX_CYCLE_ERROR_PCT, part
    assert cosim["estimated_cycles_per_frame"] == report["cycles_per_frame"]
    assert cosim["measured_cycles_per_frame"] == sum(p["measured_cycles_per_frame"]
                                                     for p in parts)
    assert abs(cosim["cycle_error_pct"]) <= MAX_CYCLE_ERROR_PCT
    assert abs(cosim["latency_error_pct"]) <= MAX_LATENCY_ERROR_PCT
    assert printed.count("bit_exact=True") == 4      # three partitions and the whole


def test_a_layer_split_across_partitions_cosimulates_bit_exactly(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["cosim", *SPLIT_ARGS, "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    cosim = json.loads((out / "cosim.json").read_text())
    halves = [d for d in report["partition_details"] if "channels" in d]
    assert [(d["channels"]["lo"], d["channels"]["hi"]) for d in halves] == [(0, 500), (500, 1000)]
    assert cosim["bit_exact"] and cosim["backpressure_bit_exact"]
    for part in cosim["partition_results"]:
        assert part["bit_exact"], part
        assert abs(part["cycle_error_pct"]) <= MAX_CYCLE_ERROR_PCT, part
    assert cosim["partitions"] == report["partitions"] == len(cosim["partition_results"])
    assert abs(cosim["cycle_error_pct"]) <= MAX_CYCLE_ERROR_PCT


def test_a_fault_in_a_later_partition_is_located(tmp_path):
    # The second partition's hardware computes one layer with its weights negated; the golden
    # model does not. Co-simulation must say which partition and which stage diverge, found by
    # bisecting that partition's prefixes fed with the golden model's input to it.
    result = build(BuildOptions(model="mobilenet_v1", board="pynq-z2", fps=1000.0, batch=100_000,
                                out_dir=tmp_path / "f", calibration_images=2,
                                ddr_weights=DdrWeights.OFF,
                                model_options={"width": 0.5, "resolution": 32,
                                               "num_classes": 10}))
    part = result.parts[1]
    convs = [s for s in part.hw.stages() if s.op is Op.CONV]
    faulty = convs[len(convs) // 2]
    faulty.qparams = dataclasses.replace(faulty.qparams, weight=-faulty.qparams.weight)
    faulty.cache.clear()
    where = result.emitted[1].verilog.parent
    shutil.rmtree(where)
    result.emitted[1] = emit(part.hw, where)
    report = cosimulate(result, frames=2, seed=3)
    assert not report.bit_exact
    assert [p.bit_exact for p in report.partition_results] == [True, False]   # stops there
    assert report.first_diverging_stage == faulty.name
    assert json.loads((tmp_path / "f" / "cosim.json").read_text())["first_diverging_stage"] \
        == faulty.name
