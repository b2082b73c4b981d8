"""The hwgen command line: outputs, JSON schema, and one-line errors for every user mistake."""

import json
import subprocess
import sys

import numpy as np
import pytest

from hwgen.cli import main

ZOO = ["squeezenet", "squeezenet1_1", "mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small",
       "mobilenet_v3_large", "shufflenet_v1", "shufflenet_v2", "efficientnet_b0"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv):
    """Run ``python -m hwgen`` for real: exit codes and the absence of tracebacks."""
    return subprocess.run([sys.executable, "-m", "hwgen", *argv], capture_output=True, text=True)


# -- help -------------------------------------------------------------------------------------
def test_help_lists_commands_and_models():
    proc = run_process("--help")
    assert proc.returncode == 0
    for word in ["summary", "golden", "export-onnx", "build", *ZOO]:
        assert word in proc.stdout


# -- summary ----------------------------------------------------------------------------------
def test_summary_table_of_squeezenet(capsys):
    code, out, _ = run(capsys, "summary", "squeezenet")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("squeezenet: input 227x227x3")
    conv1 = next(line for line in lines if line.startswith("conv1 "))
    assert conv1.split()[1:5] == ["conv", "7x7", "1", "111x111x96"]
    assert "fire9/expand3x3" in out
    total = next(line for line in lines if line.startswith("total"))
    assert "1,248,424" in total
    # 8-bit weights: one byte per weight plus four per int32 bias
    assert conv1.split()[-1] == f"{96 * 7 * 7 * 3 + 4 * 96:,}"


def test_summary_wbits_changes_weight_bytes_only(capsys):
    _, out8, _ = run(capsys, "summary", "squeezenet1_1", "--wbits", "8")
    _, out4, _ = run(capsys, "summary", "squeezenet1_1", "--wbits", "4")
    b8 = int(out8.splitlines()[-2].split()[-1].replace(",", ""))
    b4 = int(out4.splitlines()[-2].split()[-1].replace(",", ""))
    assert b4 < b8
    assert out8.splitlines()[-2].split()[1] == out4.splitlines()[-2].split()[1]  # params


@pytest.mark.parametrize("model", ZOO)
def test_summary_json_schema(capsys, model):
    code, out, _ = run(capsys, "summary", model, "--resolution", "96", "--json")
    assert code == 0
    doc = json.loads(out)  # exactly one JSON object, nothing else on stdout
    assert set(doc) == {"model", "input_shape", "layers", "total"}
    assert doc["input_shape"] == [96, 96, 3]
    assert set(doc["total"]) == {"params", "macs"}
    for layer in doc["layers"]:
        assert set(layer) == {"name", "op", "kernel", "groups", "out_shape", "params", "macs"}
        assert layer["kernel"] is None or len(layer["kernel"]) == 2
        assert len(layer["out_shape"]) == 3
    assert sum(layer["params"] for layer in doc["layers"]) == doc["total"]["params"]
    assert sum(layer["macs"] for layer in doc["layers"]) == doc["total"]["macs"]
    assert doc["layers"][-1]["out_shape"][-1] == 1000


def test_summary_json_options(capsys):
    _, out, _ = run(capsys, "summary", "mobilenet_v1", "--width", "0.5", "--resolution", "160",
                    "--num-classes", "10", "--json")
    doc = json.loads(out)
    assert doc["input_shape"] == [160, 160, 3]
    assert doc["layers"][-1]["out_shape"] == [1, 1, 10]


# -- errors (every bad input through the real CLI: tests/test_bad_inputs.py) ---------------
def test_options_are_rejected_for_onnx_files(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    assert main(["export-onnx", "squeezenet1_1", "--resolution", "64", str(path)]) == 0
    code, _, err = run(capsys, "summary", str(path), "--resolution", "64")
    assert code == 2 and "zoo models only" in err


def test_build_reports_progress_and_writes_the_design(tmp_path, capsys):
    out_dir = tmp_path / "hw"
    args = ["build", "squeezenet1_1", "--resolution", "32", "--board", "vc707", "--fps", "1000",
            "--out", str(out_dir)]
    code, out, err = run(capsys, *args)
    assert code == 0
    assert "[hwgen] lowered to" in err and "[hwgen] wrote" in err
    assert (out_dir / "report.json").is_file() and (out_dir / "hwgen_top.v").is_file()
    first = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*"))
    # What an earlier, different build left: a rebuild replaces the folder whole.
    stale = [out_dir / "partition1" / "hwgen_top.v", out_dir / "cosim.json",
             out_dir / "weights" / "rom_0000.hex"]
    for f in stale:
        f.parent.mkdir(exist_ok=True)
        f.write_text("stale\n")
    assert run(capsys, *args)[0] == 0
    assert sorted(p.relative_to(out_dir) for p in out_dir.rglob("*")) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hw"]     # no private folder left


# -- golden and export ------------------------------------------------------------------------
def test_golden_quantized_and_float_with_dump(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((64, 64, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    args = ["golden", "squeezenet", "--resolution", "64", "--input", str(tmp_path / "x.npy")]
    assert main([*args, "--output", str(tmp_path / "yf.npy"), "--float"]) == 0
    assert main([*args, "--output", str(tmp_path / "yq.npy"), "--dump-dir", str(tmp_path / "d")]) == 0
    yf, yq = np.load(tmp_path / "yf.npy"), np.load(tmp_path / "yq.npy")
    assert yf.shape == yq.shape == (1, 1, 1000)
    assert yf.dtype == np.float32 and np.issubdtype(yq.dtype, np.integer)
    assert -128 <= yq.min() and yq.max() <= 127
    index = json.loads((tmp_path / "d" / "index.json").read_text())
    assert "conv1" in index and "fire2/concat" in index
    # the dump's last layer is the output written above
    last = np.load(tmp_path / "d" / index["pool10"]["file"])
    np.testing.assert_array_equal(last, yq)
    # deterministic: a second run writes the same integers
    assert main([*args, "--output", str(tmp_path / "yq2.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "yq2.npy"), yq)


def test_golden_rejects_a_wrong_input_shape(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((3, 64, 64), dtype=np.float32))
    code, _, err = run(capsys, "golden", "squeezenet", "--resolution", "64",
                       "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert code == 2 and "(64, 64, 3)" in err


def test_export_then_golden_on_onnx_matches_onnxruntime(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "m.onnx"
    assert main(["export-onnx", "mobilenet_v2", "--resolution", "64", str(path)]) == 0
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["golden", str(path), "--float", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (expected,) = session.run(None, {session.get_inputs()[0].name: x})
    got = np.load(tmp_path / "y.npy")
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max()
    _, out, _ = run(capsys, "summary", str(path), "--json")
    _, zoo, _ = run(capsys, "summary", "mobilenet_v2", "--resolution", "64", "--json")
    assert json.loads(out)["total"] == json.loads(zoo)["total"]


def test_a_yosys_failure_in_the_depth_measure_is_one_line_and_its_output_is_kept(
        tmp_path, capsys, monkeypatch):
    import hwgen.bitstream
    from sim.logic_depth import LogicDepthError

    def fails(options, **kwargs):
        raise LogicDepthError("yosys failed on conv1 (1):\nERROR: the log's last lines")

    monkeypatch.setattr(hwgen.bitstream, "bitstream", fails)
    out = tmp_path / "sq"
    assert main(["bitstream", "squeezenet", "--board", "vc707", "--no-run", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("hwgen bitstream: measuring logic depth: yosys failed on conv1 (1) "
                   f"(its output: {out / 'logic_depth_error.log'})")
    assert "the log's last lines" in (out / "logic_depth_error.log").read_text()
