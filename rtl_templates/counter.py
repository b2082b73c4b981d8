"""A wrapping counter whose "first" and "last" are registers.

A counter written ``q.eq(Mux(q == limit - 1, 0, q + 1))`` puts its compare and a mux after the
increment's carry chain: on UltraScale+ at 250 MHz (three LUT levels, docs/timing.md) a 12-bit
weight address measured 3.15 levels. Here the flags are computed a cycle ahead, from the value
before the step, and the wrap to zero is a synchronous reset of the value's flip-flops, so the
increment feeds the flip-flops directly and whatever tests the position reads one register.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module, Mux, ResetSignal, Signal, Value

__all__ = ["Counter", "wrapping_counter"]


@dataclass(frozen=True)
class Counter:
    """The registers of one :func:`wrapping_counter`.

    Attributes
    ----------
    value : Signal
        ``0 .. limit - 1``.
    first : Signal
        ``value == 0``.
    last : Signal
        ``value == limit - 1``.
    """

    value: Signal
    first: Signal
    last: Signal


def wrapping_counter(m: Module, name: str, limit: int, step: Value) -> Counter:
    """Count ``0 .. limit - 1`` and wrap, one step per cycle in which ``step`` is high.

    Parameters
    ----------
    m : Module
        The module the counter's registers are added to (its ``sync`` domain).
    name : str
        Prefix of the registers' names (``{name}``, ``{name}_first``, ``{name}_last``).
    limit : int
        Positions counted, at least 1.
    step : Value
        The enable.

    Raises
    ------
    ValueError
        If ``limit`` is not a positive int.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive int, not {limit!r}")
    # The value's wrap and the domain's reset both clear it: written as one condition on a
    # reset-less register, yosys maps it to the flip-flops' synchronous reset (two separate
    # resets would leave one as a mux after the increment).
    value = Signal(range(max(limit, 2)), name=name, reset_less=True)
    first = Signal(init=1, name=f"{name}_first")
    last = Signal(init=int(limit == 1), name=f"{name}_last")
    with m.If(ResetSignal() | (step & last)):
        m.d.sync += value.eq(0)
    with m.Elif(step):
        m.d.sync += value.eq(value + 1)
    with m.If(step):
        m.d.sync += [first.eq(last), last.eq(Mux(last, limit == 1, value == limit - 2))]
    return Counter(value, first, last)
