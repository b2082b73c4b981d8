"""EcpPll: an ECP5 EHXPLLL making the accelerator's clock from a board oscillator.

The output is ``f_in * CLKFB_DIV / CLKI_DIV`` with the feedback taken from CLKOP, the VCO runs
at ``f_out * CLKOP_DIV``. The ranges are the ECP5 family data sheet's (FPGA-DS-02012, "sysCLOCK
PLL Timing"): VCO 400-800 MHz, phase detector input 3.125-400 MHz, output 3.125-400 MHz, and
the divider ranges of the EHXPLLL primitive (FPGA-TN-02200, "ECP5 sysCLOCK PLL/DLL Design and
Usage Guide").
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Elaboratable, Instance, Module, Signal

__all__ = ["PllSettings", "pll_settings", "EcpPll"]

_VCO_MHZ = (400.0, 800.0)
_PFD_MHZ = (3.125, 400.0)
_OUT_MHZ = (3.125, 400.0)
_CLKI_DIV = range(1, 129)
_CLKFB_DIV = range(1, 81)
_CLKOP_DIV = range(1, 129)


@dataclass(frozen=True)
class PllSettings:
    """Divider settings and the frequencies they give (MHz)."""

    clki_div: int
    clkfb_div: int
    clkop_div: int
    input_mhz: float

    @property
    def output_mhz(self) -> float:
        return self.input_mhz * self.clkfb_div / self.clki_div

    @property
    def vco_mhz(self) -> float:
        return self.output_mhz * self.clkop_div


def pll_settings(input_mhz: float, target_mhz: float) -> PllSettings:
    """The settings whose output is closest to ``target_mhz`` without exceeding it (a clock
    above the timing constraint would void it), VCO nearest the middle of its range on ties.

    Raises
    ------
    ValueError
        If the target is outside the PLL's output range or no setting reaches within 5% of it.
    """
    if not _OUT_MHZ[0] <= target_mhz <= _OUT_MHZ[1]:
        raise ValueError(f"an ECP5 PLL makes {_OUT_MHZ[0]:g}-{_OUT_MHZ[1]:g} MHz, "
                         f"not {target_mhz!r} MHz")
    best = None
    for clki in _CLKI_DIV:
        pfd = input_mhz / clki
        if not _PFD_MHZ[0] <= pfd <= _PFD_MHZ[1]:
            continue
        for fb in _CLKFB_DIV:
            out = pfd * fb
            if out > target_mhz * (1 + 1e-9):
                break
            for op in _CLKOP_DIV:
                vco = out * op
                if vco > _VCO_MHZ[1]:
                    break
                if vco >= _VCO_MHZ[0]:
                    key = (target_mhz - out, abs(vco - 600.0))
                    if best is None or key < best[0]:
                        best = (key, PllSettings(clki, fb, op, input_mhz))
    if best is None or best[1].output_mhz < 0.95 * target_mhz:
        raise ValueError(f"no ECP5 PLL setting makes {target_mhz:g} MHz from {input_mhz:g} MHz")
    return best[1]


class EcpPll(Elaboratable):
    """One EHXPLLL, CLKOP fed back to itself.

    Parameters
    ----------
    settings : PllSettings

    Attributes
    ----------
    clk_in : Signal, in
        The oscillator.
    clk_out : Signal, out
        ``settings.output_mhz``.
    locked : Signal, out
    """

    def __init__(self, settings: PllSettings):
        if not isinstance(settings, PllSettings):
            raise TypeError(f"settings must be PllSettings, not {settings!r}")
        self.settings = settings
        self.clk_in = Signal()
        self.clk_out = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        s = self.settings
        m = Module()
        m.submodules.pll = Instance(
            "EHXPLLL",
            # Frequencies for nextpnr's timing analysis, loop-filter values as the PLL tools
            # write them for an integer-N loop.
            a_FREQUENCY_PIN_CLKI=f"{s.input_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{s.output_mhz:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA",
            p_CLKI_DIV=s.clki_div, p_CLKFB_DIV=s.clkfb_div, p_FEEDBK_PATH="CLKOP",
            p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=s.clkop_div,
            p_CLKOP_CPHASE=s.clkop_div - 1, p_CLKOP_FPHASE=0,
            i_CLKI=self.clk_in, i_CLKFB=self.clk_out, o_CLKOP=self.clk_out, o_LOCK=self.locked,
            i_RST=0, i_STDBY=0, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1,
            i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0)
        return m
