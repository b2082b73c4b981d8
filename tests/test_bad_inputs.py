"""Bad input through the real command line: one line, exit 2, nothing left behind.

Every case runs ``python -m hwgen`` in a subprocess (so exit codes, argparse and tracebacks
are the real ones) in a folder of fixture files, with the co-simulation cache moved into it.
Each must exit 2 within seconds (every argument and path is checked before any long step)
with exactly one line on stderr besides ``[hwgen]`` progress, no traceback, and no file,
folder or cache entry left that was not there before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.outputs import private_dir, remove_abandoned
from sim.cache import CACHE_ENV, cosim_cache_dir

SMALL_BUILD = ["mobilenet_v1", "--width", "0.25", "--resolution", "32", "--num-classes", "10",
               "--board", "zcu104", "--fps", "100"]


def _conv_onnx(path: Path, kernel: tuple[int, int], stride: int) -> None:
    """A one-conv ONNX model (NCHW 1x4x16x16) with a ``kernel`` window and ``stride``."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 4, *kernel)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="odd_conv",
                            kernel_shape=list(kernel), strides=[stride, stride])
    graph = helper.make_graph(
        [node], "odd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(onnx.shape_inference.infer_shapes(proto), path)


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Path:
    """The working folder and its fixture files."""
    d = tmp_path_factory.mktemp("bad_inputs")
    x = np.random.default_rng(0).standard_normal((32, 32, 3)).astype(np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "nan.npy", np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x))
    np.save(d / "inf.npy", np.where(np.arange(x.size).reshape(x.shape) == 9, np.inf, x))
    np.save(d / "complex.npy", x.astype(np.complex64))
    np.save(d / "strings.npy", np.array(["a", "b"]))
    np.save(d / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(d / "chw.npy", x.transpose(2, 0, 1))
    np.savez(d / "archive.npz", x=x)
    (d / "archive.npy").write_bytes((d / "archive.npz").read_bytes())
    (d / "text.npy").write_text("1 2 3\n")
    (d / "corrupt.onnx").write_bytes(b"\x00\x01 not a protobuf" * 10)
    _conv_onnx(d / "wide.onnx", (1, 7), 1)
    _conv_onnx(d / "stride3.onnx", (3, 3), 3)
    (d / "afile").write_text("not a folder\n")
    (d / "theirs").mkdir()
    (d / "theirs" / "notes.txt").write_text("someone's notes\n")
    (d / "adir").mkdir()
    return d


def hwgen(place: Path, *argv: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, CACHE_ENV: str(place / "cache"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "hwgen", *argv], cwd=place, env=env,
                          capture_output=True, text=True, **kw)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line and not line.startswith("[hwgen]")]


