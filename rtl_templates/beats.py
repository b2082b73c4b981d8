"""Frames to beats and back: the stream order of docs/streams.md as numpy.

The behaviour models and the testbenches both use these, so the order is defined once
(:func:`frame_to_beats` lives with the host programs' framing, which must stand alone).
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from boards.host.frames import frame_to_beats
from dataflows import tensor_ops

__all__ = ["frame_to_beats", "beats_to_frame", "WindowOrder", "window_beats"]


def _check_fold(channels: int, lanes: int) -> None:
    if lanes < 1 or channels % lanes:
        raise ValueError(f"{channels} channels do not fold into beats of {lanes} lanes")


def beats_to_frame(beats: np.ndarray, shape) -> np.ndarray:
    """Inverse of :func:`frame_to_beats` for one frame of ``shape`` (H, W, C)."""
    return np.asarray(beats, dtype=np.int64).reshape(tuple(shape))


class WindowOrder(Enum):
    """Order in which a sliding window emits the taps of one output pixel.

    ``TAP_MAJOR``: for ky, for kx, for channel groups — the flattening of an OHWI weight row, what
    a :class:`MatrixVectorUnit` consumes. ``CHANNEL_MAJOR``: for channel groups, for ky, for kx —
    each group's K*K taps back to back, what a depthwise unit or a pool consumes.
    """

    TAP_MAJOR = "tap_major"
    CHANNEL_MAJOR = "channel_major"


def window_beats(frame: np.ndarray, kernel, stride, padding, lanes: int,
                 order: WindowOrder = WindowOrder.TAP_MAJOR, ceil_mode: bool = False,
                 pad_value: int = 0, kx_lanes: int = 1) -> np.ndarray:
    """Every output pixel's KxK window of ``frame`` as beats of ``lanes`` channels.

    Returns an (Ho*Wo*kh*kw*C/lanes, lanes) int64 array, output pixels row-major. With
    ``kx_lanes > 1`` (``lanes == C``, ``TAP_MAJOR``), a beat holds ``kx_lanes`` horizontally
    neighbouring taps, pixel-major: (Ho*Wo*kh*kw/kx_lanes, kx_lanes*C).
    """
    frame = np.asarray(frame, dtype=np.int64)
    _check_fold(frame.shape[-1], lanes)
    win = tensor_ops.windows(frame, kernel, stride, padding, ceil_mode, pad_value)
    ho, wo, kh, kw, c = win.shape
    win = win.reshape(ho, wo, kh, kw, c // lanes, lanes)
    if order is WindowOrder.CHANNEL_MAJOR:
        win = win.transpose(0, 1, 4, 2, 3, 5)
    if kx_lanes != 1:
        if lanes != c or order is not WindowOrder.TAP_MAJOR or kw % kx_lanes:
            raise ValueError(f"kx_lanes {kx_lanes!r} needs lanes == channels ({c}), TAP_MAJOR "
                             f"order and a kernel width ({kw}) it divides")
        lanes *= kx_lanes
    return np.ascontiguousarray(win).reshape(-1, lanes)
