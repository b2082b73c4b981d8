"""Resolve a MODEL argument (a zoo name or an ``.onnx`` path) to a model with weights.

Both kinds come back as a :class:`LoadedModel`, so the CLI and the compiler treat them alike;
only the array layout at the boundary differs (zoo models speak NHWC images, an imported ONNX
model speaks its own tensor shapes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .graph import Model
from .zoo import MODELS, build, options_of

__all__ = ["LoadedModel", "ModelSourceError", "load_model", "is_onnx_path"]


class ModelSourceError(ValueError):
    """The MODEL argument names nothing loadable, or options do not apply to it."""


@dataclass
class LoadedModel:
    """A model with weights plus the layout adapters of its outer arrays.

    Attributes
    ----------
    model : Model
        The graph with float weights.
    origin : str
        ``"zoo"`` or ``"onnx"``.
    to_hwc : callable
        Turns a user input array (NHWC image for zoo, the ONNX input layout for ONNX) into
        the (H, W, C) image the executors take.
    from_hwc : callable
        Turns the (1, 1, K) or (H, W, C) output back into the user's layout.
    """

    model: Model
    origin: str
    to_hwc: Callable[[np.ndarray], np.ndarray]
    from_hwc: Callable[[np.ndarray], np.ndarray]


def _flag(option: str) -> str:
    return "--" + option.replace("_", "-")


def is_onnx_path(spec: str) -> bool:
    return spec.lower().endswith(".onnx")


def _zoo_to_hwc(shape):
    def to_hwc(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.shape != tuple(shape):
            raise ModelSourceError(f"input array has shape {x.shape}; the model takes "
                                   f"{tuple(shape)} (H, W, C) or (1, H, W, C)")
        return x
    return to_hwc


def load_model(spec: str, **options) -> LoadedModel:
    """Load zoo model or ONNX file ``spec``.

    ``options`` are zoo builder options (``width``, ``resolution``, ``groups``,
    ``num_classes``); ``None`` values mean "not given". An ONNX file takes none.

    Raises
    ------
    ModelSourceError
        Unknown zoo name (listing the valid ones), a missing file, or options given to a model
        that does not take them.
    """
    given = {k: v for k, v in options.items() if v is not None}
    if is_onnx_path(spec):
        if given:
            raise ModelSourceError(f"options {', '.join(_flag(k) for k in given)} "
                                   f"apply to zoo models only, not to ONNX file {spec!r}")
        if not Path(spec).is_file():
            raise ModelSourceError(f"ONNX file {spec!r} does not exist")
        from .onnx_import import import_onnx  # onnx is heavy; import only when needed
        imported = import_onnx(spec)
        return LoadedModel(imported.model, "onnx", imported.to_hwc, imported.from_hwc)
    if spec not in MODELS:
        raise ModelSourceError(f"unknown model {spec!r}; valid models: {', '.join(MODELS)}, "
                               f"or a path to an .onnx file")
    takes = options_of(spec)
    for key in given:
        if key not in takes:
            valid = ", ".join(_flag(k) for k in takes) or "no options"
            raise ModelSourceError(f"model {spec!r} does not take {_flag(key)}; it takes: {valid}")
    model = build(spec, **given)
    return LoadedModel(model, "zoo", _zoo_to_hwc(model.input_shape), lambda y: y)
