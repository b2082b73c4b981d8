"""The UART shell's parts in Amaranth's simulator: bytes survive the serial line and the
byte/beat packers under idle gaps and backpressure; bad divisors are refused."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from boards.host.frames import beats_to_bytes, bytes_to_beats
from boards.shells.byte_beats import BeatsToBytes, BytesToBeats
from boards.shells.uart import BREAK_BITS, UARTReceiver, UARTTransmitter, uart_divisor
from boards.shells.uart_shell import UartShell


def _run(dut, bench, cycles_limit=200_000):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run_until(cycles_limit * 1e-8)


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_uart_loopback_bytes_and_break(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTransmitter(divisor)
    m.submodules.rx = rx = UARTReceiver(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    rng = random.Random(divisor)
    sent = [0x00, 0xFF, 0x55, 0xAA] + [rng.randrange(256) for _ in range(40)]
    got = []

    async def bench(ctx):
        pending = list(sent)
        while pending or len(got) < len(sent):
            if pending and rng.random() < 0.7:
                ctx.set(tx.i.payload, pending[0])
                ctx.set(tx.i.valid, 1)
            else:
                ctx.set(tx.i.valid, 0)
            ctx.set(rx.o.ready, 1)
            _, _, took, out_valid, out_byte = await ctx.tick().sample(
                tx.i.ready & tx.i.valid, rx.o.valid, rx.o.payload)
            if took:
                pending.pop(0)
            if out_valid:
                got.append(out_byte)
        assert ctx.get(rx.framing_errors) == 0 and ctx.get(rx.overruns) == 0
        assert ctx.get(rx.line_break) == 0

    _run(m, bench)
    assert got == sent


def test_break_is_detected_and_a_byte_is_not_one():
    rx = UARTReceiver(4)

    async def bench(ctx):
        ctx.set(rx.rx, 0)                       # a 0x00 byte is 9 low bits: no break
        await ctx.tick().repeat(4 * 9 + 2)
        assert not ctx.get(rx.line_break)
        await ctx.tick().repeat(4 * (BREAK_BITS - 9))
        assert ctx.get(rx.line_break)
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(3)
        assert not ctx.get(rx.line_break)

    _run(rx, bench, 1000)


@pytest.mark.parametrize("in_bytes,out_bytes", [(1, 1), (3, 10), (4, 2)])
def test_bytes_to_beats_and_back_under_gaps_and_backpressure(in_bytes, out_bytes):
    # bytes -> beats of in_bytes -> (re-cut as the same byte string) -> beats of out_bytes -> bytes
    m = Module()
    m.submodules.pack = pack = BytesToBeats(in_bytes)
    m.submodules.unpack = unpack = BeatsToBytes(in_bytes)
    m.d.comb += [unpack.i.payload.eq(pack.o.payload), unpack.i.valid.eq(pack.o.valid),
                 pack.o.ready.eq(unpack.i.ready)]
    rng = random.Random(in_bytes * 100 + out_bytes)
    data = bytes(rng.randrange(256) for _ in range(in_bytes * 30))
    got, beats = [], []

    async def bench(ctx):
        pending = list(data)
        for _ in range(20_000):
            if len(got) == len(data):
                break
            ctx.set(pack.i.valid, int(bool(pending) and rng.random() < 0.6))
            if pending:
                ctx.set(pack.i.payload, pending[0])
            ctx.set(unpack.o.ready, int(rng.random() < 0.5))
            _, _, took, out, byte, beat_taken, beat = await ctx.tick().sample(
                pack.i.valid & pack.i.ready, unpack.o.valid & unpack.o.ready,
                unpack.o.payload, pack.o.valid & pack.o.ready, pack.o.payload)
            if took:
                pending.pop(0)
            if out:
                got.append(byte)
            if beat_taken:
                beats.append(beat)

    _run(m, bench)
    assert bytes(got) == data
    # Each beat is its bytes little-endian: the host framing's order.
    assert [int.from_bytes(data[k:k + in_bytes], "little") for k in range(0, len(data), in_bytes)] \
        == beats


def test_host_framing_matches_the_shell_byte_order():
    beats = [[1, -2, 3], [-128, 127, 0]]
    raw = beats_to_bytes(beats, 8)
    assert raw == bytes([1, 0xFE, 3, 0x80, 0x7F, 0]) and bytes_to_beats(raw, 3, 8).tolist() == beats
    raw4 = beats_to_bytes([[1, -1, 7]], 4)          # 12 bits -> 2 bytes, padding zero
    assert raw4 == bytes([0xF1, 0x07])


@pytest.mark.parametrize("clock,baud,message", [
    (100e6, 50_000_000, "at least 4"),
    (10e6, 1_500_000, "off"),
    (100e6, 0, "positive"),
])
def test_bad_baud_rates_are_refused(clock, baud, message):
    with pytest.raises(ValueError, match=message):
        uart_divisor(clock, baud)


def test_divisor_and_widths_are_checked():
    assert uart_divisor(100e6, 3_000_000) == 33
    with pytest.raises(ValueError, match="divisor"):
        UARTReceiver(3)
    with pytest.raises(ValueError, match="in_tdata_width"):
        UartShell(in_tdata_width=12, out_tdata_width=8, divisor=8)
