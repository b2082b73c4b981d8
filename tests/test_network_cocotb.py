"""A whole generated network under cocotb: cocotbext-axi AXI4-Stream source and sink with random
idle and backpressure on the emitted ``hwgen_top`` (weights from its ``$readmemh`` files),
outputs compared with the golden model frame by frame (frames delimited by ``m_axis_tlast``).

The network is small (every kind of stage the zoo's SqueezeNet uses: window + conv, ReLU,
max pool, a fork into two 1x1 convs joined by a concat with its bypass FIFO, global pool,
fully connected), because cocotb steps Python every cycle; the zoo models run through the
C++ driver in tests/test_network_cosim.py.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from boards import get_board
from dataflows import layers as L
from dataflows.golden import run_quantized
from dataflows.graph import Model
from dataflows.quantize import QuantConfig, quantize
from hwgen.compile import compile_model
from hwgen.emit import emit
from rtl_templates.beats import frame_to_beats
from sim.bench import SIM_BUILD, VERILATOR_ARGS, _ensure_verilator_on_path, _pch_flag_fixed

warnings.filterwarnings("ignore", message=".*created but never used")


def tiny_fire_net() -> Model:
    m = Model("tiny_fire", (8, 8, 3))
    m.add("conv1", L.Conv2d(8, kernel=3, padding=1))
    m.add("relu1", L.Activation("relu"))
    m.add("pool1", L.MaxPool(kernel=3, stride=2, ceil_mode=True))
    m.add("squeeze", L.Conv2d(4, kernel=1))
    m.add("squeeze_relu", L.Activation("relu"))
    e1 = m.add("expand1x1", L.Conv2d(8, kernel=1), "squeeze_relu")
    e3 = m.add("expand3x3", L.Conv2d(8, kernel=3, padding=1), "squeeze_relu")
    m.add("concat", L.Concat(), [e1, e3])
    m.add("gap", L.GlobalAvgPool())
    m.add("flatten", L.Flatten())
    m.add("fc", L.Linear(5))
    return m.init_weights(3)


def test_tiny_network_through_cocotb_axi_stream(tmp_path):
    from cocotb_tools.runner import get_results, get_runner

    q = quantize(tiny_fire_net(), QuantConfig(calibration_images=2))
    (part,) = compile_model(q, get_board("vc707"), fps=200e6 / 4000)
    e = emit(part.hw, tmp_path)
    rng = np.random.default_rng(5)
    images = [q.quantize_input(rng.standard_normal((8, 8, 3))) for _ in range(3)]
    inputs = np.stack([frame_to_beats(img, e.in_lanes) for img in images])
    expected = np.stack([np.asarray(run_quantized(q, img)).reshape(-1, e.out_lanes)
                         for img in images])
    np.savez(tmp_path / "spec.npz", inputs=inputs, expected=expected,
             shape=np.array([e.in_bits, e.out_bits, 4]))
    _ensure_verilator_on_path()
    runner = get_runner("verilator")
    build_dir = SIM_BUILD / "network_cocotb"
    with _pch_flag_fixed():
        runner.build(sources=[e.verilog], hdl_toplevel="hwgen_top", build_dir=build_dir,
                     build_args=VERILATOR_ARGS, always=True,
                     log_file=SIM_BUILD / "network_cocotb.build.log")
    results = runner.test(test_module="sim.axis_cocotb", hdl_toplevel="hwgen_top",
                          hdl_toplevel_lang="verilog", build_dir=build_dir, test_dir=tmp_path,
                          extra_env={"HWGEN_AXIS_DIR": str(tmp_path)},
                          log_file=tmp_path / "sim.log")
    n_tests, n_failed = get_results(Path(results))
    assert n_tests == 1 and n_failed == 0, (tmp_path / "sim.log").read_text()[-3000:]
