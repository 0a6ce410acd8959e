"""Simulated data with ground truth (paper §5.2, Fig. 4).

Paper procedure, from a raw tilt series::

    reconstruct -> Gaussian filter (sigma = 2) -> "ground-truth volume"
    -> re-project at the tilt angles -> normalise -> "ground-truth projections"
    -> add AWGN (sigma = 10, 15, 20) to the 2D projections (never to the volume)
    -> noisy tilt series -> reconstruct -> noisy volume

Choices made here (also written to ``simulation.json``):

* **Intensity scale.**  The clean re-projections are mapped linearly to
  0..255 (global min -> 0, global max -> 255 over the whole stack), so the
  paper's AWGN sigma of 10, 15, 20 means 10/255 etc. of the projection range.
  ``SimulationResult.scale``/``offset`` record the map
  (``clean = (reproj - offset) * scale``).
* **Ground truth that the metrics compare to.**  The noisy volume is a
  missing-wedge reconstruction, so comparing it with the sigma-2 filtered
  volume itself would mostly measure missing-wedge artefacts and a scale
  mismatch.  ``ground_truth`` is therefore the reconstruction of the CLEAN
  (normalised) projections with exactly the same reconstruction and
  thickness as ``noisy_rec``: ``noisy_rec - ground_truth`` is then exactly the
  reconstructed projection noise (reconstruction is linear), on the same grid
  and scale.  The paper's literal ground truth (the filtered volume, before
  re-projection) is kept as ``filtered_volume``.
* **Phantom input.**  :func:`simulate_from_volume` starts from a clean volume
  (our phantom): it is re-projected directly; ``gaussian_sigma`` defaults to
  0 there because the sigma-2 filter only exists to clean a *real* noisy
  reconstruction and would erase the phantom's bilayers.
* **Interpolated rows** (``tilt_axis_rotation`` degrees, default 0 = off): real tilt images have their
  tilt axis a few degrees off the detector's Y, and the alignment (IMOD, AreTomo, Warp) rotates each
  image once to put it on Y, which mixes neighbouring rows of the noise.  With a rotation, each clean
  projection is rotated by ``-tilt_axis_rotation`` (the raw detector frame, on a canvas large enough
  that nothing falls outside), the AWGN is added there, and the noisy image is rotated back
  (``interpolation`` order: 1 = bilinear) before the reconstruction.  The ground truth goes through the
  same two rotations without noise, so ``noisy_rec - ground_truth`` is still the reconstructed noise.
* Everything is seeded (``seed``); same inputs -> same outputs.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Dict, Optional

import numpy as np

from .config_tomo import FilterConfig, PhantomConfig, SimulationConfig
from .errors import SCNetInputError
from .filters import filter_stack, gaussian_3d
from .recon import ReconConfig, check_angles, check_stack, reconstruct, reproject, resolve_thickness
from .tiltseries import split_even_odd

log = logging.getLogger(__name__)

PROJECTION_RANGE = 255.0


def recon_config(cfg: SimulationConfig, thickness: int) -> ReconConfig:
    """The one reconstruction of every volume of a simulation: weighted back-projection."""
    return ReconConfig(thickness=thickness, backend=cfg.backend, method="wbp", radial=cfg.radial_pair())


def rotated_and_back(clean: np.ndarray, noise_sigma: float, degrees: float, order: int = 1,
                     rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Each image of ``clean`` (n, Y, X) rotated by ``-degrees`` (a detector whose tilt axis is off Y), plus
    AWGN of ``noise_sigma`` there (white in the detector's pixels), rotated back by ``degrees`` (the
    alignment's one interpolation, spline ``order``).  The canvas is padded (edge values) so that every
    output pixel comes from inside it: no noise is mirrored or duplicated."""
    from scipy import ndimage
    n, ny, nx = clean.shape
    pad = int(np.ceil(max(ny, nx) * abs(np.sin(np.radians(degrees))))) + 4
    out = np.empty(clean.shape, np.float32)
    for i in range(n):
        img = np.pad(clean[i].astype(np.float64), pad, mode="edge")
        raw = ndimage.rotate(img, -degrees, reshape=False, order=order, mode="nearest")
        if noise_sigma > 0:
            raw = raw + rng.normal(0.0, noise_sigma, size=raw.shape)
        back = ndimage.rotate(raw, degrees, reshape=False, order=order, mode="nearest")
        out[i] = back[pad:pad + ny, pad:pad + nx]
    return out


