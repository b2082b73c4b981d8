"""Vivado's text reports to numbers: ``report_utilization`` and ``report_timing_summary``.

The layouts parsed are Vivado's own (2016.1 to 2023.2 print them alike): utilization tables of
``| Site Type | Used | Fixed | [Prohibited |] Available | Util% |`` rows, with ``Slice LUTs`` /
``Slice Registers`` on 7-series and ``CLB LUTs`` / ``CLB Registers`` on UltraScale+; the
timing summary's "Design Timing Summary" (WNS first), "Clock Summary" (name, waveform, period)
and "Intra Clock Table" (per-clock WNS) sections. The unit tests hold report text in exactly
that layout, copied from published reports of Vivado 2017.4 to 2023.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Utilization", "Timing", "parse_utilization", "parse_timing", "ReportFormatError"]


class ReportFormatError(ValueError):
    """A report lacks a row or section the parser needs; the message names it."""


@dataclass(frozen=True)
class Utilization:
    """Counts from ``report_utilization``; ``bram18`` counts two per RAMB36."""

    lut: int
    ff: int
    dsp: int
    bram18: int
    uram: int


@dataclass(frozen=True)
class Timing:
    """The worst setup slack of one clock and that clock's period, in ns."""

    clock: str
    period_ns: float
    wns_ns: float

    @property
    def fmax_mhz(self) -> float:
        """The clock the paths would meet with zero slack: 1000 / (period - WNS)."""
        return 1000.0 / (self.period_ns - self.wns_ns)


_ROW = re.compile(r"^\|\s*([^|]*?)\s*\|\s*([0-9.]+)\s*\|", re.MULTILINE)


def _first(rows: dict[str, float], names: tuple[str, ...], *, required: bool) -> float:
    for name in names:
        if name in rows:
            return rows[name]
    if required:
        raise ReportFormatError(f"utilization report has no {' or '.join(names)!s} row")
    return 0.0


def parse_utilization(text: str) -> Utilization:
    """Counts of a ``report_utilization`` text report (the first row of each name counts).

    Raises
    ------
    ReportFormatError
        If the LUT, register or DSP row is missing.
    """
    rows: dict[str, float] = {}
    for name, used in _ROW.findall(text):
        rows.setdefault(name, float(used))
    ramb36 = _first(rows, ("RAMB36/FIFO*",), required=False)
    ramb18 = _first(rows, ("RAMB18",), required=False)
    return Utilization(
        lut=int(_first(rows, ("Slice LUTs", "CLB LUTs", "Slice LUTs*", "CLB LUTs*"), required=True)),
        ff=int(_first(rows, ("Slice Registers", "CLB Registers"), required=True)),
        dsp=int(_first(rows, ("DSPs",), required=True)),
        bram18=int(2 * ramb36 + ramb18),
        uram=int(_first(rows, ("URAM",), required=False)),
    )


def _section(text: str, title: str) -> list[str]:
    """The lines of section ``| title`` up to the next section header."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"| {title}":
            body = []
            for later in lines[i + 3:]:
                if later.startswith("| ") and not later.startswith("| -"):
                    break
                body.append(later)
            return body
    raise ReportFormatError(f"timing report has no '{title}' section")


def _table(body: list[str]) -> list[list[str]]:
    """Rows under a header line and its dashes line; rows split on runs of spaces."""
    rows, started = [], False
    for line in body:
        if not started:
            started = line.strip().startswith("-----")
            continue
        if not line.strip():
            if rows:
                break
            continue
        rows.append(line.split())
    return rows


def parse_timing(text: str, clock_mhz: float) -> Timing:
    """The WNS and period of the clock whose frequency is nearest ``clock_mhz``.

    The accelerator's clock is picked by frequency because its name depends on the shell
    (``clk_fpga_0``, ``clk_pl_0``, ``clk_out1_clk_wiz_0``); when the Intra Clock Table has no
    row for it (no paths), the design-wide WNS is used.

    Raises
    ------
    ReportFormatError
        If the Clock Summary or Design Timing Summary is missing or empty.
    """
    clocks = _table(_section(text, "Clock Summary"))
    if not clocks:
        raise ReportFormatError("timing report's Clock Summary lists no clock")
    # Rows: name, {rise fall}, period, frequency; the waveform is two tokens.
    name, period = min(((row[0], float(row[-2])) for row in clocks),
                       key=lambda c: abs(1000.0 / c[1] - clock_mhz))
    design = _table(_section(text, "Design Timing Summary"))
    if not design:
        raise ReportFormatError("timing report's Design Timing Summary has no figures")
    wns = float(design[0][0])
    try:
        intra = _table(_section(text, "Intra Clock Table"))
    except ReportFormatError:
        intra = []
    for row in intra:
        if row[0] == name and row[1] not in ("NA", "inf"):
            wns = float(row[1])
    return Timing(clock=name, period_ns=period, wns_ns=wns)
