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
in ``model.pt`` -- or, for a model trained on a data set, with the input's own
statistics (each tomogram normalised on its own, as in that training; :mod:`scnet.dataset`).

Files and arrays share one prediction core (which volume by the model's mode, finite rows, a constant
output refused); it stays beside the tiling it drives, hence a module a little over 300 lines.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from typing import Callable, List, Tuple

import numpy as np
import torch

from .data import Normalisation
from .device import autocast, resolve_precision
from .config import PredictConfig
from .errors import SCNetInputError
from . import rules
from .dataset import input_normalisation
from .io import VolumeWriter, distinct_halves, drop_pages as _drop_pages, read_volume
from .model import SCNet
from .modelfile import load_model_file
from .rows import filter_rows, output_taps, row_filter_taps
from .split import row_views as split_views

log = logging.getLogger(__name__)


def load_model(model_path: str, device="cpu") -> Tuple[SCNet, Normalisation, dict]:
    """Load ``model.pt`` -> (model in eval mode, normalisation, raw dict).

    Read with ``torch.load(weights_only=True)`` and validated (see :mod:`scnet.modelfile`):
    a file carrying code, a truncated file, weights that do not fit their configuration,
    non-finite weights or a zero normalisation std are refused with a clear error.
    """
    return load_model_file(model_path, device)


def check_sampling(ck: dict, voxel_size: float, input_name: str, force: bool = False) -> None:
    """Refuse (unless ``force``: warn) a model trained at another voxel size than the tomogram's."""
    if ck.get("voxel_size") and not voxel_size > 0:  # never a guessed size, even with force
        raise SCNetInputError(f"{input_name}: its header sets no voxel size (0), so the model's "
                              f"{ck['voxel_size']:.4g} A/px cannot be checked against it; set it in the header "
                              f"(e.g. IMOD `alterheader -del SIZE,SIZE,SIZE {input_name}`).")
    why = rules.sampling_mismatch(ck.get("voxel_size"), voxel_size)
    if why is None:
        return
    if not force:
        raise SCNetInputError(f"{input_name}: {why}. Give --force to apply it anyway.")
    log.warning("%s: %s (--force given: going on).", input_name, why)


def _starts(n: int, t: int, overlap: int) -> List[int]:
    if n <= t:
        return [0]
    step = max(1, t - overlap)
    s = list(range(0, n - t, step))
    return s + [n - t]


def balanced_tile(n: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The tile edge along an axis of ``n`` voxels: as many tiles as edges of at most ``tile`` need, then
    each as short as covers the axis evenly (no last tile mostly overlapping its neighbour: every tile
    costs its edge plus the context on both sides).  The step between tiles stays a multiple of
    ``multiple`` (the network's size multiple: its down-sampling grid then lines up in every window)."""
    if n <= tile:
        return n
    k = math.ceil((n - overlap) / max(1, tile - overlap))
    step = _round_up(math.ceil((n - overlap) / k), max(1, multiple))
    return min(tile, step + overlap)


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


TTA_FLIPS = ((), (2,), (1,), (1, 2), (0,), (0, 2), (0, 1), (0, 1, 2))  # first n used for tta = n


def _run_tile(model: SCNet, tile: np.ndarray, device, multiple: int, tta: int = 1,
              precision: str = "fp32") -> np.ndarray:
    """Predict one window; with ``tta`` > 1, the mean over that many axis flips (each un-flipped)."""
    shape = tile.shape
    pads = [(0, _round_up(s, multiple) - s) for s in shape]
    if any(p[1] for p in pads):  # a row-blind network would see a row's own noise in its mirror: zeros
        mode = "constant" if getattr(model, "causal", False) else "reflect" if min(shape) > 1 else "edge"
        tile = np.pad(tile, pads, mode=mode)
    x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.float32))[None, None].to(device)
    y = None
    for axes in TTA_FLIPS[:tta]:
        dims = [a + 2 for a in axes]
        with autocast(device, precision):
            out = model(torch.flip(x, dims) if dims else x).float()
        out = torch.flip(out, dims) if dims else out
        y = out if y is None else y + out
    y = (y / tta)[0, 0].float().cpu().numpy()
    return y[:shape[0], :shape[1], :shape[2]]


