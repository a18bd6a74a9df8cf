"""Bilinear resizing of a stack of grey images in pure numpy (two small matrix products).

Why not torch/scipy: the emulator and the digits loader stay pure numpy, and a separable
interpolation matrix makes the result exact and identical on every platform.
"""

from __future__ import annotations

import numpy as np


def _interp_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of linear interpolation at pixel centres (``align_corners=False``)."""
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(m, (np.arange(n_out), hi), frac)
    return m


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """``[N, H, W]`` -> ``[N, size, size]`` float64, bilinear at pixel centres."""
    rows = _interp_matrix(images.shape[1], size)
    cols = _interp_matrix(images.shape[2], size)
    return np.einsum("oh,nhw,pw->nop", rows, images.astype(np.float64), cols)
