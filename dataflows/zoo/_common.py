"""Argument checks and small helpers every zoo family shares."""

from __future__ import annotations

import math

__all__ = ["check_common", "check_width", "make_divisible"]


def _is_int(value) -> bool:
    # bool is an int subclass; True as a resolution is a caller's mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def check_common(resolution, num_classes) -> None:
    """Validate the options every builder takes."""
    if not _is_int(resolution) or resolution < 32:
        raise ValueError(f"resolution must be an int >= 32, not {resolution!r}")
    if not _is_int(num_classes) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, not {num_classes!r}")


def check_width(width) -> None:
    if (not isinstance(width, (int, float)) or isinstance(width, bool)
            or not math.isfinite(width) or width <= 0):
        raise ValueError(f"width must be a positive finite number, not {width!r}")


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: ``value`` rounded to a multiple of ``divisor``.

    The result is at least ``divisor`` and, so rounding never loses much width, at most 10%
    below ``value`` (72 // 4 = 18 gives 24, not 16).
    """
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new