def predict_stream(model: SCNet, norm: Normalisation, volume, sink: Callable[[int, int, np.ndarray], None],
                   cfg: PredictConfig, taps_in=None) -> None:
    """Predict ``volume`` (array or memmap) tile by tile; ``sink(z0, z1, rows)`` gets final z-rows in order.
    ``taps_in``: an FIR along Y applied to the input first (a slab-mode model's whitening, :mod:`scnet.rows`),
    exactly as on the whole volume: each window reads that many more rows, their filtered edge discarded.

    Memory: one slab of ``tile_size`` z-rows of weighted sums (the blending weights are separable over
    the tile grid, so their sum is an outer product of three 1D sums and is never stored per voxel),
    one tile window, and ``sink`` calls of at most 16 rows.
    """
    cfg.validate()
    device = next(model.parameters()).device
    m = model.cfg.multiple()
    margins = cfg.contexts(model.cfg)
    fir = 0 if taps_in is None else len(taps_in) // 2
    reads = (margins[0], margins[1] + fir, margins[2])
    shape = tuple(int(n) for n in volume.shape)
    Z, Y, X = shape
    t = [balanced_tile(n, cfg.tile_size, cfg.overlap, m) for n in shape]
    starts = [_starts(n, tt, cfg.overlap) for n, tt in zip(shape, t)]
    ramps = []   # per axis: list of 1D weights per tile start
    wsum = []    # per axis: summed 1D weights (> 0 everywhere)
    for ax in range(3):
        ra = [_ramp(t[ax], cfg.overlap, i > 0, i < len(starts[ax]) - 1) for i in range(len(starts[ax]))]
        acc = np.zeros(shape[ax], np.float32)
        for s0, r in zip(starts[ax], ra):
            acc[s0:s0 + t[ax]] += r
        ramps.append(ra)
        wsum.append(acc)
    wyx = wsum[1][:, None] * wsum[2][None, :]
    ntiles = len(starts[0]) * len(starts[1]) * len(starts[2])
    precision = resolve_precision(device, cfg.precision)
    if cfg.progress:
        print(f"[scnet predict] {ntiles} tiles of {t[0]}x{t[1]}x{t[2]} (+{'/'.join(map(str, margins)) if len(set(margins)) > 1 else margins[0]} context), {cfg.tta} flip(s), "
              f"{precision}" + (" (auto)" if cfg.precision == "auto" else ""), file=sys.stderr, flush=True)
    buf = np.zeros((t[0], Y, X), np.float32)
    base = 0
    done, t0 = 0, time.time()

    def flush(z_end):
        for a in range(base, z_end, 16):
            b = min(a + 16, z_end)
            rows = buf[a - base:b - base] / (wsum[0][a:b, None, None] * wyx[None])
            sink(a, b, rows)

    with torch.inference_mode():
        for zi, z0 in enumerate(starts[0]):
            if z0 > base:  # rows [base, z0) are final
                shift = z0 - base
                flush(z0)
                buf[:-shift] = buf[shift:]
                buf[-shift:] = 0
                base = z0
                _drop_pages(volume)
            wz = ramps[0][zi]
            for yi, y0 in enumerate(starts[1]):
                wy = ramps[1][yi]
                for xi, x0 in enumerate(starts[2]):
                    lo = [max(0, s0 - mg) for s0, mg in zip((z0, y0, x0), reads)]
                    hi = [min(n, s0 + tt + mg) for n, s0, tt, mg in zip(shape, (z0, y0, x0), t, reads)]
                    tile = volume[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
                    if fir:  # whiten along Y; rows within `fir` of a cut edge are wrong, and cropped next
                        tile = filter_rows(tile, taps_in)
                        cut0 = max(0, (y0 - lo[1]) - margins[1])
                        cut1 = max(0, (hi[1] - (y0 + t[1])) - margins[1])
                        tile = tile[:, cut0:tile.shape[1] - cut1]
                        lo[1] += cut0
                    tile = norm.apply(tile)
                    pred = _run_tile(model, tile, device, m, cfg.tta, precision)
                    a = [s0 - l0 for s0, l0 in zip((z0, y0, x0), lo)]
                    pred = pred[a[0]:a[0] + t[0], a[1]:a[1] + t[1], a[2]:a[2] + t[2]]
                    pred *= wz[:, None, None]
                    pred *= wy[None, :, None]
                    pred *= ramps[2][xi][None, None, :]
                    buf[z0 - base:z0 - base + t[0], y0:y0 + t[1], x0:x0 + t[2]] += pred
                    done += 1
                    if cfg.progress and (done % max(1, ntiles // 20) == 0 or done == ntiles):
                        el = time.time() - t0
                        print(f"[scnet predict] tile {done}/{ntiles}, ETA {el / done * (ntiles - done):.0f} s",
                              file=sys.stderr, flush=True)
    flush(Z)
    _drop_pages(volume)


def predict_array(model_path: str, volume: np.ndarray, cfg: PredictConfig = None, stats_from=None) -> np.ndarray:
    """Denoise ``volume`` with a trained model; returns float32 in the input's intensity scale.
    A split-mode model predicts the even and the odd rows along Y apart (:mod:`scnet.split`); split and slab
    models filter their output along Y (:func:`row_filters`).
    A data-set model normalises by the statistics of ``volume``, or of ``stats_from`` (a half map's full
    tomogram) when given."""
    cfg = (cfg or PredictConfig()).validate()
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise SCNetInputError(f"predict: expected a 3D volume, got shape {vol.shape}.")
    out = np.empty(vol.shape, np.float32)
    _predict_into(_load(model_path, cfg), model_path, vol, out, cfg, None, None, "the volume", "the prediction",
                  ref=stats_from)
    return out


def row_filters(ck: dict):
    """(FIR along Y on the input, FIR along Y on the output) of a model, or None each (:mod:`scnet.rows`): a
    split- or slab-mode model averages each output row with its neighbours (``ROW_AVERAGE``); a slab model
    trained on whitened rows (``row_noise``) also whitens its input and colours its output back first."""
    if ck.get("mode") not in ("split", "slab"):
        return None, None
    rho = (ck.get("row_noise") or {}).get("rho")
    return (row_filter_taps(rho, -0.5) if rho else None), output_taps(rho)


def _row_sources(ck: dict, vol):
    """(rows of the output along Y, the volume they are predicted from): all rows, or for a split-mode
    model the even rows and the odd rows apart (views, no copy)."""
    if ck.get("mode") == "split":
        return list(zip((slice(0, None, 2), slice(1, None, 2)), split_views(vol)))
    return [(slice(None), vol)]


def uses_halves(ck: dict) -> bool:
    """A model trained in the halves mode predicts a tomogram as the mean of its two half predictions."""
    return ck.get("mode") == "halves"


def predict_halves_array(model_path: str, halves, cfg: PredictConfig = None, stats_from=None) -> np.ndarray:
    """The halves mode's prediction: mean of the model applied to the even and the odd half tomogram.

    The network was trained on half tomograms (twice the noise variance of the full one), so it is
    applied where its training noise level holds, and the two predictions are averaged (as cryoCARE
    does).  Measured on the phantom (σ 15, 300 iterations): 29.65 dB / SSIM 0.803 against 29.03 / 0.71
    for the same model applied to the full tomogram.
    """
    cfg = (cfg or PredictConfig()).validate()
    even, odd = (np.asarray(h) for h in halves)
    if even.shape != odd.shape:
        raise SCNetInputError(f"The even and odd half tomograms differ in shape ({even.shape} vs {odd.shape}).")
    out = np.empty(even.shape, np.float32)
    _predict_into(_load(model_path, cfg), model_path, even, out, cfg, [even, odd], ("the even half", "the odd half"),
                  "the even half", "the prediction", ref=stats_from)  # a data-set model: stats of stats_from, else the even half
    return out


def predict_file(model_path: str, in_mrc: str, out_mrc: str, cfg: PredictConfig = None,
                 force: bool = False, halves=None, stats_from: str = None) -> None:
    """Denoise an MRC file into a float32 MRC with the input's voxel size and origin (bounded memory).

    The output is written as ``OUT.partial-<pid>`` and renamed when complete; a non-finite
    predicted voxel stops the run and no output is left.  ``force``: apply a model trained at
    another voxel size (a warning instead of an error).  ``halves``: the (even, odd) half-tomogram
    files of ``in_mrc``; a model trained in the halves mode then writes the mean of its predictions
    of the two halves (:func:`predict_halves_array`, streamed), any other model ignores them.
    A model trained on a data set normalises ``in_mrc`` by its own statistics, or by those of
    ``stats_from`` (the full tomogram when ``in_mrc`` is one of its half maps); others ignore it.
    """
    cfg = (cfg or PredictConfig()).validate()
    loaded = _load(model_path, cfg)
    vol, info = read_volume(in_mrc, mmap=True)
    check_sampling(loaded[2], info.voxel_size, in_mrc, force)
    use_ref = bool(stats_from and loaded[2].get("tomograms"))  # only a data-set model reads another's statistics
    ref = read_volume(stats_from, mmap=True)[0] if use_ref else vol
    if use_ref and ref.shape != vol.shape:
        raise SCNetInputError(f"--stats-from {stats_from} has shape {ref.shape}, {in_mrc} has {vol.shape}: give the "
                              f"full tomogram of that half map.")
    hvols = None
    if halves and uses_halves(loaded[2]):
        hvols = [read_volume(h, mmap=True)[0] for h in halves]
        distinct_halves(halves[0], halves[1], hvols[0], hvols[1], "--halves")
    with VolumeWriter(out_mrc, vol.shape, info.voxel_size, info.origin) as w:
        _predict_into(loaded, model_path, vol, w.data, cfg, hvols, halves, in_mrc, out_mrc,
                      ref=ref, ref_name=stats_from if use_ref else "itself")


def predict_volumes(model_path: str, volume, out, cfg: PredictConfig = None, halves=None, name: str = "the tomogram",
                    out_name: str = "the output") -> None:
    """Denoise the array ``volume`` (already checked where it entered) into ``out`` (an array or a
    :class:`scnet.io.VolumeWriter`'s ``data``): the same rule as :func:`predict_file` -- a halves-mode
    model given ``halves`` (arrays) predicts the mean of its predictions of the two halves, a split-mode
    model the even and the odd rows apart, any other model ``volume`` itself."""
    cfg = (cfg or PredictConfig()).validate()
    loaded = _load(model_path, cfg)
    given = halves is not None
    hv = list(halves) if given and uses_halves(loaded[2]) else None
    _predict_into(loaded, model_path, volume, out, cfg, hv, ("the even half", "the odd half") if given else None,
                  name, out_name)


def _load(model_path: str, cfg: PredictConfig):
    from .device import resolve_device, set_threads
    set_threads()
    return load_model(model_path, resolve_device(cfg.device))


def _predict_into(loaded, model_path, vol, out, cfg, halves, halves_names, in_name, out_name, ref=None,
                  ref_name="itself") -> None:
    """The one prediction core of files and arrays: ``out`` <- the model on ``vol`` (or the mean over
    ``halves``, or its even/odd rows apart), de-normalised; each row checked finite, the whole not constant."""
    model, norm, ck = loaded
    ref = vol if ref is None else ref
    norm, own = input_normalisation(ck, norm, ref)
    if own and cfg.progress:
        print(f"[scnet predict] model trained on {len(ck['tomograms'])} tomograms: {in_name} normalised by the "
              f"statistics of {ref_name} (mean {norm.mean:.4g}, std {norm.std:.4g})", file=sys.stderr, flush=True)
    # (name, rows of the output along Y, volume, weight): the input, its halves (mean), or its even/odd rows
    sources = [(f"{in_name} {'even' if r.start == 0 else 'odd'} rows" if r.step else in_name, r, s, 1.0)
               for r, s in _row_sources(ck, vol)]
    if halves:
        sources = []
        for h, hv in zip(halves_names, halves):
            if hv.shape != vol.shape:
                raise SCNetInputError(f"Half tomogram {h} has shape {hv.shape}, {in_name} has {vol.shape}: give the "
                                      f"half maps of that tomogram.")
            sources.append((h, slice(None), hv, 1.0 / len(halves)))
        if cfg.progress:
            print(f"[scnet predict] halves-mode model: {out_name} = mean of the predictions of {halves_names[0]} "
                  f"and {halves_names[1]}", file=sys.stderr, flush=True)
    elif halves_names and cfg.progress and not uses_halves(ck):
        print("[scnet predict] the model was not trained in the halves mode: the half maps are not used",
              file=sys.stderr, flush=True)
    taps_in, taps_out = row_filters(ck)
    lo, hi = [np.inf], [-np.inf]
    for k, (name, rows_of, src, weight) in enumerate(sources):
        def sink(z0, z1, rows, k=k, name=name, rows_of=rows_of, weight=weight):
            rows = norm.invert(rows)
            if not np.isfinite(rows).all():
                raise SCNetInputError(f"The prediction of {name} holds NaN/Inf (z rows {z0}..{z1}); {out_name} "
                                      f"was not written. The model {model_path} is unusable: train it again.")
            lo[0], hi[0] = min(lo[0], float(rows.min())), max(hi[0], float(rows.max()))
            if weight != 1.0:
                rows *= np.float32(weight)
            if k == 0 or rows_of.step:  # the first source, or its own rows
                out[z0:z1, rows_of] = rows
            else:
                out[z0:z1] += rows
            if z1 % 64 < z1 - z0 or z1 == src.shape[0]:
                _drop_pages(out)  # written rows go to disk, not into our resident set
        predict_stream(model, norm, src, sink, cfg, taps_in)
    if lo[0] == hi[0]:
        raise SCNetInputError(f"The prediction with {model_path} is the same value ({lo[0]:g}) in every voxel; "
                              f"{out_name} was not written. The model is unusable: train it again.")
    if taps_out is not None:  # along Y, z-row block by block (every block holds whole rows)
        for z0 in range(0, vol.shape[0], 16):
            out[z0:z0 + 16] = filter_rows(out[z0:z0 + 16], taps_out)
        _drop_pages(out)
