"""UART receiver and transmitter: 8 data bits, no parity, one stop bit (8N1), LSB first.

The bit time is ``divisor`` clock cycles, fixed at elaboration (:func:`uart_divisor` picks it
for a clock and baud rate). Bytes come and go as ``lib.stream`` beats of 8 bits: the receiver
cannot hold the line, so its ``o`` has no backpressure to offer and a byte the consumer does not
take before the next one completes is lost (counted in ``overruns``); put a FIFO behind it.
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTReceiver", "UARTTransmitter", "uart_divisor", "MAX_BAUD_ERROR", "BREAK_BITS"]

#: Bit times of continuous low line that make a break: two whole frames, longer than any byte
#: (whose longest low run, 0x00, is 9 bit times).
BREAK_BITS = 20

#: The largest baud-rate error :func:`uart_divisor` accepts. A receiver samples mid-bit; after
#: 9.5 bit times (start + 8 data + half the stop bit) the two ends may drift apart by less than
#: half a bit, 5% in total, which leaves each end about 2% once the edge-detect jitter of one
#: cycle and the other end's own error are allowed for.
MAX_BAUD_ERROR = 0.02


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Cycles per bit for ``baud`` at ``clock_hz``, rounded to the nearest.

    Raises
    ------
    ValueError
        If the divisor is below 4 (too few samples per bit) or the rounded rate is off by more
        than :data:`MAX_BAUD_ERROR`.
    """
    if not baud > 0 or not clock_hz > 0:
        raise ValueError(f"clock and baud rate must be positive, not {clock_hz!r} and {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"{baud} baud at {clock_hz / 1e6:g} MHz is {clock_hz / baud:.2f} cycles "
                         "per bit; the UART needs at least 4")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"{baud} baud at {clock_hz / 1e6:g} MHz: the nearest divisor {divisor} "
                         f"gives {clock_hz / divisor:.0f} baud, {100 * error:.1f}% off "
                         f"(at most {100 * MAX_BAUD_ERROR:g}%)")
    return divisor


def _check_divisor(divisor) -> int:
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 4:
        raise ValueError(f"divisor must be an int of at least 4 cycles per bit, not {divisor!r}")
    return divisor


class UARTReceiver(wiring.Component):
    """Serial line in, bytes out.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Attributes
    ----------
    rx : In(1)
        The line, idle high; synchronized inside (it comes from a pin).
    o : Out(stream.Signature(8))
        One beat per received byte; ``valid`` holds until taken or the next byte ends.
    overruns : Out(16)
        Bytes lost because ``o`` was not taken in time (wraps).
    framing_errors : Out(16)
        Bytes dropped because their stop bit was low (wraps).
    line_break : Out(1)
        High while the line has been low for :data:`BREAK_BITS` bit times or more: a break,
        which a host sends on purpose (pyserial's ``send_break``) and no byte can look like.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "overruns": Out(16), "framing_errors": Out(16),
                          "line_break": Out(1)})

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        low_for = Signal(range(BREAK_BITS * self.divisor + 1))
        with m.If(line):
            m.d.sync += low_for.eq(0)
        with m.Elif(low_for != BREAK_BITS * self.divisor):
            m.d.sync += low_for.eq(low_for + 1)
        m.d.comb += self.line_break.eq(low_for == BREAK_BITS * self.divisor)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("Idle"):
                with m.If(~line):
                    # Sample the first data bit one and a half bit times after the start edge.
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bit.eq(0)]
                    m.next = "Data"
            with m.State("Data"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "Stop"
            with m.State("Stop"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overruns.eq(self.overruns + 1)
                    with m.Else():
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                    # Back to idle mid stop bit: the next start edge may come half a bit early.
                    m.next = "Idle"
        return m


class UARTTransmitter(wiring.Component):
    """Bytes in, serial line out.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.

    Attributes
    ----------
    i : In(stream.Signature(8))
        Bytes to send; taken when the previous byte's stop bit has been sent.
    tx : Out(1)
        The line, idle high.
    """

    def __init__(self, divisor: int):
        self.divisor = _check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        # Start bit (0), 8 data bits LSB first, stop bit (1); ones fill in behind.
        frame = Signal(10, init=0x3FF)
        left = Signal(range(11))
        m.d.comb += self.tx.eq(frame[0])
        with m.If(left == 0):
            m.d.comb += self.i.ready.eq(1)
            with m.If(self.i.valid):
                m.d.sync += [frame.eq(Cat(C(0, 1), self.i.payload, C(1, 1))), left.eq(10),
                             timer.eq(self.divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [frame.eq(Cat(frame[1:], C(1, 1))), left.eq(left - 1),
                         timer.eq(self.divisor - 1)]
        return m