def everything(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


UNWRITABLE = "/proc/hwgen-test/out"   # no one, root included, can create folders in /proc

CASES = [
    # (argv, fragments the one line must hold)
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    (["summary", "alexnet"], ["unknown model 'alexnet'", "squeezenet", "efficientnet_b0", ".onnx"]),
    (["summary", "squeezenet", "--width", "0.5"], ["does not take --width", "--resolution"]),
    (["summary", "efficientnet_b0", "--groups", "3"], ["does not take --groups"]),
    (["summary", "shufflenet_v1", "--groups", "5"], ["5"]),
    (["summary", "shufflenet_v2", "--width", "0.75"], ["0.75"]),
    (["summary", "mobilenet_v2", "--resolution", "8"], ["8"]),
    (["summary", "squeezenet", "--resolution", "abc"],
     ["--resolution: must be a positive integer, not 'abc'"]),
    (["summary", "squeezenet", "--resolution", "0"], ["must be a positive integer, not '0'"]),
    (["summary", "squeezenet", "--num-classes", "-3"], ["--num-classes: must be a positive"]),
    (["summary", "mobilenet_v1", "--width", "nan"], ["--width: must be a positive finite number"]),
    (["summary", "mobilenet_v1", "--width", "-1"], ["must be a positive finite number, not '-1'"]),
    (["summary", "squeezenet", "--wbits", "12"], ["--wbits: must be an integer from 4 to 8, not '12'"]),
    (["summary", "missing.onnx"], ["'missing.onnx' does not exist"]),
    (["summary", "corrupt.onnx"], ["corrupt.onnx"]),
    (["summary", "wide.onnx", "--resolution", "64"], ["zoo models only"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "nope.npy", "--output", "y.npy"],
     ["input file 'nope.npy' does not exist"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "text.npy", "--output", "y.npy"],
     ["'text.npy' is not a .npy file"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "archive.npy", "--output", "y.npy"],
     ["'archive.npy' is a .npz archive"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "archive.npz", "--output", "y.npy"],
     ["'archive.npz' is a .npz archive"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "complex.npy", "--output", "y.npy"],
     ["holds complex64 values; it must hold real numbers"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "strings.npy", "--output", "y.npy"],
     ["holds <U1 values"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "objects.npy", "--output", "y.npy"],
     ["cannot read input file 'objects.npy'"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "nan.npy", "--output", "y.npy"],
     ["holds 1 NaN or infinite values (the first at index (0, 2, 1))"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "inf.npy", "--output", "y.npy"],
     ["holds 1 NaN or infinite values (the first at index (0, 3, 0))"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "chw.npy", "--output", "y.npy"],
     ["(3, 32, 32)", "(32, 32, 3)"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy", "--output", "y.npy",
      "--calibration", "nan.npy"], ["calibration file 'nan.npy' holds 1 NaN"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy", "--output", "adir"],
     ["--output 'adir' is a folder, not a file"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy", "--output",
      "afile/y.npy"], ["afile' is a file, not a folder"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy", "--output",
      UNWRITABLE + ".npy"], ["cannot write in '/proc'"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy", "--output", "y.npy",
      "--dump-dir", "afile"], ["--dump-dir 'afile' is a file, not a folder"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy", "--output", "y.npy",
      "--dump-dir", "theirs"], ["'theirs' holds files hwgen did not write (notes.txt)"]),
    (["golden", "squeezenet", "--resolution", "32", "--input", "x.npy"],
     ["the following arguments are required: --output"]),
    (["export-onnx", "squeezenet", "adir"], ["output file 'adir' is a folder"]),
    (["export-onnx", "wide.onnx", "out.onnx"], ["takes a zoo model name"]),
    (["build", "squeezenet", "--board", "vc709"], ["unknown board 'vc709'; known boards:"]),
    (["build", "squeezenet", "--board", "vc707", "--groups", "3"], ["does not take --groups"]),
    (["build", "squeezenet", "--board", "vc707", "--abits", "3"],
     ["--abits: must be an integer from 4 to 8"]),
    (["build", "squeezenet", "--board", "vc707", "--fps", "0"],
     ["--fps: must be a positive finite number, not '0'"]),
    (["build", "squeezenet", "--board", "vc707", "--fps", "-5"], ["not '-5'"]),
    (["build", "squeezenet", "--board", "vc707", "--fps", "nan"], ["not 'nan'"]),
    (["build", "squeezenet", "--board", "vc707", "--fps", "inf"], ["not 'inf'"]),
    (["build", "squeezenet", "--board", "vc707", "--fps", "fast"], ["not 'fast'"]),
    (["estimate", "squeezenet", "--board", "pynq-z2", "--batch", "0"],
     ["--batch: must be a positive integer, not '0'"]),
    (["build", "squeezenet", "--board", "vc707", "--out", "afile"],
     ["output folder 'afile' is a file, not a folder"]),
    (["build", "squeezenet", "--board", "vc707", "--out", "theirs"],
     ["output folder 'theirs' holds files hwgen did not write (notes.txt)"]),
    (["build", "squeezenet", "--board", "vc707", "--out", "."],
     ["output folder '.' holds the current folder"]),
    (["build", "squeezenet", "--board", "vc707", "--out", "afile/sub"], ["afile' is a file, not a folder"]),
    (["build", "squeezenet", "--board", "vc707", "--out", UNWRITABLE], ["cannot write in '/proc'"]),
    (["build", "squeezenet", "--board", "vc707", "--resolution", "100000"],
     ["needs at least", "GiB of memory for the layers' outputs", "'conv1'", "this machine has"]),
    (["build", "mobilenet_v1", "--board", "vc707", "--width", "100"],
     ["GiB of memory for", "weights", "this machine has"]),
    (["build", "squeezenet", "--board", "vc707", "--num-classes", "100000000"],
     ["GiB of memory for 51,300,735,424 weights"]),
    (["build", "efficientnet_b0", "--board", "ecp5-85f"],
     ["does not fit ecp5-85f: layer 'blocks.0.0.se.mul/a_fifo' (with the stages it cannot be cut "
      "from: blocks.0.0.dw.act/fork .. blocks.0.0.se.mul) needs 197 BRAM18s", "(over by 21)"]),
    (["build", "wide.onnx", "--board", "vc707"], ["node 'odd_conv' (Conv2d): kernel (1, 7) is not square"]),
    (["build", "stride3.onnx", "--board", "vc707"], ["stride (3, 3) is not 1 or 2"]),
    (["estimate", "squeezenet", "--board", "vc709"], ["unknown board 'vc709'; known boards:"]),
    (["estimate", "efficientnet_b0", "--board", "ecp5-85f"],
     ["does not fit ecp5-85f: layer 'blocks.0.0.se.mul/a_fifo'"]),
    (["estimate", *SMALL_BUILD, "--out", "theirs"], ["holds files hwgen did not write"]),
    (["estimate", *SMALL_BUILD[:-2], "--fps", "1e9"],
     ["on zcu104: 1,000,000,000 fps", "is out of reach: the fastest folding runs at"]),
    (["cosim", *SMALL_BUILD, "--frames", "1"], ["--frames: must be an integer of at least 2"]),
    (["cosim", *SMALL_BUILD, "--seed", "-1"], ["--seed: must be an integer from 0 to 4294967295, not '-1'"]),
    (["cosim", *SMALL_BUILD[:-2], "--fps", "0"], ["--fps: must be a positive finite number"]),
    (["cosim", *SMALL_BUILD, "--out", "theirs"], ["holds files hwgen did not write"]),
    (["bitstream", "squeezenet", "--board", "vc709"], ["unknown board 'vc709'; known boards:"]),
    (["bitstream", "mobilenet_v3_large", "--board", "vc707"],
     ["mobilenet_v3_large on vc707: the design needs 2 partitions on vc707; vc707's board flow "
      "takes designs that fit on chip (partitioned designs have one on pynq-z2, ultra96, "
      "zcu102, zcu104)"]),
    (["bitstream", *SMALL_BUILD, "--run"],
     ["vivado is not installed; without --run the project is written"]),
    (["bitstream", *SMALL_BUILD, "--run", "--no-run"], ["not allowed with argument"]),
    (["bitstream", "mobilenet_v1", "--width", "0.35", "--resolution", "32", "--num-classes", "10",
      "--board", "ecp5-85f", "--fps", "5"], ["on ecp5-85f: the design needs 2 partitions",
                                             "ecp5-85f's board flow takes designs that fit"]),
]


@pytest.mark.parametrize("argv, fragments", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_gives_one_line_and_exit_2(place, argv, fragments):
    before = everything(place)
    start = time.monotonic()
    proc = hwgen(place, *argv, timeout=120)
    seconds = time.monotonic() - start
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("hwgen") and ": error: " in line, line
    for fragment in fragments:
        assert fragment in line, line
    assert everything(place) == before, "left behind: " + ", ".join(everything(place) - before)
    assert proc.stdout == ""
    assert seconds < 60, f"{seconds:.0f} s before the error: a check came after long work"


def test_bitstream_without_vivado_writes_the_project_and_says_what_to_run(place, tmp_path):
    # Fully folded (fps 5), so measuring each stage's logic depth on a cold cache is quick.
    small = ["mobilenet_v1", "--width", "0.125", "--resolution", "32", "--num-classes", "10",
             "--board", "zcu104", "--fps", "5"]
    proc = hwgen(place, "bitstream", *small, "--out", str(tmp_path / "hw"), timeout=1200)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stdout.splitlines()
    assert "wrote the project to" in line and "vivado -mode batch -source build.tcl" in line
    assert "on a machine with vivado" in line
    assert (tmp_path / "hw" / "board" / "build.tcl").is_file()
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "hw").iterdir())


def test_a_board_without_a_flow_is_named_with_those_that_have_one():
    from hwgen.bitstream import FLOWS, NoShellError, flow_for
    with pytest.raises(NoShellError, match="has no board flow yet; boards with one: ecp5-85f, "):
        flow_for("kc705")
    assert set(FLOWS) == {"ecp5-85f", "pynq-z2", "ultra96", "zcu104", "zcu102", "vc707", "u250"}


def test_cosim_cache_that_is_a_file(place):
    proc = hwgen(place, "cosim", *SMALL_BUILD, env={CACHE_ENV: str(place / "afile")})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert line.startswith(f"hwgen cosim: error: co-simulation cache (set {CACHE_ENV} to move it)")
    assert f"'{place / 'afile'}' is a file, not a folder" in line


# -- what used to fail after the user's mistake was already made --------------------------------
def test_summary_of_huge_models_allocates_no_weights(place):
    proc = hwgen(place, "summary", "squeezenet", "--num-classes", "100000000", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "51,300,735,424" in proc.stdout   # conv10 alone: 51.2 G weights


@pytest.mark.parametrize("model, node, why", [
    ("wide.onnx", "odd_conv", "kernel (1, 7) is not square 1/3/5/7"),
    ("stride3.onnx", "odd_conv", "stride (3, 3) is not 1 or 2 in both axes"),
])
def test_summary_says_what_hardware_cannot_take(place, model, node, why):
    proc = hwgen(place, "summary", model)
    assert proc.returncode == 0, proc.stderr
    assert f"[hwgen] note: hardware cannot build node '{node}' (Conv2d): {why}" in proc.stderr


def test_golden_writes_exactly_the_output_path_it_names(place, tmp_path):
    out = tmp_path / "y"                          # no .npy suffix: numpy.save would add one
    proc = hwgen(place, "golden", "squeezenet", "--resolution", "32", "--input", "x.npy",
                 "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"[hwgen] wrote {out} (1, 1, 1000) int64" in proc.stderr
    assert np.load(out).shape == (1, 1, 1000) and sorted(tmp_path.iterdir()) == [out]


def test_a_dump_folder_is_replaced_whole(place, tmp_path):
    dump = tmp_path / "layers"
    args = ["golden", "squeezenet1_1", "--resolution", "32", "--input", "x.npy",
            "--output", str(tmp_path / "y.npy"), "--dump-dir", str(dump)]
    assert hwgen(place, *args).returncode == 0
    (dump / "stale.npy").write_bytes(b"")
    proc = hwgen(place, *args)
    assert proc.returncode == 0, proc.stderr
    assert (dump / "index.json").is_file() and not (dump / "stale.npy").exists()


# -- Ctrl-C ----------------------------------------------------------------------------------
def _interrupt_when(place: Path, argv: list[str], marker: str, delay: float = 1.0):
    """Run hwgen, send SIGINT ``delay`` s after a stderr line holding ``marker``."""
    env = {**os.environ, CACHE_ENV: str(place / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "hwgen", *argv], cwd=place, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.stderr.read()
    proc.wait(timeout=60)
    assert any(marker in line for line in seen), "".join(seen)
    return proc.returncode, "".join(seen) + rest


def test_ctrl_c_during_emission_leaves_nothing(place):
    before = everything(place)
    code, err = _interrupt_when(place, ["build", *SMALL_BUILD, "--out", "hw"], "emitting")
    assert code == 130 and "Traceback" not in err, err
    assert error_lines(err) == ["hwgen build: interrupted; no partial output or cache entry "
                                "was left"]
    assert everything(place) == before


def test_ctrl_c_during_the_verilator_build_leaves_no_cache_entry(place):
    code, err = _interrupt_when(place, ["cosim", *SMALL_BUILD, "--out", "hw"],
                                "building the Verilator model", delay=3.0)
    assert code == 130 and "Traceback" not in err, err
    assert error_lines(err)[-1].startswith("hwgen cosim: interrupted")
    cache = place / "cache" / "cosim"
    assert not cache.exists() or not any(p.is_dir() for p in cache.iterdir())
    assert (place / "hw" / "build.json").is_file()      # the finished build stays, whole
    assert not (place / "hw" / "cosim.json").exists()


def test_a_line_buffer_larger_than_the_board_is_refused_from_shapes_alone():
    from boards import get_board
    from dataflows.zoo import build
    from hwgen.capacity import LayerMemoryError, check_layers_fit
    model = build("squeezenet", weights=False, resolution=50_000)   # no weights: instant
    with pytest.raises(LayerMemoryError, match=r"layer 'conv1' needs at least 8.4 Mbit .* for "
                       r"its line buffer \(7 rows of 50000x3 8-bit values\)") as err:
        check_layers_fit(model, get_board("ecp5-85f"), abits=8, wbits=8)
    assert err.value.needed_bits == 7 * 50_000 * 3 * 8 > err.value.budget_bits


# -- the cache and private folders ---------------------------------------------------------------
def test_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cosim_cache_dir() == tmp_path / "xdg" / "hwgen" / "cosim"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")     # XDG: relative paths are invalid
    assert cosim_cache_dir() == Path.home() / ".cache" / "hwgen" / "cosim"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine"))
    assert cosim_cache_dir() == tmp_path / "mine" / "cosim"


def test_private_folders_of_dead_processes_are_removed(tmp_path):
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys; from hwgen.outputs import private_dir; "
                              "print(private_dir(sys.argv[1], 'cosim-abc'))", str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    abandoned = Path(child.communicate()[0].strip())
    mine = private_dir(tmp_path, "cosim-def")
    assert abandoned.is_dir() and mine.is_dir()
    assert remove_abandoned(tmp_path) == [abandoned]
    assert not abandoned.exists() and mine.is_dir()
