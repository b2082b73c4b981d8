"""The ECP5-85F board (ULX3S) through the open flow: Amaranth's LatticePlatform with yosys,
nextpnr-ecp5 and ecppack from PyPI (yowasp)."""

from .flow import Ecp5Flow

__all__ = ["Ecp5Flow"]
