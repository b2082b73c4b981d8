"""Resolve a MODEL argument (a zoo name or an ``.onnx`` path) to a model with weights.

Both kinds come back as a :class:`LoadedModel`, so the CLI and the compiler treat them alike;
only the array layout at the boundary differs (zoo models speak NHWC images, an imported ONNX
model speaks its own tensor shapes).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .graph import Model
from .zoo import MODELS, WEIGHT_SEED, build, options_of

__all__ = ["LoadedModel", "ModelSourceError", "load_model", "is_onnx_path", "memory_needed_bytes"]


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


#: Bytes per parameter held while quantizing: the float32 weight and its int64 integer.
_BYTES_PER_PARAM = 4 + 8
#: Bytes per activation value the golden model keeps for every layer (int64, ``keep_all``).
_BYTES_PER_ACTIVATION = 8


def memory_needed_bytes(model) -> tuple[int, str]:
    """Memory that quantizing and running ``model`` in numpy holds at once, and what
    dominates it (for the message).

    The golden model and calibration keep every layer's output of one image; quantizing keeps
    the float and the integer weights. A lower bound: numpy's temporaries come on top.
    """
    weights = model.params * _BYTES_PER_PARAM
    largest = max(model.layers(), key=lambda n: math.prod(model.out_shape(n)))
    values = sum(math.prod(model.out_shape(n)) for n in model.layers())
    activations = (values + math.prod(model.input_shape)) * _BYTES_PER_ACTIVATION
    if weights >= activations:
        why = f"{model.params:,} weights"
    else:
        shape = "x".join(map(str, model.out_shape(largest)))
        why = f"the layers' outputs of one image (the largest, {largest!r}, is {shape})"
    return weights + activations, why


def _physical_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):   # not a POSIX system: no check
        return None


def _gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _check_memory(spec: str, model) -> None:
    have = _physical_memory_bytes()
    need, why = memory_needed_bytes(model)
    if have is not None and need > have:
        raise ModelSourceError(f"{spec} as given needs at least {_gib(need)} of memory for "
                               f"{why}; this machine has {_gib(have)} (use a smaller "
                               f"--resolution, --width or --num-classes)")


def load_model(spec: str, *, weights: bool = True, **options) -> LoadedModel:
    """Load zoo model or ONNX file ``spec``.

    ``options`` are zoo builder options (``width``, ``resolution``, ``groups``,
    ``num_classes``); ``None`` values mean "not given". An ONNX file takes none. With
    ``weights=False`` a zoo model comes without weights (shapes and counts only).

    Raises
    ------
    ModelSourceError
        Unknown zoo name (listing the valid ones), a missing file, options given to a model
        that does not take them, or (with weights) a model too large for this machine's
        memory (with the figures).
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
    model = build(spec, weights=False, **given)
    if weights:
        _check_memory(spec, model)
        model.init_weights(WEIGHT_SEED)
    return LoadedModel(model, "zoo", _zoo_to_hwc(model.input_shape), lambda y: y)
