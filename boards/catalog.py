"""The boards hwgen knows, with figures from ``/work/shared/facts.md``.

Clocks are the ones commonly closed for DSP-heavy dataflow designs: 200 MHz on 7-series, 250 MHz on
UltraScale+ (inside the 185-333 MHz FINN closes there), 100 MHz on ECP5.
"""

from __future__ import annotations

from .board import Board

__all__ = ["BOARDS", "UnknownBoardError", "board_names", "get_board"]

_GIB = 2**30
_MIB = 2**20
_FACTS = "/work/shared/facts.md"
_ZYNQ_MP_LINK = "Zynq UltraScale+ PS (AXI HP ports)"
# Configuration ports' highest bandwidths: UG909 (v2022.2) "Configuration Time", Tables 1 and 3
# (ICAP 32 bits at 100 MHz on 7-series, ICAP/MCAP 32 bits at 200 MHz on UltraScale+). A Zynq's
# PS reaches the same configuration logic through its PCAP, whose rate UG909 does not give;
# the port's maximum makes the time a lower bound.
_CONFIG_7SERIES_GBPS = 3.2
_CONFIG_ULTRASCALE_PLUS_GBPS = 6.4
_CONFIG_SSI_GBPS = 4.0           # UG909 Table 3, ICAP/MCAP on a stacked-silicon device (U250)
# Full uncompressed bitstream lengths: UG470 (v1.11) Table 1-1 "Bitstream Length" for the
# XC7VX485T; the XC7Z020's PL image size as u-boot's include/zynqpl.h (maintained by Xilinx)
# gives it, XILINX_XC7Z020_SIZE 32364512/8. UG570's table for the UltraScale+ parts was not
# found, so their bitstream_bits stay 0 (unknown) and reports say reconfiguration is left out.
_BITS_7VX485T = 162_187_488
_BITS_7Z020 = 32_364_512

