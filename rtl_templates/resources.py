"""Resource estimates: DSP, BRAM18, LUT and FF counts, and the memory geometry they rest on.

Every PE's ``resources(family)`` returns a :class:`Resources`; the compiler adds them up against
the board's budget. The block-RAM model knows the aspect ratios a primitive can take, including
the power-of-two depths that regression-based estimators miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from enum import Enum

__all__ = ["Resources", "RESOURCE_FIELDS", "DeviceFamily", "FAMILIES", "family", "bram18_count",
           "uram_count", "URAM_WIDTH", "URAM_DEPTH", "lutram_luts", "mux_luts", "memory_resources",
           "MemoryStyle"]


@dataclass(frozen=True)
class Resources:
    """Counts of the resources a dataflow design runs out of (``uram``: UltraScale+ URAM288
    blocks, 0 on every other family)."""

    dsp: int = 0
    bram18: int = 0
    lut: int = 0
    ff: int = 0
    uram: int = 0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{f.name} must be a non-negative int, not {value!r}")

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __sub__(self, other: "Resources") -> "Resources":
        return Resources(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def scaled(self, n: int) -> "Resources":
        return Resources(*(getattr(self, f.name) * n for f in fields(self)))


#: The :class:`Resources` fields, in report order.
RESOURCE_FIELDS: tuple[str, ...] = ("dsp", "bram18", "lut", "ff", "uram")


@dataclass(frozen=True)
class DeviceFamily:
    """What the estimators need to know about an FPGA family.

    Attributes
    ----------
    name : str
    bram_aspects : tuple of (width, depth)
        Simple-dual-port shapes of one 18 Kb block RAM (parity bits count at widths 9/18/36).
    dsp_widths : (int, int)
        Signed multiplier operand widths of one DSP slice.
    lutram_bits : int
        Bits one LUT holds as distributed RAM (a 64x1 LUT6).
    mux_inputs : int
        Data inputs of the widest multiplexer one LUT makes with its selects (4 for a LUT6).
    rom_tree_words : int
        Words of a ROM in logic that one output bit reads through the slice's own
        multiplexers, without a LUT of multiplexing: 64, one LUT6 (the Xilinx flow here maps
        no MUXF7/F8), or four LUT4s with a PFUMX and an L6MUX21 on ECP5.
    has_uram : bool
        The family has URAM288 blocks (UltraScale+; a device may still have none).
    """

    name: str
    bram_aspects: tuple[tuple[int, int], ...]
    dsp_widths: tuple[int, int]
    lutram_bits: int = 64
    mux_inputs: int = 4
    rom_tree_words: int = 64
    has_uram: bool = False


_XILINX_BRAM18 = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))

FAMILIES = {
    "7series": DeviceFamily("7series", _XILINX_BRAM18, (25, 18)),
    "ultrascale": DeviceFamily("ultrascale", _XILINX_BRAM18, (27, 18), has_uram=True),
    # ECP5: one EBR is 18 Kb with the same shapes; MULT18X18D; LUT4 distributed RAM is 16x1.
    "ecp5": DeviceFamily("ecp5", _XILINX_BRAM18, (18, 18), lutram_bits=16, mux_inputs=2),
}


def family(name: str | DeviceFamily) -> DeviceFamily:
    """Look up a family by name (or pass one through)."""
    if isinstance(name, DeviceFamily):
        return name
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown device family {name!r}; known: {', '.join(FAMILIES)}") from None


def bram18_count(width: int, depth: int, fam: str | DeviceFamily = "7series") -> int:
    """Fewest 18 Kb block RAMs holding a ``depth`` x ``width`` memory.

    Each primitive takes one aspect ratio; the memory is tiled from copies of the best one.
    """
    if width < 1 or depth < 1:
        raise ValueError(f"memory must be at least 1x1, not {depth}x{width}")
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in family(fam).bram_aspects)


#: One URAM288 block: 4,096 words of 72 bits, one shape only (UG573).
URAM_WIDTH, URAM_DEPTH = 72, 4096


def uram_count(width: int, depth: int) -> int:
    """URAM288 blocks holding a ``depth`` x ``width`` memory: ``ceil(width / 72)`` side by side
    per 4,096 words (deeper memories are banks of 4,096 words, :mod:`rtl_templates.weight_load`).
    yosys (``synth_xilinx -family xcup``) maps a ``ram_style = "ultra"`` memory so."""
    if width < 1 or depth < 1:
        raise ValueError(f"memory must be at least 1x1, not {depth}x{width}")
    return math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


def lutram_luts(width: int, depth: int, fam: str | DeviceFamily = "7series") -> int:
    """LUTs a ``depth`` x ``width`` memory takes as distributed RAM or ROM."""
    return width * math.ceil(depth / family(fam).lutram_bits)


def mux_luts(inputs: int, fam: str | DeviceFamily = "7series") -> int:
    """LUTs of an ``inputs``-to-1 multiplexer of one bit: a tree of ``mux_inputs``-to-1 LUTs."""
    return math.ceil((inputs - 1) / (family(fam).mux_inputs - 1)) if inputs > 1 else 0


# Below this many bits yosys (and Vivado) keep a memory in LUTs rather than a block RAM.
BRAM_THRESHOLD_BITS = 4096


class MemoryStyle(Enum):
    """Where a memory goes: ``AUTO`` as the tools would map it by size (block RAM from
    :data:`BRAM_THRESHOLD_BITS` up), or forced to ``BLOCK`` RAM, ``LUT`` (distributed) RAM or
    ``ULTRA`` RAM (URAM288; it has no initial contents, so a weight memory there is written
    through the weight-load path, :mod:`rtl_templates.weight_load`), or ``DDR``: not on chip,
    read from off-chip memory every frame (:mod:`rtl_templates.axi4_reader`)."""

    AUTO = "auto"
    BLOCK = "block"
    LUT = "distributed"
    ULTRA = "ultra"
    DDR = "ddr"

    def is_block(self, width: int, depth: int) -> bool:
        if self is MemoryStyle.AUTO:
            return width * depth >= BRAM_THRESHOLD_BITS
        return self is MemoryStyle.BLOCK


def memory_resources(width: int, depth: int, fam: str | DeviceFamily = "7series",
                     style: MemoryStyle = MemoryStyle.AUTO) -> Resources:
    """A ROM or RAM of ``depth`` words of ``width`` bits, mapped as ``style`` says."""
    if style is MemoryStyle.DDR:
        return Resources()
    if style is MemoryStyle.ULTRA:
        if not family(fam).has_uram:
            raise ValueError(f"the {family(fam).name} family has no URAM")
        return Resources(uram=uram_count(width, depth))
    if not style.is_block(width, depth):
        return Resources(lut=lutram_luts(width, depth, fam))
    return Resources(bram18=bram18_count(width, depth, fam))
