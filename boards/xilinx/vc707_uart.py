"""VC707 UART shell: the fallback that needs no host driver.

The PCIe shell (:mod:`boards.xilinx.pcie_shell`) needs Xilinx's XDMA kernel driver on the host;
this one needs a USB cable. :class:`Vc707UartTop` puts :class:`~boards.shells.uart_shell.UartShell`
(the ECP5 board's shell: RX, byte-to-beat packer, ``hwgen_top``, beat-to-byte, TX) on the
VC707's CP2103 USB-UART bridge, clocked by the 200 MHz system clock itself (the clock every
VC707 report assumes, so no MMCM) through the BUFGCE and CPU_RESET synchroniser Amaranth's
Vivado platform puts on its default clock. No IP and no block design: Amaranth's Vivado
template writes the whole project (TCL, XDC, top Verilog, build script); the host program is the
ECP5 board's ``serial_host.py``.
"""

from __future__ import annotations

from pathlib import Path

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from ..design import DESIGN_JSON, BoardDesign, BoardProject
from ..shells.uart import uart_divisor
from ..shells.uart_shell import UartShell
from .platforms import VC707Platform
from .project import REPORTS_DIR, VIVADO_VERSION, copy_host, reports_tcl, write_text

__all__ = ["Vc707UartTop", "Vc707UartProject", "UART_DIR", "UART_TOP_NAME", "VC707_UART_BAUD"]

#: The project's folder inside ``board/``, and its Amaranth top's name.
UART_DIR = "uart"
UART_TOP_NAME = "vc707_uart"
#: 921,600 baud: the fastest standard rate in the CP2102/CP2103 baud-rate table (Silicon Labs
#: AN205, Table 1; Linux's cp210x driver rounds requests to it), 217 cycles a bit at 200 MHz
#: (0.01% off).
VC707_UART_BAUD = 921_600
_SYSTEM_CLOCK_MHZ = 200.0


class Vc707UartTop(Elaboratable):
    """The accelerator behind the VC707's USB UART.

    Parameters
    ----------
    design : BoardDesign
        The built accelerator, for the vc707 at the 200 MHz system clock.
    baud : int

    Raises
    ------
    ValueError
        If the design's clock is not the system clock's 200 MHz or the baud rate does not
        divide it closely enough (:func:`~boards.shells.uart.uart_divisor`).
    """

    def __init__(self, design: BoardDesign, *, baud: int = VC707_UART_BAUD):
        if design.clock_mhz != _SYSTEM_CLOCK_MHZ:
            raise ValueError(f"the VC707 UART shell clocks the accelerator from the "
                             f"{_SYSTEM_CLOCK_MHZ:g} MHz system clock; the design wants "
                             f"{design.clock_mhz:g} MHz")
        self.baud = baud
        self.divisor = uart_divisor(design.clock_mhz * 1e6, baud)
        self.shell = UartShell(in_tdata_width=design.in_tdata_width,
                               out_tdata_width=design.out_tdata_width, divisor=self.divisor)

    def elaborate(self, platform):
        m = Module()
        # The `sync` domain is the platform's: clk200 (IBUFDS, BUFGCE released by the
        # configuration's end of startup) with CPU_RESET synchronised.
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.shell = shell = self.shell
        m.d.comb += [shell.rx.eq(rx.i), tx.o.eq(shell.tx)]
        return m


class Vc707UartProject:
    """Writes the VC707 UART project into ``board/uart/``.

    Parameters
    ----------
    design : BoardDesign
        The built accelerator, for the vc707.

    Raises
    ------
    ValueError
        If the design is not for the vc707 or its clock is not 200 MHz.
    """

    def __init__(self, design: BoardDesign, *, baud: int = VC707_UART_BAUD):
        if design.board.name != "vc707":
            raise ValueError(f"the VC707 UART shell is for the vc707, not {design.board.name!r}")
        self.design = design
        self.top = Vc707UartTop(design, baud=baud)

    @property
    def folder(self) -> Path:
        return self.design.board_dir / UART_DIR

    def write(self) -> BoardProject:
        """Write the project; its files are listed relative to ``design.board_dir``."""
        d, into = self.design, self.folder
        platform = VC707Platform(toolchain="Vivado")
        d.add_sources(platform)
        plan = platform.prepare(self.top, name=UART_TOP_NAME,
                                script_before_bitstream=reports_tcl(REPORTS_DIR))
        plan.extract(into)
        files = [into / name for name in plan.files]
        files += copy_host(d, "serial_host.py", into)
        files.append(write_text(into / "README.md", self._readme()))
        board_dir = d.board_dir
        return BoardProject(board_dir=into,
                            files=sorted(p.relative_to(board_dir) for p in files),
                            run_command=f"sh build_{UART_TOP_NAME}.sh", tool="vivado",
                            bitstream=Path(f"{UART_TOP_NAME}.bit"))

    def _readme(self) -> str:
        d, top = self.design, self.top
        frame_in, frame_out, link_fps = d.in_frame_bytes, d.out_frame_bytes, d.serial_fps(top.baud)
        return f"""# {d.name} on vc707: UART shell (the fallback without a host driver)

Written by hwgen for Vivado {VIVADO_VERSION} (part `xc7vx485tffg1761-2`), all of it by Amaranth's
Vivado template: `{UART_TOP_NAME}.tcl`, `{UART_TOP_NAME}.xdc`, `{UART_TOP_NAME}.v`,
`build_{UART_TOP_NAME}.sh`. No IP, no block design. The PCIe shell one folder up is faster;
this one needs only the board's USB-UART cable (J17).

Build (writes `{UART_TOP_NAME}.bit` and `reports/`), then program it over JTAG:

```sh
sh build_{UART_TOP_NAME}.sh
```

How the host talks to the board: the CP2103 bridge appears as `/dev/ttyUSB0` (Linux's cp210x
driver, in the kernel) at {top.baud} baud, 8N1.

```sh
pip install numpy pyserial
python3 serial_host.py /dev/ttyUSB0 --baud {top.baud} --check ../golden/
```

- A frame is {d.in_beats_per_frame} beats of {d.in_beat_bytes} bytes in ({frame_in} bytes),
  {d.out_beats_per_frame} beats of {d.out_beat_bytes} bytes out ({frame_out} bytes);
  `{DESIGN_JSON}` has the shapes, `frames.py` the packing (the co-simulation's).
- The host keeps one frame in flight, so the link carries at most {link_fps:.1f} frames/s.
- A line break resets the accelerator and the shell's FIFOs; the host starts with one.
- Clock: the 200 MHz system clock (E19/E18) straight to the accelerator; a UART bit is
  {top.divisor} cycles. Reset: CPU_RESET (SW8) or a line break.
"""

