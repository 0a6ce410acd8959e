"""2D filters for tilt images (the paper's "2D filter", §4.3 Smoothed Volume Generation) and 3D filters.

* :func:`topaz_denoise_2d` -- Topaz-Denoise pretrained 2D network applied to
  every tilt image (the paper's choice, §5.1: "a pretrained model of Topaz
  Denoiser ... as our 2D filter"); default model ``unet`` = ``unet_L2_v0.2.2``.
* :func:`topaz_denoise_3d` -- Topaz-Denoise 3D (``unet-3d-10a`` / ``unet-3d-20a``)
  on a volume (a baseline of Table 1-3).
* :func:`gaussian_2d`, :func:`lowpass_2d`, :func:`gaussian_3d`, :func:`lowpass_3d`.

Topaz weights ship inside the ``topaz-em`` package
(``topaz/pretrained/denoise/*.sav``); they are loaded here with
``importlib.resources`` (topaz's own loader falls back to ``pkg_resources``,
which recent setuptools no longer ships).

Low-pass cut-offs are fractions of Nyquist (0 < cutoff <= 1), with a smooth
raised-cosine edge of width ``edge`` (fraction of Nyquist).
"""
from __future__ import annotations

import logging
import os
from functools import lru_cache

import numpy as np

from .choices import PRIOR_FILTERS, describe
from .config_eval import Topaz3dConfig
from .config_tomo import FilterConfig
from .device import allocated_cpus, resolve_device, set_threads
from .errors import SCNetInputError

log = logging.getLogger(__name__)

TOPAZ_MODELS_2D = {
    "unet": "unet_L2_v0.2.2.sav",
    "unet-v0.2.1": "unet_L2_v0.2.1.sav",
    "unet-small": "unet_small_L1_v0.2.2.sav",
    "fcnn": "fcnn_L1_v0.2.2.sav",
    "affine": "affine_L1_v0.2.2.sav",
}
TOPAZ_MODELS_3D = {
    "unet-3d-10a": "unet-3d-10a-v0.2.4.sav",
    "unet-3d-20a": "unet-3d-20a-v0.2.4.sav",
}


# --------------------------------------------------------------------------- Topaz

def _torch_device(device: str):
    set_threads()
    return resolve_device(device)


