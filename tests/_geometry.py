"""Test-only geometry helper: analytic projections of Gaussian blobs (pins the handedness of scnet.recon)."""
from typing import Sequence, Tuple

import numpy as np


def analytic_projection_points(points: Sequence[Tuple[float, float, float, float]], angle: float, ny: int, nx: int,
                               sigma: float = 1.5) -> np.ndarray:
    """Analytic projection of Gaussian blobs ``(z, y, x, amplitude)`` (centred coords) at ``angle``.

    A 3D Gaussian of std ``sigma`` and peak ``a`` projects to a 2D Gaussian of
    the same std and peak ``a*sqrt(2 pi)*sigma``.  Used by the tests to pin the
    handedness.
    """
    th = np.deg2rad(angle)
    ys = np.arange(ny) - (ny - 1) / 2
    xs = np.arange(nx) - (nx - 1) / 2
    img = np.zeros((ny, nx))
    for (z, y, x, a) in points:
        xp = x * np.cos(th) + z * np.sin(th)
        img += a * np.sqrt(2 * np.pi) * sigma * np.exp(
            -((ys[:, None] - y) ** 2 + (xs[None, :] - xp) ** 2) / (2 * sigma ** 2))
    return img