@dataclass
class SimulationResult:
    ground_truth: np.ndarray          # reconstruction of the clean normalised projections (thickness, Y, X)
    noisy_stack: np.ndarray           # (n, Y, X), clean + AWGN, 0..255 scale
    angles: np.ndarray
    noisy_rec: np.ndarray             # reconstruction of noisy_stack (same grid/scale as ground_truth)
    clean_stack: np.ndarray           # normalised ground-truth projections (0..255)
    filtered_volume: np.ndarray       # the paper's literal GT (filtered reconstruction / clean volume)
    scale: float = 1.0
    offset: float = 0.0
    params: Dict = field(default_factory=dict)


def simulate_from_volume(volume, angles, cfg: Optional[SimulationConfig] = None) -> SimulationResult:
    """Re-project a clean volume, normalise to 0..255, add AWGN to the projections, reconstruct (§5.2)."""
    cfg = (cfg or SimulationConfig()).validate()
    gaussian_sigma = cfg.ground_truth_sigma(clean=True)
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3 or vol.size == 0:
        raise SCNetInputError(f"simulate: expected a 3D volume, got shape {vol.shape}.")
    angles = check_angles(angles)
    thickness = resolve_thickness(cfg.thickness if cfg.thickness is not None else vol.shape[0], vol.shape[2])
    filtered = gaussian_3d(vol, gaussian_sigma) if gaussian_sigma > 0 else vol
    proj = reproject(filtered, angles).astype(np.float64)
    lo, hi = float(proj.min()), float(proj.max())
    if hi <= lo:
        raise SCNetInputError("simulate: the re-projections are constant (empty volume?); nothing to simulate.")
    scale = PROJECTION_RANGE / (hi - lo)
    clean = ((proj - lo) * scale).astype(np.float32)
    rng = np.random.default_rng(int(cfg.seed))
    if cfg.tilt_axis_rotation:
        noisy = rotated_and_back(clean, cfg.sigma, cfg.tilt_axis_rotation, cfg.interpolation, rng)
        clean = rotated_and_back(clean, 0.0, cfg.tilt_axis_rotation, cfg.interpolation)
    else:
        noisy = (clean + rng.normal(0.0, cfg.sigma, size=clean.shape)).astype(np.float32)
    rc = recon_config(cfg, thickness)
    gt = reconstruct(clean, angles, rc)
    noisy_rec = reconstruct(noisy, angles, rc)
    params = {
        "paper_section": "5.2 (Fig. 4)",
        "sigma": float(cfg.sigma),
        "noise": "additive white Gaussian noise on the 2D projections" + (
            f", added in a frame rotated by {-cfg.tilt_axis_rotation:g} degrees and rotated back (interpolated rows, "
            f"spline order {cfg.interpolation})" if cfg.tilt_axis_rotation else ""),
        "projection_range": [0.0, PROJECTION_RANGE],
        "normalisation": "clean = (reprojection - min) * range / (max - min), global over the stack",
        "scale": scale, "offset": lo,
        "gaussian_sigma": gaussian_sigma,
        "thickness": int(thickness),
        "n_tilts": int(angles.size),
        "angles_deg": [float(a) for a in angles],
        "seed": int(cfg.seed),
        "tilt_axis_rotation": float(cfg.tilt_axis_rotation),
        "interpolation": int(cfg.interpolation),
        "reconstruction": {"backend": cfg.backend, "method": rc.method, "radial": list(rc.radial)},
        "ground_truth": "reconstruction of the clean normalised projections with the same reconstruction "
                        "as noisy_rec (missing-wedge consistent, same grid and scale)",
    }
    return SimulationResult(ground_truth=gt, noisy_stack=noisy, angles=angles, noisy_rec=noisy_rec,
                            clean_stack=clean, filtered_volume=filtered, scale=scale, offset=lo, params=params)


def simulate(stack, angles, cfg: Optional[SimulationConfig] = None) -> SimulationResult:
    """§5.2 from a raw tilt series: reconstruct, Gaussian-filter (sigma=2) -> GT volume, then
    :func:`simulate_from_volume` (re-project, normalise, AWGN on projections, reconstruct)."""
    cfg = (cfg or SimulationConfig()).validate()
    stack = check_stack(stack)
    angles = check_angles(angles, stack.shape[0])
    thickness = resolve_thickness(cfg.thickness, stack.shape[2])
    rec = reconstruct(stack, angles, recon_config(cfg, thickness))
    res = simulate_from_volume(rec, angles, replace(cfg, thickness=thickness,
                                                    gaussian_sigma=cfg.ground_truth_sigma(clean=False)))
    res.params["source"] = "tilt series"
    return res


