"""Model zoo: one builder per family, looked up by name.

Every builder returns a :class:`~dataflows.graph.Model` without weights; :func:`build` gives it
seeded random weights (nothing can be downloaded), so the same name and options always give
the same network.

Builders take keyword options only, from this set: ``width`` (width multiplier α or the
ShuffleNet scale), ``resolution`` (input H = W), ``groups`` (ShuffleNet V1 group count) and
``num_classes``. An option a builder does not take is an error, not silently ignored.
"""

from __future__ import annotations

import inspect
from typing import Callable

from ..graph import Model
from .efficientnet import efficientnet_b0
from .mobilenet import mobilenet_v1, mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small
from .shufflenet import shufflenet_v1, shufflenet_v2
from .squeezenet import squeezenet1_0, squeezenet1_1

__all__ = ["MODELS", "ZooError", "build", "options_of"]

WEIGHT_SEED = 2016

MODELS: dict[str, Callable[..., Model]] = {
    "squeezenet": squeezenet1_0,
    "squeezenet1_1": squeezenet1_1,
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_small": mobilenet_v3_small,
    "mobilenet_v3_large": mobilenet_v3_large,
    "shufflenet_v1": shufflenet_v1,
    "shufflenet_v2": shufflenet_v2,
    "efficientnet_b0": efficientnet_b0,
}


class ZooError(ValueError):
    """Unknown model name or an option the model does not take."""


def options_of(name: str) -> dict[str, object]:
    """The options model ``name`` takes, with their defaults."""
    if name not in MODELS:
        raise ZooError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return {p.name: p.default for p in inspect.signature(MODELS[name]).parameters.values()}


def build(name: str, *, seed: int = WEIGHT_SEED, weights: bool = True, **options) -> Model:
    """Build zoo model ``name`` with ``options``; options left as ``None`` take their default.

    Raises
    ------
    ZooError
        If ``name`` is unknown or an option is not one the model takes; the message lists the
        valid names.
    ValueError
        If an option value is invalid (the builder's message names it).
    """
    valid = options_of(name)
    given = {k: v for k, v in options.items() if v is not None}
    for key in given:
        if key not in valid:
            takes = ", ".join(valid) or "no options"
            raise ZooError(f"model {name!r} does not take option {key!r}; it takes: {takes}")
    model = MODELS[name](**given)
    return model.init_weights(seed) if weights else model
