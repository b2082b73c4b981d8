"""cocotb testbench for any stream PE configuration inside a :class:`sim.harness.Harness`.

The pytest side (:mod:`sim.bench`) writes a manifest naming the configuration's prefix, the beats
to send on each input stream and the number of beats to expect on each output stream, plus the
idle and backpressure probabilities. This bench drives the inputs with cocotbext-axi sources
(random idle gaps), drains the outputs with sinks (random backpressure), records every transfer
and its clock cycle, and writes them back. The pytest side compares them with the numpy
behaviour, so the scoreboard lives in one place for every PE.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb_bus.bus import Bus
from cocotbext.axi import AxiStreamFrame, AxiStreamSink, AxiStreamSource


class PeStreamBus(Bus):
    """An Amaranth ``lib.stream`` port seen as the AXI-Stream bus cocotbext-axi drives."""

    _signals = ["tdata", "tvalid", "tready"]
    _optional_signals: list[str] = []

    def __init__(self, dut, name: str):
        super().__init__(dut, name, {"tdata": "payload", "tvalid": "valid", "tready": "ready"},
                         bus_separator="__")


def _pauses(probability: float, rng: random.Random):
    while True:
        yield probability > 0 and rng.random() < probability


def _to_unsigned(lanes: np.ndarray, bits: int) -> list[int]:
    return [int(v) & ((1 << bits) - 1) for v in lanes]


def _from_payload(word: int, lanes: int, bits: int) -> list[int]:
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    values = [(word >> (k * bits)) & mask for k in range(lanes)]
    return [v - (1 << bits) if v & sign else v for v in values]


class StreamBench:
    """Sources, sinks and transfer monitors for one configuration's streams."""

    def __init__(self, dut, manifest: dict):
        self.dut = dut
        self.manifest = manifest
        prefix = manifest["prefix"]
        seed = manifest["seed"]
        self.sources, self.sinks, self.buses = {}, {}, {}
        for k, (name, spec) in enumerate(manifest["inputs"].items()):
            bus = PeStreamBus(dut, f"{prefix}__{name}")
            source = AxiStreamSource(bus, dut.clk, dut.rst, byte_lanes=spec["lanes"])
            source.log.setLevel("WARNING")
            source.set_pause_generator(_pauses(manifest["idle"], random.Random(seed * 131 + k)))
            self.sources[name], self.buses[name] = source, bus
        for k, (name, spec) in enumerate(manifest["outputs"].items()):
            bus = PeStreamBus(dut, f"{prefix}__{name}")
            sink = AxiStreamSink(bus, dut.clk, dut.rst, byte_lanes=spec["lanes"])
            sink.log.setLevel("WARNING")
            sink.set_pause_generator(_pauses(manifest["backpressure"],
                                             random.Random(seed * 977 + k)))
            self.sinks[name], self.buses[name] = sink, bus
        self.beats = {name: [] for name in manifest["outputs"]}
        self.times = {name: [] for name in (*manifest["inputs"], *manifest["outputs"])}
        self.cycle = 0

    async def reset(self):
        self.dut.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def monitor(self):
        """Sample every stream mid-cycle: a transfer happens at the next rising edge."""
        outputs = self.manifest["outputs"]
        while True:
            await FallingEdge(self.dut.clk)
            for name, bus in self.buses.items():
                if bus.tvalid.value == 1 and bus.tready.value == 1:
                    self.times[name].append(self.cycle)
                    if name in outputs:
                        spec = outputs[name]
                        self.beats[name].append(
                            _from_payload(int(bus.tdata.value), spec["lanes"], spec["bits"]))
            self.cycle += 1

    def done(self) -> bool:
        return all(len(self.beats[n]) >= s["beats"] for n, s in self.manifest["outputs"].items())


@cocotb.test()
async def stream_test(dut):
    """Send the manifest's input beats and collect the output beats with their cycle times."""
    path = Path(os.environ["HWGEN_BENCH_MANIFEST"])
    manifest = json.loads(path.read_text())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    tb = StreamBench(dut, manifest)
    await tb.reset()
    cocotb.start_soon(tb.monitor())
    for name, spec in manifest["inputs"].items():
        beats = np.load(path.parent / spec["file"])
        data = [v for beat in beats for v in _to_unsigned(beat, spec["bits"])]
        await tb.sources[name].send(AxiStreamFrame(data))
    for cycle in range(manifest["timeout_cycles"]):
        await RisingEdge(dut.clk)
        for sink in tb.sinks.values():  # the monitor keeps the data; keep queues short
            while not sink.empty():
                sink.recv_nowait()
        if tb.done():
            break
    for _ in range(manifest["drain_cycles"]):  # extra beats would show up here
        await RisingEdge(dut.clk)
    result = {"beats": tb.beats, "times": tb.times, "cycles": tb.cycle}
    (path.parent / "result.json").write_text(json.dumps(result))
    missing = {n: (len(tb.beats[n]), s["beats"]) for n, s in manifest["outputs"].items()
               if len(tb.beats[n]) < s["beats"]}
    assert not missing, f"timeout after {manifest['timeout_cycles']} cycles: got/expected {missing}"
