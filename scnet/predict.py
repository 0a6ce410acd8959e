"""Tiled SC-Net inference of a tomogram of any size in bounded memory.

Output blocks of ``tile_size³`` overlap by ``overlap`` voxels per axis and
are predicted from a window with ``margin`` extra voxels of real context on
each side (discarded afterwards, so zero-padding border effects of the
convolutions stay out of the result); each block's
prediction is weighted by a separable raised-cosine (Hann) ramp over the
overlap on the sides shared with a neighbour tile (weight 1 at volume
borders), and the weighted sum is divided by the summed weights, so there
are no seams.  Tiles are processed z-slab by z-slab: only one slab of
``tile_size`` z-rows (sum and weights) is held in memory, and finished
z-rows are written straight into the output (an ``scnet.io.VolumeWriter``
memory map for files).  The input is read through ``read_volume(mmap=True)``.
Output is de-normalised to the input's intensity scale with the stats stored
in ``model.pt``.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np
import torch

from .data import Normalisation
from .errors import SCNetInputError
from .io import VolumeWriter, read_volume
from .model import ModelConfig, SCNet, fold_batchnorm

log = logging.getLogger(__name__)


@dataclass
class PredictConfig:
    tile_size: int = 96     # output block edge (blended with its neighbours over ``overlap``)
    overlap: int = 16
    device: str = "cpu"
    progress: bool = False
    margin: int = 16        # extra context read on each side of a block and discarded (no border effects)


def load_model(model_path: str, device="cpu") -> Tuple[SCNet, Normalisation, dict]:
    """Load ``model.pt`` -> (model in eval mode, normalisation, raw dict)."""
    from .train import MODEL_FORMAT
    try:
        ck = torch.load(model_path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise SCNetInputError(f"Model {model_path} not found: train one with `scnet train`.") from None
    except Exception as exc:  # corrupt / not a torch file
        raise SCNetInputError(f"{model_path} is not a readable SC-Net model ({exc}).") from None
    if not isinstance(ck, dict) or ck.get("format") != MODEL_FORMAT:
        raise SCNetInputError(f"{model_path} is not an SC-Net model.pt (written by `scnet train`).")
    model = SCNet(ModelConfig(**ck["model_config"]))
    model.load_state_dict(ck["state_dict"])
    model.to(device).eval()
    fold_batchnorm(model)
    return model, Normalisation(**ck["normalisation"]), ck


def _starts(n: int, t: int, overlap: int) -> List[int]:
    if n <= t:
        return [0]
    step = max(1, t - overlap)
    s = list(range(0, n - t, step))
    return s + [n - t]


def _ramp(t: int, overlap: int, left: bool, right: bool) -> np.ndarray:
    w = np.ones(t, np.float32)
    o = min(overlap, t // 2)
    if o > 0:
        r = (0.5 - 0.5 * np.cos(np.pi * (np.arange(o) + 0.5) / o)).astype(np.float32)
        if left:
            w[:o] = r
        if right:
            w[t - o:] = np.minimum(w[t - o:], r[::-1])
    return w


def _round_up(n: int, m: int) -> int:
    return int(math.ceil(n / m) * m)


def _run_tile(model: SCNet, tile: np.ndarray, device, multiple: int) -> np.ndarray:
    shape = tile.shape
    pads = [(0, _round_up(s, multiple) - s) for s in shape]
    if any(p[1] for p in pads):
        tile = np.pad(tile, pads, mode="reflect" if min(shape) > 1 else "edge")
    x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.float32))[None, None].to(device)
    y = model(x)[0, 0].float().cpu().numpy()
    return y[:shape[0], :shape[1], :shape[2]]


def predict_stream(model: SCNet, norm: Normalisation, volume, sink: Callable[[int, int, np.ndarray], None],
                   cfg: PredictConfig) -> None:
    """Predict ``volume`` (array or memmap) tile by tile; ``sink(z0, z1, rows)`` gets final z-rows in order."""
    if cfg.margin < 0:
        raise SCNetInputError(f"margin={cfg.margin} must be >= 0.")
    if cfg.tile_size < 8 or cfg.overlap < 0 or cfg.overlap >= cfg.tile_size // 2 + 1:
        raise SCNetInputError(f"tile_size={cfg.tile_size} / overlap={cfg.overlap}: need tile_size >= 8 and "
                              "0 <= overlap <= tile_size/2.")
    device = next(model.parameters()).device
    m = model.cfg.multiple()
    Z, Y, X = volume.shape
    t = [min(cfg.tile_size, n) for n in (Z, Y, X)]
    starts = [_starts(n, tt, cfg.overlap) for n, tt in zip((Z, Y, X), t)]
    ntiles = len(starts[0]) * len(starts[1]) * len(starts[2])
    buf_sum = np.zeros((t[0], Y, X), np.float32)
    buf_w = np.zeros((t[0], Y, X), np.float32)
    base = 0
    done, t0 = 0, time.time()
    wy_cache = {}
    with torch.inference_mode():
        for zi, z0 in enumerate(starts[0]):
            if z0 > base:  # rows [base, z0) are final
                shift = z0 - base
                sink(base, z0, buf_sum[:shift] / buf_w[:shift])
                buf_sum[:-shift] = buf_sum[shift:].copy()
                buf_w[:-shift] = buf_w[shift:].copy()
                buf_sum[-shift:] = 0
                buf_w[-shift:] = 0
                base = z0
            wz = _ramp(t[0], cfg.overlap, zi > 0, zi < len(starts[0]) - 1)
            for yi, y0 in enumerate(starts[1]):
                wy = _ramp(t[1], cfg.overlap, yi > 0, yi < len(starts[1]) - 1)
                for xi, x0 in enumerate(starts[2]):
                    key = (zi > 0, zi < len(starts[0]) - 1, yi > 0, yi < len(starts[1]) - 1,
                           xi > 0, xi < len(starts[2]) - 1)
                    if key not in wy_cache:
                        wx = _ramp(t[2], cfg.overlap, xi > 0, xi < len(starts[2]) - 1)
                        wy_cache[key] = wz[:, None, None] * wy[None, :, None] * wx[None, None, :]
                    w = wy_cache[key]
                    lo = [max(0, s0 - cfg.margin) for s0 in (z0, y0, x0)]
                    hi = [min(n, s0 + tt + cfg.margin) for n, s0, tt in zip((Z, Y, X), (z0, y0, x0), t)]
                    tile = norm.apply(volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
                    pred = _run_tile(model, tile, device, m)
                    a = [s0 - l0 for s0, l0 in zip((z0, y0, x0), lo)]
                    pred = pred[a[0]:a[0] + t[0], a[1]:a[1] + t[1], a[2]:a[2] + t[2]]
                    sl = (slice(z0 - base, z0 - base + t[0]), slice(y0, y0 + t[1]), slice(x0, x0 + t[2]))
                    buf_sum[sl] += pred * w
                    buf_w[sl] += w
                    done += 1
                    if cfg.progress and (done % max(1, ntiles // 20) == 0 or done == ntiles):
                        el = time.time() - t0
                        print(f"[scnet predict] tile {done}/{ntiles}, ETA {el / done * (ntiles - done):.0f} s",
                              file=sys.stderr, flush=True)
    sink(base, Z, buf_sum[:Z - base] / buf_w[:Z - base])


def predict_array(model_path: str, volume: np.ndarray, cfg: PredictConfig = None) -> np.ndarray:
    """Denoise ``volume`` with a trained model; returns float32 in the input's intensity scale."""
    cfg = cfg or PredictConfig()
    from .train import resolve_device, set_threads
    set_threads()
    model, norm, _ = load_model(model_path, resolve_device(cfg.device))
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise SCNetInputError(f"predict: expected a 3D volume, got shape {vol.shape}.")
    out = np.empty(vol.shape, np.float32)

    def sink(z0, z1, rows):
        out[z0:z1] = norm.invert(rows)

    predict_stream(model, norm, vol, sink, cfg)
    return out


def predict_file(model_path: str, in_mrc: str, out_mrc: str, cfg: PredictConfig = None) -> None:
    """Denoise an MRC file into a float32 MRC with the input's voxel size and origin (bounded memory)."""
    cfg = cfg or PredictConfig()
    from .train import resolve_device, set_threads
    set_threads()
    model, norm, _ = load_model(model_path, resolve_device(cfg.device))
    vol, info = read_volume(in_mrc, mmap=True)
    with VolumeWriter(out_mrc, vol.shape, info.voxel_size, info.origin) as w:
        def sink(z0, z1, rows):
            w.data[z0:z1] = norm.invert(rows)
        predict_stream(model, norm, vol, sink, cfg)
