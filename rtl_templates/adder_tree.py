"""Adder tree: a balanced sum with a register after every level.

One adder between registers: two in series were four to five LUT levels on 7-series, where
200 MHz allows four (docs/timing.md). Used by the matrix-vector unit for its ``simd``
products and by the sliding window for its read addresses.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Signal, signed

__all__ = ["adder_tree", "adder_tree_stages", "adder_tree_register_bits"]


def _tree_widths(widths: list[int], width: int) -> list[list[int]]:
    """Per level of a balanced adder tree, the widths of its terms (the inputs' first)."""
    levels = [list(widths)]
    while len(widths) > 1:
        nxt = [min(width, max(widths[j], widths[j + 1]) + 1) for j in range(0, len(widths) - 1, 2)]
        widths = nxt + ([widths[-1]] if len(widths) % 2 else [])
        levels.append(widths)
    return levels


def adder_tree_stages(count: int) -> int:
    """Register stages of :func:`adder_tree` over ``count`` terms: one per level, at least
    one."""
    return max(1, math.ceil(math.log2(count)))


def adder_tree_register_bits(count: int, bits: int, width: int) -> int:
    """Flip-flops of :func:`adder_tree` over ``count`` terms of ``bits`` bits."""
    levels = _tree_widths([bits] * count, width)
    return sum(sum(level) for level in levels[1:]) if count > 1 else bits


def adder_tree(m: Module, terms: list, width: int, name: str, en) -> Signal:
    """Balanced sum of ``terms`` as a signed ``width``-bit signal, with a register after
    every level (:func:`adder_tree_stages` of them; clock enable ``en``).

    Each level is only as wide as its sums can get
    (one bit more than the level below, up to ``width``): the same values, with about a third
    fewer bits to elaborate, simulate and register than at the accumulator's width.
    """
    if len(terms) == 1:
        out = Signal(signed(width), name=f"{name}_l0_0")
        with m.If(en):
            m.d.sync += out.eq(terms[0])
        return out
    level = 0
    while len(terms) > 1:
        nxt = []
        for j in range(0, len(terms) - 1, 2):
            bits = min(width, max(len(terms[j]), len(terms[j + 1])) + 1)
            s = Signal(signed(bits), name=f"{name}_l{level}_{j // 2}")
            with m.If(en):
                m.d.sync += s.eq(terms[j] + terms[j + 1])
            nxt.append(s)
        if len(terms) % 2:   # the odd term waits a level
            s = Signal(signed(len(terms[-1])), name=f"{name}_l{level}_{len(terms) // 2}")
            with m.If(en):
                m.d.sync += s.eq(terms[-1])
            nxt.append(s)
        terms, level = nxt, level + 1
    return terms[0]
