"""The ULX3S 85F (ECP5 LFE5U-85F): amaranth-boards' platform and the design put on it.

:class:`Ulx3sAccelerator` is the board's top: the 25 MHz oscillator through an
:class:`~boards.lattice.pll.EcpPll` to the report's clock, a reset held while the PLL is
unlocked or the PWR button is pressed, and :class:`~boards.shells.uart_shell.UartShell` on the
FTDI USB serial port. LED 0 lights on a receive overrun, LED 1 when the PLL is locked.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from ..design import BoardDesign
from ..shells.uart import uart_divisor
from ..shells.uart_shell import UartShell
from .pll import EcpPll, pll_settings

__all__ = ["Ulx3sAccelerator", "ULX3S_85F_Platform", "OSCILLATOR_MHZ", "DEFAULT_BAUD"]

#: The ULX3S's oscillator (amaranth-boards' ``clk25`` resource).
OSCILLATOR_MHZ = 25.0
#: The FT231X USB serial bridge's highest rate (FTDI DS_FT231X: 3 Mbaud).
DEFAULT_BAUD = 3_000_000


class Ulx3sAccelerator(Elaboratable):
    """The accelerator with its UART shell, clock and reset, for the ULX3S.

    Parameters
    ----------
    design : BoardDesign
        The built accelerator (its ``hwgen_top.v`` is added to the platform by the flow).
    baud : int
        Serial rate; must divide the PLL's clock within 2%.

    Raises
    ------
    ValueError
        If no PLL setting reaches the design's clock or the baud rate does not divide it.
    """

    def __init__(self, design: BoardDesign, *, baud: int = DEFAULT_BAUD):
        self.pll = pll_settings(OSCILLATOR_MHZ, design.clock_mhz)
        self.baud = baud
        self.divisor = uart_divisor(self.pll.output_mhz * 1e6, baud)
        self.shell = UartShell(in_tdata_width=design.in_tdata_width,
                               out_tdata_width=design.out_tdata_width, divisor=self.divisor)

    def elaborate(self, platform):
        m = Module()
        m.submodules.clk25 = clk25 = io.Buffer("i", platform.request("clk25", dir="-"))
        m.submodules.pll = pll = EcpPll(self.pll)
        m.d.comb += pll.clk_in.eq(clk25.i)
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(pll.clk_out)
        platform.add_clock_constraint(pll.clk_out, self.pll.output_mhz * 1e6)
        # PinsN: the buffer's input is high while the button is pressed.
        m.submodules.button = button = io.Buffer("i", platform.request("button_pwr", 0, dir="-"))
        m.submodules.reset = ResetSynchronizer(~pll.locked | button.i, domain="sync")
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.shell = shell = self.shell
        m.d.comb += [shell.rx.eq(rx.i), tx.o.eq(shell.tx)]
        for k, status in enumerate((shell.overrun, pll.locked)):
            m.submodules[f"led{k}"] = led = io.Buffer("o", platform.request("led", k, dir="-"))
            m.d.comb += led.o.eq(status)
        return m
