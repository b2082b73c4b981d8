"""The Amaranth component library of streaming processing elements.

Every PE is a ``wiring.Component`` with ``lib.stream`` ports (see docs/streams.md) and carries,
side by side with its RTL, its numpy behaviour (calling :mod:`dataflows.numerics`), its exact
cycle model and its resource model.
"""
