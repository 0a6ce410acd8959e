"""astra-toolbox back-end of :mod:`scnet.recon`: 2D CPU projector per Y slice, and the WBP filter.

astra's 3D algorithms need a GPU and kill the process without one (a
floating-point exception that cannot be caught), so only astra's 2D CPU
algorithms are used.  astra rotates the other way than this package's
convention (see :mod:`scnet.recon`): :func:`astra_angles` converts.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from ..choices import RADIAL

def _astra():
    import astra  # noqa: WPS433  (heavy import, only when needed)
    try:
        astra.log.disable()
    except Exception:  # pragma: no cover
        pass
    return astra


def astra_angles(angles_deg) -> np.ndarray:
    """astra rotates the other way: theta (module convention) -> -theta in astra."""
    return -np.deg2rad(np.asarray(angles_deg, dtype=np.float64))


class Astra2D:
    """Per-slice 2D parallel-beam geometry on the CPU (never an astra 3D call)."""

    def __init__(self, thickness: int, nx: int, angles_deg):
        self.astra = astra = _astra()
        self.vg = astra.create_vol_geom(int(thickness), int(nx))
        self.pg = astra.create_proj_geom("parallel", 1.0, int(nx), astra_angles(angles_deg))
        self.pid = astra.create_projector("linear", self.pg, self.vg)
        self.vid = astra.data2d.create("-vol", self.vg, 0.0)
        self.sid = astra.data2d.create("-sino", self.pg, 0.0)
        self._algs = {}

    def _alg(self, kind: str, **opts):
        key = (kind, tuple(sorted(opts.items())))
        if key not in self._algs:
            cfg = self.astra.astra_dict(kind)
            cfg["ProjectorId"] = self.pid
            cfg["ProjectionDataId"] = self.sid
            if kind.startswith("FP"):
                cfg["VolumeDataId"] = self.vid
            else:
                cfg["ReconstructionDataId"] = self.vid
            if opts:
                cfg["option"] = dict(opts)
            self._algs[key] = self.astra.algorithm.create(cfg)
        return self._algs[key]

    def backproject(self, sino: np.ndarray) -> np.ndarray:
        self.astra.data2d.store(self.sid, sino)
        self.astra.data2d.store(self.vid, 0.0)
        self.astra.algorithm.run(self._alg("BP"))
        return self.astra.data2d.get(self.vid)

    def forward(self, slc: np.ndarray) -> np.ndarray:
        self.astra.data2d.store(self.vid, slc)
        self.astra.data2d.store(self.sid, 0.0)
        self.astra.algorithm.run(self._alg("FP"))
        return self.astra.data2d.get(self.sid)

    def sirt(self, sino: np.ndarray, iterations: int) -> np.ndarray:
        self.astra.data2d.store(self.sid, sino)
        self.astra.data2d.store(self.vid, 0.0)
        self.astra.algorithm.run(self._alg("SIRT"), int(iterations))
        return self.astra.data2d.get(self.vid)

    def close(self):
        for a in self._algs.values():
            self.astra.algorithm.delete(a)
        self.astra.data2d.delete([self.vid, self.sid])
        self.astra.projector.delete(self.pid)


def wbp_filter(nx: int, radial: Tuple[float, float] = RADIAL) -> Tuple[np.ndarray, int]:
    """Frequency response of the WBP filter on a zero-padded grid.

    Ram-Lak ramp from its spatial kernel (h[0]=1/4, h[odd n]=-1/(pi n)^2), so
    the DC term is correct, times the IMOD-style radial window.
    """
    npad = int(2 ** int(np.ceil(np.log2(max(64, 2 * nx)))))
    n = np.concatenate([np.arange(0, npad // 2 + 1), np.arange(-(npad // 2) + 1, 0)])
    h = np.zeros(npad)
    h[0] = 0.25
    odd = (n % 2) == 1
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    ramp = np.real(np.fft.rfft(h))  # = |f| (cycles/pixel) with the right DC
    f = np.abs(np.fft.rfftfreq(npad))
    r1, r2 = float(radial[0]), float(radial[1])
    window = np.ones_like(f)
    if r1 < 0.5:
        beyond = f > r1
        window[beyond] = np.exp(-((f[beyond] - r1) ** 2) / (2 * max(r2, 1e-6) ** 2)) if r2 > 0 else 0.0
    return ramp * window, npad


def filter_projections(sino: np.ndarray, filt: np.ndarray, npad: int) -> np.ndarray:
    """Filter rows of ``sino`` (..., nx) with ``filt`` (rfft grid of size npad), edge-padded."""
    nx = sino.shape[-1]
    left = (npad - nx) // 2
    pad = [(0, 0)] * (sino.ndim - 1) + [(left, npad - nx - left)]
    p = np.pad(sino, pad, mode="edge")
    out = np.fft.irfft(np.fft.rfft(p, axis=-1) * filt, n=npad, axis=-1)
    return out[..., left:left + nx]
