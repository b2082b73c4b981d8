"""On-chip memory bounds a model must meet before any work is spent on it.

Quantizing a model calibrates it on images, which at a large resolution takes minutes; only
then would the partitioner find that one layer cannot fit the board. Two bounds need nothing
but the graph's shapes and say it at once:

* a windowed layer (conv, depthwise conv or pool with a window over one pixel) buffers at least
  ``K`` rows of its input, ``K * W * C`` values (the line buffer holds ``K + stride`` rows or
  more, :class:`rtl_templates.sliding_window.SlidingWindow`);
* a layer's weights are stored on chip whole, except that a dense conv or FC can be split by
  output channels across partitions (:func:`hwgen.compile.partition`): it needs one output
  channel's weights on chip.

Each must fit the board's memory budget counted generously, every block RAM bit plus 64 bits
per LUT (a LUT RAM's densest form), so the check never refuses a design that could be built.
"""

from __future__ import annotations

import math

from dataflows import layers as L

from .fold import FitError

__all__ = ["LayerMemoryError", "BRAM18_BITS", "LUTRAM_BITS_PER_LUT", "check_layers_fit",
           "memory_budget_bits"]

BRAM18_BITS = 18 * 1024
LUTRAM_BITS_PER_LUT = 64


class LayerMemoryError(FitError):
    """One layer needs more memory than the board's whole budget holds.

    Attributes
    ----------
    layer : str
    needed_bits, budget_bits : int
    """

    def __init__(self, layer: str, what: str, needed_bits: int, budget_bits: int):
        self.layer, self.needed_bits, self.budget_bits = layer, needed_bits, budget_bits
        super().__init__(f"layer {layer!r} needs at least {_mbit(needed_bits)} of on-chip memory "
                         f"for {what}; the whole budget holds at most {_mbit(budget_bits)} "
                         f"(block RAM and LUT RAM; over {needed_bits / budget_bits:,.1f} times)")


def _mbit(bits: int) -> str:
    return f"{bits / 1e6:,.1f} Mbit"


def memory_budget_bits(board) -> int:
    """Every bit of block RAM and LUT RAM in ``board``'s budget (an upper bound)."""
    budget = board.budget()
    return budget.bram18 * BRAM18_BITS + budget.lut * LUTRAM_BITS_PER_LUT


def _splittable(layer) -> bool:
    """A dense conv or FC: split by output channels if it does not fit (see
    :func:`hwgen.compile.splittable`, the same rule on the lowered stage)."""
    return isinstance(layer, L.Linear) or (isinstance(layer, L.Conv2d) and layer.groups == 1)


def _window(layer) -> int:
    if isinstance(layer, (L.Conv2d, L.MaxPool, L.AvgPool)):
        return max(layer.kernel)
    return 1


def check_layers_fit(model, board, *, abits: int, wbits: int) -> None:
    """Raise :class:`LayerMemoryError` for the first layer of ``model`` whose line buffer or
    weights alone exceed ``board``'s memory budget. Needs shapes only (no weights)."""
    capacity = memory_budget_bits(board)
    for name in model.layers():
        layer = model.layer(name)
        ins = model.input_shapes(name)
        k = _window(layer)
        if k > 1:
            x = ins[0]
            rows = k * x.w * x.c * abits
            if rows > capacity:
                raise LayerMemoryError(name, f"its line buffer ({k} rows of {x.w}x{x.c} "
                                       f"{abits}-bit values)", rows, capacity)
        shape = layer.weight_shape(ins)
        if shape is None:
            continue
        if _splittable(layer):
            per_channel = math.prod(shape[1:])
            bits = per_channel * wbits
            if bits > capacity:
                raise LayerMemoryError(name, f"the {per_channel:,} {wbits}-bit weights of one "
                                       "output channel (the least a partition of it holds)",
                                       bits, capacity)
            continue
        bits = math.prod(shape) * wbits
        if bits > capacity:
            raise LayerMemoryError(name, f"its {math.prod(shape):,} {wbits}-bit weights",
                                   bits, capacity)
