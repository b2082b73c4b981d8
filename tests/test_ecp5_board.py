"""The ECP5 board flow without the tools' run: the ULX3S project as written, and its UART shell
with the accelerator inside driven by the real host program over a byte stream
(tests/test_ecp5_bitstream.py runs the tools)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from boards.host.frames import tdata_bytes
from boards.shells.uart_shell import UART_TOP_NAME, uart_top_verilog
from hwgen.cli import main as hwgen_main
from sim.cache import cosim_cache_dir
from sim.cosim import build_cosim

from ecp5_design import SMALL   # tests/ is on sys.path (rootdir conftest), as network_checks

BRIDGE = Path(__file__).resolve().parent.parent / "sim" / "uart_bridge.cpp"
# Cycles per UART bit in simulation: small, so a 3 KB frame crosses the line in ~150k cycles.
SIM_DIVISOR = 5


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """``hwgen bitstream --no-run`` of the small design: the board folder as a user gets it."""
    out = tmp_path_factory.mktemp("ecp5") / "hw"
    assert hwgen_main(["bitstream", *SMALL, "--out", str(out), "--no-run"]) == 0
    return out


def test_project_is_complete(written):
    board = written / "board"
    design = json.loads((board / "design.json").read_text())
    assert design["board"] == "ecp5-85f" and design["input_shape"] == [32, 32, 3]
    commands = json.loads((board / "build_hwgen_ulx3s.json").read_text())["commands"]
    assert [c[0] for c in commands] == ["yosys", "nextpnr-ecp5", "ecppack"]
    pnr = commands[1]
    assert pnr[pnr.index("--lpf") + 1] == "hwgen_ulx3s.lpf" and "--85k" in pnr
    assert pnr[pnr.index("--router") + 1] == "router2"   # router1 does not converge on it
    # Every hex file the Verilog reads is in the project, by the path it reads it from.
    verilog = (board / "hwgen_top.v").read_text()
    weights = {p.name for p in (board / "weights").iterdir()}
    assert weights and all(f"weights/{name}" in verilog for name in weights)
    lpf = (board / "hwgen_ulx3s.lpf").read_text()
    for site in ("G2", "M1", "L4"):             # clk25, FTDI rx and tx (amaranth-boards ULX3S)
        assert f'SITE "{site}"' in lpf
    assert 'FREQUENCY NET "pll.clk_out" 100000000.0 HZ' in lpf
    readme = (board / "README.md").read_text()
    assert "sh make_bitstream.sh" in readme and "openFPGALoader" in readme
    assert "serial_host.py /dev/ttyUSB0 --check golden/" in readme
    # The timing evidence: every stage's logic depth beside the clock's limit.
    report = json.loads((written / "report.json").read_text())
    timing = report["timing"]
    assert timing["max_logic_levels"] >= 1 and timing["clock_mhz"] == 100
    depths = {s["name"]: s["logic_depth"] for s in report["stages"]}
    assert all(isinstance(d, int) and d >= 1 for d in depths.values())
    assert timing["deeper_stages"] == [n for n, d in depths.items() if d > timing["max_logic_levels"]]
    golden = sorted(p.name for p in (board / "golden").iterdir())
    assert golden == [f"{kind}_{k}.npy" for kind in ("input", "output") for k in range(3)]


def test_host_program_runs_frames_bit_exactly_through_the_uart_top(written, tmp_path):
    """The copied serial_host.py, as a user runs it, against the Verilator model of the
    shell with the accelerator inside, over a TCP byte stream (pyserial's socket://)."""
    board = written / "board"
    design = json.loads((board / "design.json").read_text())
    shell = tmp_path / "hwgen_uart_top.v"
    in_bytes = tdata_bytes(design["in_lanes"], design["in_bits"])
    out_bytes = tdata_bytes(design["out_lanes"], design["out_bits"])
    shell.write_text(uart_top_verilog(in_tdata_width=8 * in_bytes,
                                      out_tdata_width=8 * out_bytes, divisor=SIM_DIVISOR))
    exe = build_cosim([shell, board / "hwgen_top.v"], cosim_cache_dir(), top=UART_TOP_NAME,
                      driver=BRIDGE)
    port_file = tmp_path / "port"
    bridge = subprocess.Popen([str(exe), "--divisor", str(SIM_DIVISOR), "--port-file",
                               str(port_file), "--max-cycles", "20000000"], cwd=board,
                              stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            if port_file.exists() or bridge.poll() is not None:
                break
            time.sleep(0.05)
        port = int(port_file.read_text())
        host = subprocess.run([sys.executable, str(board / "serial_host.py"),
                               f"socket://127.0.0.1:{port}", "--check", str(board / "golden"),
                               "--timeout", "120"], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PYTHONPATH": ""})
    finally:
        out, _ = bridge.communicate(timeout=120)
    assert host.returncode == 0, host.stdout + host.stderr
    assert "bit-exact: 3 of 3 frames match the golden model" in host.stdout
    assert bridge.returncode == 0, out
    assert f"rx_bytes={3 * design['in_beats_per_frame'] * in_bytes}" in out
    assert f"tx_bytes={3 * design['out_beats_per_frame'] * out_bytes}" in out


def test_golden_files_are_the_golden_model(written):
    from dataflows.golden import run_quantized
    from hwgen.build import BuildOptions, build
    board = written / "board"
    result = build(BuildOptions(model="mobilenet_v1", board="ecp5-85f", fps=5,
                                out_dir=written.parent / "again",
                                model_options={"width": 0.125, "resolution": 32,
                                               "num_classes": 10}))
    x = np.load(board / "golden" / "input_1.npy")
    np.testing.assert_array_equal(run_quantized(result.qmodel, x),
                                  np.load(board / "golden" / "output_1.npy"))
