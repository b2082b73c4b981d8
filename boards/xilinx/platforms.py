"""Amaranth platforms for the Xilinx boards hwgen targets (amaranth-boards has none of them).

Each class names the device, package and speed grade (Amaranth's ``XilinxPlatform`` builds the
part string from them) and the board's clock, reset and USB-UART pins where a board file or
a vendor-derived constraint file gives them. A pin that no source gave is left out, never
guessed; ``boards/README.md`` ("Xilinx platforms") cites the source of every pin and lists
what is missing.

The Zynq boards' flows clock the accelerator from the processing system, so their pin
resources are not used by the flows; they are here so a PL-only design can use them.
"""

from __future__ import annotations

from amaranth.build import Attrs, Clock, DiffPairs, Pins, Resource, Subsignal
from amaranth.vendor import XilinxPlatform
from amaranth_boards.resources import ButtonResources, UARTResource

__all__ = ["VC707Platform", "ZCU104Platform", "ZCU102Platform", "PynqZ2Platform",
           "Ultra96Platform", "U250Platform", "PLATFORMS", "part_name"]


def part_name(platform: XilinxPlatform) -> str:
    """The part as Vivado's ``-part`` takes it (lower case), the way Amaranth spells it."""
    if platform.family in {"ultrascale", "ultrascaleplus"}:
        return f"{platform.device}-{platform.package}-{platform.speed}".lower()
    return f"{platform.device}{platform.package}-{platform.speed}".lower()


class VC707Platform(XilinxPlatform):
    """Virtex-7 VC707: XC7VX485T-2FFG1761, 200 MHz LVDS system clock, CPU_RESET, CP2103 UART.

    ``pcie_x8`` is the edge connector: 100 MHz reference clock into MGTREFCLK1 of quad 115,
    PERST# and eight GTX lanes (lane 0 on GTXE2_CHANNEL_X1Y11, as the PCIe block at
    PCIE_X1Y0 wants them).
    """

    device = "xc7vx485t"
    package = "ffg1761"
    speed = "2"
    default_clk = "clk200"
    default_rst = "rst"
    resources = [
        Resource("clk200", 0, DiffPairs("E19", "E18", dir="i"), Clock(200e6),
                 Attrs(IOSTANDARD="LVDS")),
        # CPU_RESET (SW8) is active high.
        Resource("rst", 0, Pins("AV40", dir="i"), Attrs(IOSTANDARD="LVCMOS18")),
        # RTS/CTS (AT32, AR34) are named the other way round by two of the sources: left out.
        UARTResource(0, rx="AU33", tx="AU36", attrs=Attrs(IOSTANDARD="LVCMOS18")),
        Resource("pcie_x8", 0,
                 Subsignal("perst_n", Pins("AV35", dir="i"),
                           Attrs(IOSTANDARD="LVCMOS18", PULLUP="TRUE")),
                 Subsignal("clk", DiffPairs("AB8", "AB7", dir="i"), Clock(100e6)),
                 Subsignal("rx", DiffPairs("Y4 AA6 AB4 AC6 AD4 AE6 AF4 AG6",
                                           "Y3 AA5 AB3 AC5 AD3 AE5 AF3 AG5", dir="i")),
                 Subsignal("tx", DiffPairs("W2 AA2 AC2 AE2 AG2 AH4 AJ2 AK4",
                                           "W1 AA1 AC1 AE1 AG1 AH3 AJ1 AK3", dir="o"))),
    ]
    connectors = []


class ZCU104Platform(XilinxPlatform):
    """Zynq UltraScale+ ZCU104: XCZU7EV-2FFVC1156, 300 MHz CLK_300, CPU_RESET.

    The PL UART (uart2_PL, C19/A20) is left out: the board file gives no I/O standard for it.
    """

    device = "xczu7ev"
    package = "ffvc1156"
    speed = "2-e"
    default_clk = "clk300"
    default_rst = "rst"
    resources = [
        Resource("clk300", 0, DiffPairs("AH18", "AH17", dir="i"), Clock(300e6),
                 Attrs(IOSTANDARD="DIFF_SSTL12")),
        Resource("rst", 0, Pins("M11", dir="i"), Attrs(IOSTANDARD="LVCMOS33")),
    ]
    connectors = []


class ZCU102Platform(XilinxPlatform):
    """Zynq UltraScale+ ZCU102: XCZU9EG-2FFVB1156, 125 MHz clock, CPU_RESET, PL UART."""

    device = "xczu9eg"
    package = "ffvb1156"
    speed = "2-e"
    default_clk = "clk125"
    default_rst = "rst"
    resources = [
        Resource("clk125", 0, DiffPairs("G21", "F21", dir="i"), Clock(125e6),
                 Attrs(IOSTANDARD="LVDS_25")),
        Resource("rst", 0, Pins("AM13", dir="i"), Attrs(IOSTANDARD="LVCMOS33")),
        UARTResource(0, rx="E13", tx="F13", attrs=Attrs(IOSTANDARD="LVCMOS33")),
    ]
    connectors = []


class PynqZ2Platform(XilinxPlatform):
    """TUL PYNQ-Z2: XC7Z020-1CLG400, 125 MHz single-ended clock, four push buttons.

    No reset button and no UART reach the PL (the USB-UART is on the PS's MIO).
    """

    device = "xc7z020"
    package = "clg400"
    speed = "1"
    default_clk = "clk125"
    resources = [
        Resource("clk125", 0, Pins("H16", dir="i"), Clock(125e6), Attrs(IOSTANDARD="LVCMOS33")),
        *ButtonResources(pins="D19 D20 L20 L19", attrs=Attrs(IOSTANDARD="LVCMOS33")),
    ]
    connectors = []


class Ultra96Platform(XilinxPlatform):
    """Avnet Ultra96: XCZU3EG-1SBVA484. No PL pin resources: none could be sourced here."""

    device = "xczu3eg"
    package = "sbva484"
    speed = "1-e"
    resources = []
    connectors = []


class U250Platform(XilinxPlatform):
    """Alveo U250: XCU250-FIGD2104-2L-E, 300 MHz DDR-bank clock 0, CPU_RESET, USB-UART.

    Under Vitis the platform's shell owns these pins; they are here for a bare-metal design.
    """

    device = "xcu250"
    package = "figd2104"
    speed = "2l-e"
    default_clk = "clk300"
    default_rst = "rst"
    resources = [
        Resource("clk300", 0, DiffPairs("AY37", "AY38", dir="i"), Clock(300e6),
                 Attrs(IOSTANDARD="LVDS")),
        Resource("rst", 0, Pins("AL20", dir="i"), Attrs(IOSTANDARD="LVCMOS12")),
        # The board file names the pins from the USB bridge's side (USB_UART_TX = BB20 drives
        # the FPGA); the FPGA's rx is BB20 and its tx BF18.
        UARTResource(0, rx="BB20", tx="BF18", attrs=Attrs(IOSTANDARD="LVCMOS12")),
    ]
    connectors = []


#: Board catalog name -> platform class.
PLATFORMS: dict[str, type[XilinxPlatform]] = {
    "vc707": VC707Platform, "zcu104": ZCU104Platform, "zcu102": ZCU102Platform,
    "pynq-z2": PynqZ2Platform, "ultra96": Ultra96Platform, "u250": U250Platform,
}