def write_simulation_json(path: str, res: SimulationResult, extra: Optional[dict] = None) -> None:
    d = dict(res.params)
    d.update(extra or {})
    d["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp = path + ".partial"
    with open(tmp, "w") as fh:
        json.dump(d, fh, indent=2)
    os.replace(tmp, path)


_PHANTOM, _FILTER, _SIMULATION = PhantomConfig(), FilterConfig(), SimulationConfig()


def prepare_case(shape=None, seed: int = _PHANTOM.seed, sigma: float = _SIMULATION.sigma,
                 tilt_range: float = _PHANTOM.tilt_range, tilt_step: float = _PHANTOM.tilt_step,
                 prior_filter: str = _FILTER.method, topaz_model: str = _FILTER.topaz_model,
                 voxel_size: float = _PHANTOM.voxel_size, gaussian_sigma: Optional[float] = None,
                 filter_sigma: float = _FILTER.sigma, lowpass_cutoff: float = _FILTER.cutoff,
                 device: str = _FILTER.device, tilt_axis_rotation: float = _SIMULATION.tilt_axis_rotation,
                 interpolation: int = _SIMULATION.interpolation) -> dict:
    """One complete simulated SC-Net case, from the phantom (defaults: the declared ones,
    :mod:`scnet.config_tomo`; ``shape`` None = the phantom's):

    phantom -> tilt series (missing wedge) -> §5.2 simulation (AWGN ``sigma`` on 0..255 projections)
    (``tilt_axis_rotation``: the noise added in a rotated detector frame and the tilts rotated back,
    :func:`rotated_and_back`: interpolated rows)
    -> 2D filter of the noisy tilts (``prior_filter``: topaz | gaussian | lowpass, §4.3)
    -> reconstructions on one grid ``(Z, Y, X) = shape``.

    Returns a dict: ``ground_truth``, ``noisy_rec``, ``prior_rec`` (the smoothed volume V-hat),
    ``noisy_stack``, ``prior_stack``, ``clean_stack``, ``angles``, ``even_rec``, ``odd_rec``
    (reconstructions of the even/odd acquisition halves of the noisy stack, for FSC_e/o, eq. 10),
    ``phantom`` and ``params``.
    """
    from .phantom import make_phantom, tilt_angles
    t0 = time.time()
    shape = tuple(shape) if shape is not None else _PHANTOM.shape_zyx()
    vol = make_phantom(shape, seed, voxel_size)
    angles = tilt_angles(tilt_range, tilt_step)
    cfg = SimulationConfig(sigma=sigma, thickness=int(shape[0]), gaussian_sigma=gaussian_sigma, seed=seed,
                           tilt_axis_rotation=tilt_axis_rotation, interpolation=interpolation)
    res = simulate_from_volume(vol, angles, cfg)
    prior_stack = filter_stack(res.noisy_stack, FilterConfig(method=prior_filter, topaz_model=topaz_model,
                                                             sigma=filter_sigma, cutoff=lowpass_cutoff,
                                                             device=device).validate())
    rc = recon_config(cfg, int(shape[0]))
    prior_rec = reconstruct(prior_stack, angles, rc)
    (ev, ev_a), (od, od_a) = split_even_odd(res.noisy_stack, angles)
    even_rec = reconstruct(ev, ev_a, rc)
    odd_rec = reconstruct(od, od_a, rc)
    params = dict(res.params)
    params.update({"source": "phantom", "shape": [int(s) for s in shape], "phantom_seed": int(seed),
                   "voxel_size": float(voxel_size), "tilt_range": float(tilt_range), "tilt_step": float(tilt_step),
                   "prior_filter": prior_filter, "topaz_model": topaz_model if prior_filter == "topaz" else None,
                   "seconds": round(time.time() - t0, 2)})
    return dict(ground_truth=res.ground_truth, noisy_rec=res.noisy_rec, prior_rec=prior_rec,
                noisy_stack=res.noisy_stack, prior_stack=prior_stack, clean_stack=res.clean_stack,
                angles=angles, even_rec=even_rec, odd_rec=odd_rec, phantom=vol, params=params)
