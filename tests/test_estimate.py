"""``hwgen estimate``: a build's folding and figures without Verilog, for sweeps."""

import json

import pytest

from hwgen.build import BuildOptions
from hwgen.cli import main
from hwgen.estimate import ESTIMATE_MARKER, estimate

SMALL = ["squeezenet1_1", "--resolution", "32", "--board", "vc707", "--fps", "1000"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_estimate_reports_what_a_build_of_the_same_options_reports(tmp_path, capsys):
    assert run(capsys, "build", *SMALL, "--out", str(tmp_path / "hw"))[0] == 0
    built = json.loads((tmp_path / "hw" / "report.json").read_text())
    code, out, err = run(capsys, "estimate", *SMALL, "--out", str(tmp_path / "est"))
    assert code == 0
    assert "[hwgen] wrote" in err
    estimated = json.loads((tmp_path / "est" / "report.json").read_text())
    assert estimated.pop("estimate_only") is True
    assert "top" in built and "top" not in estimated
    built.pop("top")
    assert estimated == built
    files = sorted(p.name for p in (tmp_path / "est").iterdir())
    assert files == sorted([ESTIMATE_MARKER, "report.json", "report.md", "resources.png",
                            "stage_cycles.png"])          # no Verilog, no weights
    assert "no Verilog was written" in (tmp_path / "est" / "report.md").read_text()
    # The one-line summary quotes the report's figures.
    assert f"{built['fps']:,.1f} fps at {built['clock_mhz']:g} MHz" in out
    assert f"{built['cycles_per_frame']:,} cycles/frame" in out


def test_estimate_json_prints_the_report_alone(tmp_path, capsys):
    code, out, err = run(capsys, "estimate", *SMALL, "--out", str(tmp_path / "est"), "--json")
    assert code == 0 and "[hwgen]" in err
    printed = json.loads(out)              # stdout is exactly one JSON document
    assert printed == json.loads((tmp_path / "est" / "report.json").read_text())
    # A second estimate replaces the first's folder; a build's folder is never replaced.
    assert run(capsys, "estimate", *SMALL, "--out", str(tmp_path / "est"))[0] == 0
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "build.json").write_text("{}\n")
    code, _, err = run(capsys, "estimate", *SMALL, "--out", str(tmp_path / "hw"))
    assert code == 2 and "holds a build (build.json)" in err
    assert sorted(p.name for p in (tmp_path / "hw").iterdir()) == ["build.json"]


def test_the_default_folder_is_beside_the_build_folder():
    opts = BuildOptions(model="squeezenet", board="vc707")
    assert str(opts.output_dir("vc707")) == "build/squeezenet-vc707"
    assert str(opts.output_dir("vc707", "-estimate")) == "build/squeezenet-vc707-estimate"


# -- every zoo model at full resolution on the four large boards --------------------------
ZOO = ["squeezenet", "squeezenet1_1", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small",
       "mobilenet_v3_large", "shufflenet_v1", "shufflenet_v2", "efficientnet_b0"]
BOARDS = ["zcu104", "zcu102", "vc707", "u250"]

@pytest.mark.parametrize("model, board", [pytest.param(m, b, id=f"{m}-{b}")
                                          for m in ZOO for b in BOARDS])
def test_every_zoo_model_estimates_on_the_large_boards(tmp_path, model, board):
    done = estimate(BuildOptions(model=model, board=board, out_dir=tmp_path / "est"))
    r = done.report
    assert r["fps"] > 0 and r["partitions"] >= 1
    budget = {k: int(r["utilization_cap"] * v) for k, v in r["resources"]["available"].items()}
    for part in r.get("partition_details", [{"resources": r["resources"]["used"]}]):
        for resource, used in part["resources"].items():
            assert used <= budget[resource], (part, resource)
