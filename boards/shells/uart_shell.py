"""UartShell: ``hwgen_top`` behind a UART, the ECP5 board's link to its host.

RX -> byte FIFO -> :class:`BytesToBeats` -> ``s_axis``; ``m_axis`` -> :class:`BeatsToBytes` ->
byte FIFO -> TX. Frames are delimited by counting, as inside the accelerator: the host sends
``in_beats_per_frame`` beats of ``in_tdata_width / 8`` bytes per frame and reads
``out_beats_per_frame`` beats back (``board/design.json`` gives both). A line break
(:data:`~boards.shells.uart.BREAK_BITS` bit times low) resets the core and the shell's FIFOs, so
a host can always start from a clean frame boundary.

A serial link has no backpressure towards the host, so the receive FIFO must absorb every
stall of the core while bytes keep arriving: the host program keeps one frame in flight (it
sends a frame, then reads its output), and the FIFO holds ``rx_fifo_depth`` bytes (2,048, one
ECP5 EBR, by default). A byte lost to a full FIFO sets ``overrun`` until the next break.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, ResetInserter, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from rtl_templates.axis_top import TOP_NAME

from .byte_beats import BeatsToBytes, BytesToBeats
from .uart import UARTReceiver, UARTTransmitter

__all__ = ["UartShell", "UART_TOP_NAME", "uart_top_verilog"]

#: Verilog module name of the shell with the accelerator inside (what Verilator runs).
UART_TOP_NAME = "hwgen_uart_top"


class UartShell(wiring.Component):
    """The accelerator top and a UART, as one component with two pins.

    Parameters
    ----------
    in_tdata_width, out_tdata_width : int
        Widths of the top's ``s_axis_tdata`` and ``m_axis_tdata``, multiples of 8.
    divisor : int
        Clock cycles per bit (:func:`boards.shells.uart.uart_divisor`).
    rx_fifo_depth, tx_fifo_depth : int
        Bytes the receive and transmit FIFOs hold.

    Attributes
    ----------
    rx : In(1)
        Serial line from the host, idle high.
    tx : Out(1)
        Serial line to the host, idle high.
    overrun : Out(1)
        A received byte was lost since the last break.
    """

    def __init__(self, *, in_tdata_width: int, out_tdata_width: int, divisor: int,
                 rx_fifo_depth: int = 2048, tx_fifo_depth: int = 16):
        for name, value in (("in_tdata_width", in_tdata_width),
                            ("out_tdata_width", out_tdata_width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 8 or value % 8:
                raise ValueError(f"{name} must be a positive multiple of 8, not {value!r}")
        for name, value in (("rx_fifo_depth", rx_fifo_depth), ("tx_fifo_depth", tx_fifo_depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ValueError(f"{name} must be an int of at least 2, not {value!r}")
        self.in_tdata_width = in_tdata_width
        self.out_tdata_width = out_tdata_width
        self.divisor = divisor
        self.rx_fifo_depth = rx_fifo_depth
        self.tx_fifo_depth = tx_fifo_depth
        self._receiver = UARTReceiver(divisor)      # validates the divisor now
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.receiver = receiver = self._receiver
        m.submodules.transmitter = transmitter = UARTTransmitter(self.divisor)
        line_break = receiver.line_break
        clean = ResetInserter(line_break)
        m.submodules.rx_fifo = rx_fifo = clean(SyncFIFOBuffered(width=8, depth=self.rx_fifo_depth))
        m.submodules.to_beats = to_beats = clean(BytesToBeats(self.in_tdata_width // 8))
        m.submodules.to_bytes = to_bytes = clean(BeatsToBytes(self.out_tdata_width // 8))
        m.submodules.tx_fifo = tx_fifo = clean(SyncFIFOBuffered(width=8, depth=self.tx_fifo_depth))

        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx)]
        m.d.comb += [rx_fifo.w_data.eq(receiver.o.payload), rx_fifo.w_en.eq(receiver.o.valid),
                     receiver.o.ready.eq(rx_fifo.w_rdy),
                     to_beats.i.payload.eq(rx_fifo.r_data), to_beats.i.valid.eq(rx_fifo.r_rdy),
                     rx_fifo.r_en.eq(to_beats.i.ready)]
        m.d.comb += [tx_fifo.w_data.eq(to_bytes.o.payload), tx_fifo.w_en.eq(to_bytes.o.valid),
                     to_bytes.o.ready.eq(tx_fifo.w_rdy),
                     transmitter.i.payload.eq(tx_fifo.r_data),
                     transmitter.i.valid.eq(tx_fifo.r_rdy), tx_fifo.r_en.eq(transmitter.i.ready)]
        with m.If(line_break):
            m.d.sync += self.overrun.eq(0)
        with m.Elif(receiver.o.valid & ~rx_fifo.w_rdy):
            m.d.sync += self.overrun.eq(1)

        m.submodules.core = Instance(
            TOP_NAME,
            i_clk=ClockSignal(), i_rst=ResetSignal() | line_break,
            i_s_axis_tdata=to_beats.o.payload, i_s_axis_tvalid=to_beats.o.valid,
            o_s_axis_tready=to_beats.o.ready, i_s_axis_tlast=0,
            o_m_axis_tdata=to_bytes.i.payload, o_m_axis_tvalid=to_bytes.i.valid,
            i_m_axis_tready=to_bytes.i.ready, o_m_axis_tlast=Signal(name="m_axis_tlast"))
        return m


def uart_top_verilog(*, in_tdata_width: int, out_tdata_width: int, divisor: int) -> str:
    """The shell as Verilog module :data:`UART_TOP_NAME` (ports ``clk``, ``rst``, ``rx``,
    ``tx``, ``overrun``), instantiating ``hwgen_top`` from the build's ``hwgen_top.v``: what
    the Verilator model of the board's top runs."""
    from amaranth.back import verilog
    shell = UartShell(in_tdata_width=in_tdata_width, out_tdata_width=out_tdata_width,
                      divisor=divisor)
    return verilog.convert(shell, name=UART_TOP_NAME, emit_src=False)
