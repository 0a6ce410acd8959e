"""One tomogram, two noise-independent parts: its even and its odd rows along the tilt axis (``split`` mode).

Why the tilt axis.  A single-axis reconstruction is computed slice by slice: the slice at row ``y``
(the tilt axis is Y, :mod:`scnet.recon`) comes from row ``y`` of every tilt image and from nothing
else.  Noise of the detector pixels is independent between rows, so the reconstructed noise of two
different Y slices is independent, although within a slice it is strongly correlated (along the rays,
i.e. along Z near 0 degrees, and by the ramp filter along X) -- which is why a voxel blind spot fails and
why splitting along X or Z would not give independent parts.  The even rows and the odd rows of ONE
tomogram are thus a Noise2Noise pair at half the sampling along Y (Neighbor2Neighbor's sub-sampling,
along the one axis where it is honest), trained exactly like the even/odd halves
(:mod:`scnet.train`, ``halves`` steps).  Prediction: the network is applied to the even rows and to
the odd rows (:func:`row_views`), each output written into its own rows (:mod:`scnet.predict`).

Where it does not hold: rows mixed before the reconstruction (tilt-axis rotation or alignment
interpolated the images, a tilt axis not along Y, binning of correlated pixels): the two parts then
share noise, the network copies it and the interleave shows a row texture.  :mod:`scnet.rows` measures
it (``tests/test_rows.py``); ``--mode split`` warns where the row check finds shared noise.  ``auto``
trains the slab mode instead, which holds on mixed rows and leaves no texture (docs/benchmarks.md);
the split mode stays an explicit choice.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from .errors import SCNetInputError

AXIS = 1  # Y, the tilt axis


def split_rows(volume: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(even rows, odd rows) of ``volume`` (Z, Y, X) along Y, both (Z, Y // 2, X) float32 copies."""
    v = np.asarray(volume)
    if v.ndim != 3 or v.shape[AXIS] < 2:
        raise SCNetInputError(f"Split mode: the tomogram {v.shape} needs at least 2 rows along Y (the tilt axis).")
    n = v.shape[AXIS] // 2
    return (np.ascontiguousarray(v[:, 0:2 * n:2], dtype=np.float32),
            np.ascontiguousarray(v[:, 1:2 * n:2], dtype=np.float32))


def row_views(volume) -> Tuple[np.ndarray, np.ndarray]:
    """Views (no copy; works on memory maps) of all even rows and all odd rows of ``volume`` along Y."""
    return volume[:, 0::2], volume[:, 1::2]


