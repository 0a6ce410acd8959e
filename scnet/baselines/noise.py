"""Noise-level estimates (the ``sigma`` BM4D needs; also used by the benchmarks)."""
from __future__ import annotations

import numpy as np

from ..errors import SCNetInputError


def estimate_noise_sigma(volume) -> float:
    """Noise standard deviation from the finest 3D Haar detail band (HHH):
    ``median(|d|) / 0.6745`` (Donoho's MAD estimator).

    Exact for white noise.  Tomographic reconstruction noise is coloured (the
    ramp filter, the missing wedge), and then this estimates the noise level of
    the highest frequencies, usually somewhat below the total noise std; give
    ``sigma`` explicitly when a better estimate is at hand (e.g. half the std of
    the difference of even/odd reconstructions).
    """
    v = np.asarray(volume, dtype=np.float64)
    v = v[: v.shape[0] // 2 * 2, : v.shape[1] // 2 * 2, : v.shape[2] // 2 * 2]
    if min(v.shape) < 2:
        raise SCNetInputError(f"Volume too small to estimate the noise level (shape {volume.shape}).")
    d = np.zeros([s // 2 for s in v.shape])
    for a in (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                d += (-1) ** (a + b + c) * v[a::2, b::2, c::2]
    d /= np.sqrt(8.0)
    return float(np.median(np.abs(d)) / 0.6744897501960817)


def estimate_noise_sigma_even_odd(even, odd) -> float:
    """Noise std of the FULL reconstruction from its even/odd half reconstructions:
    the signal cancels in ``even - odd`` and, for ``full ~ (even + odd) / 2`` with
    independent half noises, ``std(full noise) = std(even - odd) / 2``.  Coloured
    noise is fine here (no whiteness assumed); each half's own noise std is
    ``std(even - odd) / sqrt(2)``."""
    e = np.asarray(even, dtype=np.float64)
    o = np.asarray(odd, dtype=np.float64)
    if e.shape != o.shape:
        raise SCNetInputError(f"even {e.shape} and odd {o.shape} reconstructions differ in shape.")
    return float(np.std(e - o) / 2.0)
