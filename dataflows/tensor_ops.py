"""Vectorised tensor kernels shared by the float and the integer golden models.

All kernels work on one (H, W, C) feature map and are dtype-agnostic: the float model calls
them on ``float32`` data; the integer model calls them on ``float64`` arrays holding integers.
A float64 sum of integer products is exact while every partial sum stays below 2**53, which
int8 x int8 convolutions never approach (|acc| < 2**14 * K with K ≤ 2**20 taps), and it runs
on BLAS, where a numpy int64 matmul does not. :func:`exact_int` converts back and checks.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import window_output_size

__all__ = ["pad_hw", "windows", "conv2d", "linear", "max_pool", "sum_pool", "pool_counts",
           "channel_shuffle", "exact_int"]

EXACT_LIMIT = 2.0 ** 53


def pad_hw(x: np.ndarray, padding, value=0) -> np.ndarray:
    """Pad H (top, bottom) and W (left, right) of an (H, W, C) map with ``value``."""
    pt, pl, pb, pr = padding
    if not any(padding):
        return x
    return np.pad(x, ((pt, pb), (pl, pr), (0, 0)), constant_values=value)


def windows(x: np.ndarray, kernel, stride, padding, ceil_mode=False, pad_value=0) -> np.ndarray:
    """All KxK windows of ``x`` as a (Ho, Wo, kh, kw, C) strided view (no copy).

    With ``ceil_mode`` the input is padded further at the bottom and right so the last,
    partial windows exist; that extra padding also holds ``pad_value``.
    """
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, padding
    h, w, _ = x.shape
    ho = window_output_size(h, kh, sh, pt, pb, ceil_mode)
    wo = window_output_size(w, kw, sw, pl, pr, ceil_mode)
    extra_b = max(0, (ho - 1) * sh + kh - (h + pt + pb))
    extra_r = max(0, (wo - 1) * sw + kw - (w + pl + pr))
    xp = pad_hw(x, (pt, pl, pb + extra_b, pr + extra_r), pad_value)
    view = sliding_window_view(xp, (kh, kw), axis=(0, 1))  # (H', W', C, kh, kw)
    view = view[: (ho - 1) * sh + 1: sh, : (wo - 1) * sw + 1: sw]
    return view.transpose(0, 1, 3, 4, 2)


def conv2d(x: np.ndarray, weight: np.ndarray, stride=(1, 1), padding=(0, 0, 0, 0),
           groups: int = 1) -> np.ndarray:
    """Grouped 2-D convolution without bias: (H, W, Cin) x (O, kh, kw, Cin/g) -> (Ho, Wo, O)."""
    out_c, kh, kw, cg = weight.shape
    win = windows(x, (kh, kw), stride, padding)
    ho, wo = win.shape[:2]
    if groups == 1:
        cols = np.ascontiguousarray(win).reshape(ho * wo, kh * kw * cg)
        return (cols @ weight.reshape(out_c, -1).T).reshape(ho, wo, out_c)
    og = out_c // groups
    if cg == 1 and og == 1:
        # Depthwise: a multiply-add per kernel tap beats an im2col of mostly zeros.
        acc = np.zeros((ho, wo, out_c), dtype=np.result_type(x, weight))
        for i in range(kh):
            for j in range(kw):
                acc += win[:, :, i, j, :] * weight[:, i, j, 0]
        return acc
    out = np.empty((ho, wo, out_c), dtype=np.result_type(x, weight))
    for g in range(groups):
        cols = np.ascontiguousarray(win[..., g * cg:(g + 1) * cg]).reshape(ho * wo, kh * kw * cg)
        wg = weight[g * og:(g + 1) * og].reshape(og, -1)
        out[..., g * og:(g + 1) * og] = (cols @ wg.T).reshape(ho, wo, og)
    return out


def linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Fully connected layer without bias on a (1, 1, C) map."""
    return (weight @ x.reshape(-1)).reshape(1, 1, -1)


def max_pool(x: np.ndarray, kernel, stride, padding, ceil_mode=False) -> np.ndarray:
    """Max over each window; padding never wins (it holds the dtype's lowest value)."""
    low = np.finfo(x.dtype).min if np.issubdtype(x.dtype, np.floating) else np.iinfo(x.dtype).min
    return windows(x, kernel, stride, padding, ceil_mode, pad_value=low).max(axis=(2, 3))


def sum_pool(x: np.ndarray, kernel, stride, padding, ceil_mode=False) -> np.ndarray:
    """Sum over each window, padding counting as zero."""
    return windows(x, kernel, stride, padding, ceil_mode).sum(axis=(2, 3))


def pool_counts(shape, kernel, stride, padding, ceil_mode=False,
                count_include_pad=True) -> np.ndarray:
    """Divisor of each average-pool output position, as an (Ho, Wo) int array.

    ``count_include_pad`` counts the declared padding but never the extra ceil-mode overhang
    (PyTorch's and ONNX's rule); otherwise only real input pixels count.
    """
    def axis(size, k, s, before, after):
        n = window_output_size(size, k, s, before, after, ceil_mode)
        start = np.arange(n) * s - before
        if count_include_pad:
            return np.minimum(start + k, size + after) - start
        return np.minimum(start + k, size) - np.maximum(start, 0)

    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, padding
    rows = axis(shape[0], kh, sh, pt, pb)
    cols = axis(shape[1], kw, sw, pl, pr)
    return np.outer(rows, cols).astype(np.int64)


def channel_shuffle(x: np.ndarray, groups: int) -> np.ndarray:
    """View C as (groups, C/groups), transpose, flatten (ShuffleNet)."""
    h, w, c = x.shape
    return x.reshape(h, w, groups, c // groups).transpose(0, 1, 3, 2).reshape(h, w, c)


def exact_int(x: np.ndarray) -> np.ndarray:
    """Convert a float64 array of integers computed by the kernels above to int64.

    Raises
    ------
    OverflowError
        If a value is beyond 2**53, where float64 stops being exact.
    """
    if x.size and np.abs(x).max() >= EXACT_LIMIT:
        raise OverflowError("integer accumulation exceeds 2**53; float64 kernels are not exact")
    return np.rint(x).astype(np.int64)