@lru_cache(maxsize=4)
def _load_cpu(name: str):
    import importlib.resources as ir

    import torch
    from topaz.denoising import models as tm

    file = {**TOPAZ_MODELS_2D, **TOPAZ_MODELS_3D}.get(name)
    if file is None:
        raise SCNetInputError(
            f"Unknown Topaz model {name!r}. 2D: {', '.join(TOPAZ_MODELS_2D)}; 3D: {', '.join(TOPAZ_MODELS_3D)}.")
    arch = {
        "unet_L2_v0.2.1.sav": lambda: tm.UDenoiseNet(base_width=7, top_width=3),
        "unet_L2_v0.2.2.sav": lambda: tm.UDenoiseNet(base_width=11, top_width=5),
        "unet_small_L1_v0.2.2.sav": lambda: tm.UDenoiseNetSmall(width=11, top_width=5),
        "fcnn_L1_v0.2.2.sav": lambda: tm.DenoiseNet2(64, width=11),
        "affine_L1_v0.2.2.sav": lambda: tm.AffineDenoise(max_size=31),
        "unet-3d-10a-v0.2.4.sav": lambda: tm.UDenoiseNet3D(base_width=7),
        "unet-3d-20a-v0.2.4.sav": lambda: tm.UDenoiseNet3D(base_width=7),
    }[file]
    model = arch()
    res = ir.files("topaz") / "pretrained" / "denoise" / file
    with ir.as_file(res) as p:
        if not os.path.exists(p):
            raise SCNetInputError(f"Topaz weights {file} are missing from the topaz-em install ({p}); reinstall topaz-em.")
        state = torch.load(p, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model


def load_topaz_model(name: str = "unet", device: str = "cpu"):
    """Load a pretrained Topaz denoiser by name (see ``TOPAZ_MODELS_2D`` / ``TOPAZ_MODELS_3D``)."""
    dev = _torch_device(device)
    model = _load_cpu(name)
    return model.to(dev) if dev.type != "cpu" else model


def _pad32(a: np.ndarray) -> np.ndarray:
    """Mirror-pad every axis to a multiple of 32 (the U-Nets pool 5 times)."""
    pads = [(0, (-n) % 32) for n in a.shape]
    if not any(p[1] for p in pads):
        return a
    mode = "reflect" if all(p[1] < n for p, n in zip(pads, a.shape)) else "symmetric"
    while True:  # 'symmetric' still needs pad <= n: grow in steps for tiny inputs
        step = [(0, min(p[1], n)) for p, n in zip(pads, a.shape)]
        a = np.pad(a, step, mode=mode)
        pads = [(0, p[1] - st[1]) for p, st in zip(pads, step)]
        if not any(p[1] for p in pads):
            return a


def _run2d(model, img: np.ndarray, dev) -> np.ndarray:
    import torch
    ny, nx = img.shape
    x = torch.from_numpy(np.ascontiguousarray(_pad32(np.asarray(img, np.float32)))).to(dev)[None, None]
    with torch.no_grad():
        return model(x)[0, 0].cpu().numpy()[:ny, :nx]


def topaz_denoise_2d(stack, model: str = FilterConfig.topaz_model, device: str = FilterConfig.device,
                     patch_size: int = FilterConfig.patch_size, padding: int = 128,
                     progress: bool = False) -> np.ndarray:
    """Denoise every tilt image of ``stack (n, Y, X)`` with a pretrained Topaz 2D model.

    Each image is normalised to zero mean / unit std, denoised and mapped back
    to its own mean/std (as Topaz does), so the output keeps the input scale.
    Images larger than ``patch_size + padding`` are processed in overlapping
    tiles (``padding`` pixels of context each side) to bound memory;
    ``patch_size <= 0`` processes whole images.
    """
    if model not in TOPAZ_MODELS_2D:
        raise SCNetInputError(f"Unknown Topaz 2D model {model!r}; choose one of {', '.join(TOPAZ_MODELS_2D)}.")
    s = np.asarray(stack)
    if s.ndim == 2:
        s = s[None]
    if s.ndim != 3 or s.size == 0:
        raise SCNetInputError(f"topaz_denoise_2d: expected a tilt stack (n, Y, X), got shape {s.shape}.")
    dev = _torch_device(device)
    net = load_topaz_model(model, device)
    out = np.empty(s.shape, dtype=np.float32)
    ny, nx = s.shape[1:]
    for i in range(s.shape[0]):
        img = np.asarray(s[i], dtype=np.float64)
        mu, sd = img.mean(), img.std()
        sd = sd if sd > 0 else 1.0
        x = ((img - mu) / sd).astype(np.float32)
        if patch_size <= 0 or (ny <= patch_size + padding and nx <= patch_size + padding):
            y = _run2d(net, x, dev)
        else:
            y = np.empty_like(x)
            for i0 in range(0, ny, patch_size):
                for j0 in range(0, nx, patch_size):
                    si, sj = max(0, i0 - padding), max(0, j0 - padding)
                    ei, ej = min(ny, i0 + patch_size + padding), min(nx, j0 + patch_size + padding)
                    t = _run2d(net, x[si:ei, sj:ej], dev)
                    y[i0:i0 + patch_size, j0:j0 + patch_size] = \
                        t[i0 - si:i0 - si + patch_size, j0 - sj:j0 - sj + patch_size]
        out[i] = y * sd + mu
        if progress:
            log.info("topaz 2D: tilt %d/%d", i + 1, s.shape[0])
    return out


def topaz_denoise_3d(volume, model: str = Topaz3dConfig.topaz_model, device: str = Topaz3dConfig.device,
                     patch_size: int = 0, padding: int = 24) -> np.ndarray:
    """Denoise a volume with a pretrained Topaz-3D model (Noise2Noise, Bepler et al. 2020).

    ``patch_size=0`` (default) processes the whole volume at once when it has
    at most 160^3 voxels (fast: topaz's own default 96/48 tiling is ~15x slower
    on 64^3); larger volumes are tiled with ``patch_size`` 128 (or the given
    value) plus ``padding`` voxels of context to bound memory.
    The volume is normalised to zero mean / unit std and mapped back.
    """
    if model not in TOPAZ_MODELS_3D:
        raise SCNetInputError(f"Unknown Topaz 3D model {model!r}; choose one of {', '.join(TOPAZ_MODELS_3D)}.")
    v = np.asarray(volume)
    if v.ndim != 3 or v.size == 0:
        raise SCNetInputError(f"topaz_denoise_3d: expected a 3D volume, got shape {v.shape}.")
    import torch
    dev = _torch_device(device)
    net = load_topaz_model(model, device)
    mu, sd = float(np.mean(v, dtype=np.float64)), float(np.std(v, dtype=np.float64))
    sd = sd if sd > 0 else 1.0

    def run(block):
        # the 3D U-Net pools 5 times: pad each block (mirror) to a multiple of 32, crop after
        b = (np.asarray(block, dtype=np.float32) - mu) / sd
        bp = _pad32(b)
        x = torch.from_numpy(np.ascontiguousarray(bp, dtype=np.float32)).to(dev)
        with torch.no_grad():
            y = net(x[None, None])[0, 0].cpu().numpy()
        return y[:b.shape[0], :b.shape[1], :b.shape[2]]

    if patch_size <= 0 and v.size > 160 ** 3:
        patch_size = 128
    if patch_size <= 0:
        y = run(v)
    else:
        y = np.empty(v.shape, dtype=np.float32)
        p, pad = int(patch_size), int(padding)
        for z0 in range(0, v.shape[0], p):
            for y0 in range(0, v.shape[1], p):
                for x0 in range(0, v.shape[2], p):
                    lo = [max(0, c - pad) for c in (z0, y0, x0)]
                    hi = [min(n, c + p + pad) for c, n in zip((z0, y0, x0), v.shape)]
                    t = run(v[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
                    oz, oy, ox = z0 - lo[0], y0 - lo[1], x0 - lo[2]
                    blk = y[z0:z0 + p, y0:y0 + p, x0:x0 + p]
                    blk[...] = t[oz:oz + blk.shape[0], oy:oy + blk.shape[1], ox:ox + blk.shape[2]]
    return (y * sd + mu).astype(np.float32)


# --------------------------------------------------------------------------- Gaussian / low-pass

def check_sigma(sigma) -> float:
    s = float(sigma)
    if not np.isfinite(s) or s < 0:
        raise SCNetInputError(f"Gaussian sigma must be >= 0 pixels (got {sigma}).")
    return s


def _gaussian(data, sigma: float, name: str, what: str, per_image: bool) -> np.ndarray:
    from scipy.ndimage import gaussian_filter
    s = check_sigma(sigma)
    a = np.asarray(data, dtype=np.float32)
    if a.ndim != 3:
        raise SCNetInputError(f"{name}: expected a {what}, got shape {a.shape}.")
    if s == 0:
        return a.copy()
    return gaussian_filter(a, sigma=(0, s, s) if per_image else s, mode="reflect").astype(np.float32)


def gaussian_2d(stack, sigma: float) -> np.ndarray:
    """Gaussian filter of std ``sigma`` pixels on each image of ``stack (n, Y, X)`` (no mixing across tilts)."""
    return _gaussian(stack, sigma, "gaussian_2d", "stack (n, Y, X)", per_image=True)


def gaussian_3d(volume, sigma: float) -> np.ndarray:
    """Isotropic 3D Gaussian filter of std ``sigma`` voxels (§5.2 uses sigma = 2)."""
    return _gaussian(volume, sigma, "gaussian_3d", "volume (Z, Y, X)", per_image=False)


def check_cutoff(cutoff, edge) -> None:
    c = float(cutoff)
    if not (0 < c <= 1):
        raise SCNetInputError(f"low-pass cutoff must be a fraction of Nyquist in (0, 1] (got {cutoff}).")
    if not (0 <= float(edge) <= 1):
        raise SCNetInputError(f"low-pass edge width must be in [0, 1] (got {edge}).")


def _lowpass_response(freq_nyq: np.ndarray, cutoff: float, edge: float) -> np.ndarray:
    """1 below cutoff-edge/2, raised-cosine down to 0 at cutoff+edge/2 (frequencies in Nyquist units)."""
    if edge <= 0:
        return (freq_nyq <= cutoff).astype(np.float32)
    lo, hi = cutoff - edge / 2, cutoff + edge / 2
    t = np.clip((freq_nyq - lo) / (hi - lo), 0, 1)
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def _lowpass_nd(a: np.ndarray, axes, cutoff: float, edge: float) -> np.ndarray:
    import scipy.fft as sf
    shape = [a.shape[ax] for ax in axes]
    grids = []
    for k, n in enumerate(shape):
        f = sf.rfftfreq(n) if k == len(shape) - 1 else sf.fftfreq(n)
        grids.append(np.abs(f) / 0.5)
    r2 = np.zeros([len(g) for g in grids], dtype=np.float32)
    for k, g in enumerate(grids):
        sh = [1] * len(grids)
        sh[k] = len(g)
        r2 = r2 + (g.reshape(sh) ** 2).astype(np.float32)
    h = _lowpass_response(np.sqrt(r2), cutoff, edge)
    F = sf.rfftn(a, axes=axes, workers=allocated_cpus())
    F *= h
    return sf.irfftn(F, s=shape, axes=axes, workers=allocated_cpus()).astype(np.float32)


def lowpass_2d(stack, cutoff: float, edge: float = 0.1) -> np.ndarray:
    """Low-pass each image of ``stack (n, Y, X)`` at ``cutoff`` x Nyquist (raised-cosine edge)."""
    check_cutoff(cutoff, edge)
    a = np.asarray(stack, dtype=np.float32)
    if a.ndim != 3:
        raise SCNetInputError(f"lowpass_2d: expected a stack (n, Y, X), got shape {a.shape}.")
    return _lowpass_nd(a, (1, 2), float(cutoff), float(edge))


def lowpass_3d(volume, cutoff: float, edge: float = 0.1) -> np.ndarray:
    """Isotropic 3D low-pass at ``cutoff`` x Nyquist (raised-cosine edge)."""
    check_cutoff(cutoff, edge)
    a = np.asarray(volume, dtype=np.float32)
    if a.ndim != 3:
        raise SCNetInputError(f"lowpass_3d: expected a volume (Z, Y, X), got shape {a.shape}.")
    return _lowpass_nd(a, (0, 1, 2), float(cutoff), float(edge))


def filter_stack(stack, cfg: FilterConfig) -> np.ndarray:
    """The 2D filter of every tilt image that makes the smoothed volume (§4.3), as ``cfg`` declares it:
    topaz | gaussian | lowpass (:class:`scnet.config_tomo.FilterConfig`, validated by the caller)."""
    if cfg.method == "topaz":
        return topaz_denoise_2d(stack, model=cfg.topaz_model, device=cfg.device, patch_size=cfg.patch_size)
    if cfg.method == "gaussian":
        return gaussian_2d(stack, cfg.sigma)
    if cfg.method == "lowpass":
        return lowpass_2d(stack, cfg.cutoff)
    raise SCNetInputError(f"filter method must be {describe(PRIOR_FILTERS)} (got {cfg.method!r}).")
