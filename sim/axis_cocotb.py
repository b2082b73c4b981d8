"""The cocotb test every AXI4-Stream top runs: cocotbext-axi source and sink with random pauses.

``HWGEN_AXIS_DIR`` names a directory holding ``spec.npz``: ``inputs`` (frames, beats, lanes),
``expected`` (frames, beats, lanes) and ``shape`` = (in bits, out bits, seed). Frames go in
with ``tlast`` on their last beat; each output frame is taken up to ``m_axis_tlast`` and
compared exactly (lanes and the zero padding above them).
"""

import os
import random
from pathlib import Path

import cocotb
import numpy as np


@cocotb.test()
async def axis_frames(dut):
    """Send frames with tlast, receive frames by tlast, compare with the numpy model."""
    from cocotb.clock import Clock
    from cocotb.triggers import RisingEdge
    from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

    from sim.cosim import pack_beats, unpack_beats

    run_dir = Path(os.environ["HWGEN_AXIS_DIR"])
    spec = np.load(run_dir / "spec.npz")
    inputs, expected = spec["inputs"], spec["expected"]
    in_bits, out_bits, seed = (int(v) for v in spec["shape"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
    for k, endpoint in enumerate((source, sink)):
        rng = random.Random(seed * 10 + k)
        endpoint.set_pause_generator(iter(lambda r=rng: r.random() < 0.3, None))
        endpoint.log.setLevel("WARNING")
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    in_bytes, out_bytes = len(dut.s_axis_tdata) // 8, len(dut.m_axis_tdata) // 8
    for frame in inputs:
        words = pack_beats(frame, in_bits)
        data = words.view(np.uint8).reshape(len(frame), -1)[:, :in_bytes]
        await source.send(AxiStreamFrame(bytes(data.reshape(-1))))
    for want in expected:
        got = await sink.recv()  # one frame per tlast
        raw = np.frombuffer(bytes(got.tdata), dtype=np.uint8).reshape(-1, out_bytes)
        assert raw.shape[0] == want.shape[0], f"tlast after {raw.shape[0]} beats"
        padded = np.zeros((raw.shape[0], -(-out_bytes // 4) * 4), dtype=np.uint8)
        padded[:, :out_bytes] = raw
        words, lanes = padded.view("<u4"), want.shape[1]
        if lanes * out_bits < 32:
            assert not (words[:, 0] >> (lanes * out_bits)).any(), "padding bits must be zero"
        np.testing.assert_array_equal(unpack_beats(words, lanes, out_bits), want)


