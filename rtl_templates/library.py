"""The Verilog modules a whole design instantiates beside its stages: the ROM and RAM blocks
(:data:`rtl_templates.rom.ROM_VERILOG`) and one multiplier module per shape used
(:func:`rtl_templates.multiplier.multiplier_verilog`)."""

from __future__ import annotations

from .multiplier import multiplier_verilog
from .rom import ROM_VERILOG, RomFiles

__all__ = ["library_verilog"]


def library_verilog(collected: RomFiles) -> str:
    """The modules the stages elaborated into ``collected`` (inside
    :func:`rtl_templates.rom.external_roms`) instantiate, in a deterministic order."""
    if not isinstance(collected, RomFiles):
        raise TypeError(f"collected must be RomFiles, not {collected!r}")
    return ROM_VERILOG + "".join(multiplier_verilog(*shape)
                                 for shape in sorted(collected.multipliers))
