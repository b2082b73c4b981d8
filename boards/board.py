"""What the compiler needs to know about a target board: its device's resources, clock and memory.

A :class:`Board` is data, validated on construction so a typo in the catalog fails at import, not
halfway through a fold search. :meth:`Board.budget` is what the compiler fits a design into.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction

from rtl_templates.resources import FAMILIES, DeviceFamily, Resources, family

__all__ = ["Board"]

# Fields that are counts of on-chip primitives; a device always has some LUTs and FFs.
_POSITIVE_COUNTS = ("lut", "ff")
_COUNTS = ("dsp", "bram18", "uram", "lutram_kbits", "ddr_bytes", "bitstream_bits")
_TEXT = ("name", "part", "host_link", "source")


def _is_int(value) -> bool:
    # bool is an int subclass; True LUTs is a bug, not a count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Board:
    """A target board: one FPGA device plus the clock and off-chip memory around it.

    Parameters
    ----------
    name : str
        Catalog name, lower case (``"vc707"``).
    part : str
        Full device part number (``"XC7VX485T-2FFG1761"``).
    family : str or DeviceFamily
        One of :data:`rtl_templates.resources.FAMILIES` (``"7series"``, ``"ultrascale"``,
        ``"ecp5"``); stored as the name.
    lut, ff : int
        Logic cells and flip-flops of the whole device (LUT4 on ECP5, LUT6 on Xilinx).
    dsp : int
        DSP slices (DSP48E1/E2) or, on ECP5, MULT18X18D multipliers.
    bram18 : int
        18 Kb block RAMs: two per Xilinx BRAM36; one per ECP5 EBR.
    uram : int
        UltraRAM blocks (288 Kb each); 0 where the device has none.
    lutram_kbits : int
        Distributed RAM capacity in Kb; 0 when not known.
    clock_mhz : float
        Default clock the compiler plans for.
    ddr_bytes : int
        Off-chip memory size in bytes; 0 if none.
    ddr_gbps : float
        Off-chip memory bandwidth in GB/s (10^9 bytes); 0 if none.
    host_link : str
        How the host talks to the board (``"PCIe Gen2 x8"``, ``"Zynq PS AXI HP"``).
    utilization_cap : float
        Fraction of each resource the compiler may use, 0 < cap <= 1; the rest is headroom for
        routing and the shell.
    source : str
        Where the figures come from; *derived* marks arithmetic on sourced figures.
    bitstream_bits : int
        Length of the device's full, uncompressed configuration bitstream; 0 where no cited
        figure is known (the report then says reconfiguration time is not included).
    config_gbps : float
        Highest bandwidth of the configuration port the board reconfigures through, in Gb/s
        (10^9 bits); 0 if not known.

    Raises
    ------
    TypeError
        A field has the wrong type.
    ValueError
        A field is out of range or the family is unknown.
    """

    name: str
    part: str
    family: str
    lut: int
    ff: int
    dsp: int
    bram18: int
    uram: int = 0
    lutram_kbits: int = 0
    clock_mhz: float = 200.0
    ddr_bytes: int = 0
    ddr_gbps: float = 0.0
    host_link: str = ""
    utilization_cap: float = 0.85
    source: str = ""
    bitstream_bits: int = 0
    config_gbps: float = 0.0

    def __post_init__(self):
        for name in _TEXT:
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a str, not {value!r}")
        for name in ("name", "part", "source"):
            if not getattr(self, name).strip():
                raise ValueError(f"{name} must not be empty, not {getattr(self, name)!r}")
        if isinstance(self.family, DeviceFamily):
            object.__setattr__(self, "family", self.family.name)
        if not isinstance(self.family, str):
            raise TypeError(f"family must be a str or DeviceFamily, not {self.family!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown device family {self.family!r}; "
                             f"known: {', '.join(sorted(FAMILIES))}")
        for name in _POSITIVE_COUNTS + _COUNTS:
            value = getattr(self, name)
            if not _is_int(value):
                raise TypeError(f"{name} must be an int, not {value!r}")
            lowest = 1 if name in _POSITIVE_COUNTS else 0
            if value < lowest:
                raise ValueError(f"{name} must be at least {lowest}, not {value!r}")
        for name in ("clock_mhz", "ddr_gbps", "utilization_cap", "config_gbps"):
            value = getattr(self, name)
            if not _is_real(value):
                raise TypeError(f"{name} must be a finite number, not {value!r}")
        if self.clock_mhz <= 0:
            raise ValueError(f"clock_mhz must be positive, not {self.clock_mhz!r}")
        for name in ("ddr_gbps", "config_gbps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, not {getattr(self, name)!r}")
        if (self.ddr_bytes == 0) != (self.ddr_gbps == 0):
            raise ValueError(f"ddr_bytes and ddr_gbps must both be zero or both positive, "
                             f"not {self.ddr_bytes!r} and {self.ddr_gbps!r}")
        if not 0 < self.utilization_cap <= 1:
            raise ValueError(f"utilization_cap must be in (0, 1], not {self.utilization_cap!r}")

    @property
    def device_family(self) -> DeviceFamily:
        """The :class:`DeviceFamily` the PE resource models take."""
        return family(self.family)

    def available(self) -> Resources:
        """Every DSP, BRAM18, LUT, FF and URAM on the device."""
        return Resources(dsp=self.dsp, bram18=self.bram18, lut=self.lut, ff=self.ff,
                         uram=self.uram)

    def budget(self) -> Resources:
        """What the compiler may use: ``floor(utilization_cap * available)`` per resource."""
        # The cap as written (0.85 is 17/20), so 0.85 * 2060 floors to 1751, never 1750 by
        # binary rounding.
        cap = Fraction(repr(float(self.utilization_cap)))
        full = self.available()
        return Resources(*(math.floor(cap * getattr(full, f.name)) for f in fields(full)))

    @property
    def reconfiguration_seconds(self) -> float | None:
        """Time to load one full bitstream at the configuration port's highest bandwidth (a
        lower bound); None when the bitstream length or the bandwidth is not known."""
        if not (self.bitstream_bits and self.config_gbps):
            return None
        return self.bitstream_bits / (self.config_gbps * 1e9)

    @property
    def ddr_bytes_per_cycle(self) -> float:
        """Off-chip bytes per clock cycle at :attr:`clock_mhz`; 0 if the board has no DDR."""
        return self.ddr_gbps * 1e9 / (self.clock_mhz * 1e6)