_CATALOG = (
    Board(
        name="vc707", part="XC7VX485T-2FFG1761", family="7series",
        lut=303_600, ff=607_200, dsp=2_800, bram18=2 * 1_030, uram=0,
        lutram_kbits=130_800 * 64 // 1024,
        clock_mhz=200.0, ddr_bytes=1 * _GIB, ddr_gbps=12.8, host_link="PCIe Gen2 x8",
        source=f"Xilinx part data; XilinxBoardStore vc707 board.xml / mig.prj ({_FACTS}); "
               "200 MHz system clock; DDR3-1600 64-bit = 12.8 GB/s derived; "
               "lutram_kbits = 130,800 LUTRAM x 64 b derived; bitstream length UG470 "
               "Table 1-1; configuration port UG909",
        bitstream_bits=_BITS_7VX485T, config_gbps=_CONFIG_7SERIES_GBPS,
    ),
    Board(
        name="zcu104", part="XCZU7EV-2FFVC1156", family="ultrascale",
        lut=230_400, ff=460_800, dsp=1_728, bram18=2 * 312, uram=96,
        clock_mhz=250.0, ddr_bytes=2 * _GIB, ddr_gbps=19.2, host_link=_ZYNQ_MP_LINK,
        config_gbps=_CONFIG_ULTRASCALE_PLUS_GBPS,
        source=f"Xilinx part data ({_FACTS}); 250 MHz chosen within the 185-333 MHz FINN closes "
               "on UltraScale+; 2 GB PS DDR4 at 19.2 GB/s derived; LUTRAM not listed",
    ),
    Board(
        name="zcu102", part="XCZU9EG-2FFVB1156", family="ultrascale",
        lut=274_080, ff=548_160, dsp=2_520, bram18=2 * 912, uram=0,
        clock_mhz=250.0, ddr_bytes=4 * _GIB, ddr_gbps=19.2, host_link=_ZYNQ_MP_LINK,
        config_gbps=_CONFIG_ULTRASCALE_PLUS_GBPS,
        source=f"Xilinx part data ({_FACTS}); 250 MHz chosen within the 185-333 MHz FINN closes "
               "on UltraScale+; 4 GB PS DDR4 at 19.2 GB/s derived; LUTRAM not listed",
    ),
    Board(
        name="pynq-z2", part="XC7Z020-1CLG400", family="7series",
        lut=53_200, ff=106_400, dsp=220, bram18=2 * 140, uram=0,
        clock_mhz=200.0, ddr_bytes=512 * _MIB, ddr_gbps=4.2,
        host_link="Zynq-7000 PS (AXI HP ports)",
        source=f"Xilinx part data ({_FACTS}); 200 MHz as closed on Zynq-7000; "
               "512 MB DDR3 at 4.2 GB/s derived; LUTRAM not listed; bitstream length "
               "from u-boot include/zynqpl.h; configuration port UG909",
        bitstream_bits=_BITS_7Z020, config_gbps=_CONFIG_7SERIES_GBPS,
    ),
    Board(
        name="ultra96", part="XCZU3EG-1SBVA484", family="ultrascale",
        lut=70_560, ff=141_120, dsp=360, bram18=2 * 216, uram=0,
        clock_mhz=250.0, ddr_bytes=2 * _GIB, ddr_gbps=8.5, host_link=_ZYNQ_MP_LINK,
        config_gbps=_CONFIG_ULTRASCALE_PLUS_GBPS,
        source=f"Xilinx part data ({_FACTS}); 250 MHz chosen within the 185-333 MHz FINN closes "
               "on UltraScale+; 2 GB LPDDR4 at 8.5 GB/s derived; LUTRAM not listed",
    ),
    Board(
        name="u250", part="XCU250", family="ultrascale",
        lut=1_728_000, ff=3_456_000, dsp=12_288, bram18=2 * 2_688, uram=1_280,
        clock_mhz=250.0, ddr_bytes=64 * _GIB, ddr_gbps=77.0, host_link="PCIe Gen3 x16",
        config_gbps=_CONFIG_SSI_GBPS,
        source=f"Xilinx part data; FINN platforms.py ({_FACTS}); full-device figures: 4 SLRs, "
               "the shell leaves ~375K LUT, 576 BRAM36, 2,880 DSP per SLR; "
               "64 GB DDR4 at 77 GB/s derived; LUTRAM not listed",
    ),
    Board(
        name="ecp5-85f", part="LFE5U-85F", family="ecp5",
        lut=83_640, ff=83_640, dsp=156, bram18=208, uram=0, lutram_kbits=669,
        clock_mhz=100.0, ddr_bytes=32 * _MIB, ddr_gbps=0.2, host_link="USB serial (FTDI)",
        source=f"Lattice ECP5 family data sheet ({_FACTS}); ULX3S board; LUT4; 156 MULT18X18D "
               "as dsp; 208 EBR of 18 Kb as bram18; 32 MB SDRAM at 0.2 GB/s derived",
    ),
)

BOARDS: dict[str, Board] = {b.name: b for b in _CATALOG}

# Other spellings people type; "_" for "-" is handled by normalization.
_ALIASES = {"ulx3s": "ecp5-85f", "lfe5u-85f": "ecp5-85f", "pynqz2": "pynq-z2"}


class UnknownBoardError(ValueError):
    """A board name not in the catalog; the message lists the known ones on one line."""


def board_names() -> list[str]:
    """Catalog names, sorted."""
    return sorted(BOARDS)


def get_board(name: str) -> Board:
    """Look up a board by name: case-insensitive, ``_`` accepted for ``-``.

    Raises
    ------
    UnknownBoardError
        ``name`` is not a catalog name or alias.
    """
    if not isinstance(name, str):
        raise TypeError(f"board name must be a str, not {name!r}")
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    try:
        return BOARDS[key]
    except KeyError:
        raise UnknownBoardError(
            f"unknown board {name!r}; known boards: {', '.join(board_names())}") from None
