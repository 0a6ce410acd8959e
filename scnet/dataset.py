"""Training volumes: one tomogram, or a data set of several trained as ONE model (``scnet train --tomograms``).

A facility denoises a data set -- tens of tomograms of one sample -- not one volume.  A data-set training
draws its patches from every tomogram (:class:`scnet.data.DatasetSampler`), each tomogram normalised on
its own (its own robust mean and std, :mod:`scnet.data`), a validation region held out in each and the
automatic stop on the mean of their validation losses (:mod:`scnet.train`).

* :func:`check_dataset` -- every check BEFORE any work, each error naming the tomogram: files present and
  readable, a prior and halves on the tomogram's grid, both halves or neither, one voxel size for all
  (``rules.SAMPLING_TOLERANCE``), no NaN/Inf and no constant volume (every voxel read once, by slabs of
  memory maps), two different halves, patches that fit.  How the modes combine: halves for EVERY tomogram -> ``auto`` = the
  halves mode; halves for none -> ``auto`` = the slab mode, its rows whitened for the mean of the
  tomograms' measured row-noise correlations (:func:`scnet.rows.combine_checks`: refused where the
  tomograms' rows share noise differently); halves for some only -> refused for ``auto``/``halves`` (name
  the ones without), ignored for an explicit ``single``/``split``/``slab``.
* :func:`training_volume` -- one tomogram's normalised training arrays (noisy, prior[, even, odd]), the
  same for one tomogram and for a data set (the split mode: its even and odd rows, :mod:`scnet.split`;
  the slab mode: its rows whitened along Y first where they share noise, :mod:`scnet.rows`).
* :func:`prepare_dataset` -- one tomogram at a time (RAM: one tomogram, as a single training): read,
  prior made where none is given, normalised, written to ``.npy`` files in a scratch folder and read back
  as memory maps, so the training never holds the volumes of the data set in RAM.
* :func:`input_normalisation` -- a data-set model normalises each tomogram it denoises by that
  tomogram's own statistics (as in its training); a one-tomogram model by the stored ones (as before).
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from . import rows, rules, split
from .data import Normalisation, check_same_shape, fit_normalisation, robust_stats
from .errors import SCNetInputError
from .io import check_volume, distinct_halves, read_info, read_volume, same_grid
from .manifest import TomogramEntry

log = logging.getLogger(__name__)

SCRATCH = ".scnet-data"   # the data set's normalised volumes (memory maps) inside --output-dir, removed at the end


@dataclass
class TrainingVolume:
    """One tomogram ready to train on: normalised float32 ``arrays`` (noisy, prior[, even, odd]) in RAM or
    memory maps, its :class:`Normalisation`, its name (None for a one-tomogram training) and prior source."""

    arrays: Tuple[np.ndarray, ...]
    norm: Normalisation
    name: Optional[str] = None
    prior_source: str = "given"

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(int(n) for n in self.arrays[0].shape)

    def record(self) -> dict:
        """What ``model.pt`` and ``checkpoint.pt`` keep of a data set's tomogram."""
        return {"name": self.name, "shape": list(self.shape), "normalisation": self.norm.to_dict()}


@dataclass
class DatasetPlan:
    """What :func:`check_dataset` found: the mode for the whole set, the voxel size, the row checks (each
    tomogram's, and for the slab mode their combination with the rows it hides and whitens)."""

    mode: str
    voxel_size: float
    checks: List[Optional[dict]] = field(default_factory=list)
    shapes: List[tuple] = field(default_factory=list)
    row_check: Optional[dict] = None
    gap: Optional[int] = None
    whiten: Optional[list] = None


def _say(msg: str) -> None:
    print(f"[scnet train] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- one tomogram
def split_inputs(noisy, prior, cfg, check, say: Optional[Callable[[str], None]] = _say, name: str = "the tomogram"):
    """The split mode's training data (:mod:`scnet.split`): the rows' mean (normalisation and patch
    positions), the prior's even rows and the (even rows, odd rows) pair, all (Z, Y // 2, X)."""
    even, odd = split.split_rows(noisy)
    for why in rules.patch_volume_errors(cfg.patch_size, even.shape, f"the even rows of {name}"):
        raise SCNetInputError(why)
    note = (f"split mode: even and odd rows along Y (the tilt axis), {even.shape} each; the rows' noise "
            f"correlation at lag 1 {check['rho1']:.3f} (independent rows ~0)")
    if say:
        say(note if name == "the tomogram" else f"{name}: {note}")
    if rows.rows_share_noise(check):
        warn = (f"neighbouring rows share noise (correlation {check['rho1']:.3f} at lag 1, {check['rho2']:.3f} at "
                "lag 2): they were mixed before the reconstruction (interpolated alignment, binning, a tilt axis not "
                "along Y), so the split mode's two parts are not independent and it copies that noise as a row "
                "texture; use the slab mode (what auto picks for such rows) or the halves mode")
        (say or log.warning)(f"WARNING: {'' if name == 'the tomogram' else name + ': '}{warn}")
    return 0.5 * (even + odd), split.split_rows(prior)[0], (even, odd)


def training_volume(noisy, prior, halves, mode: str, cfg, check=None, name: Optional[str] = None,
                    say: Optional[Callable[[str], None]] = _say, prior_source: str = "given",
                    checked: bool = False, whiten: Optional[Sequence[float]] = None) -> TrainingVolume:
    """One tomogram's training arrays in ``mode``: normalised on its own (:func:`scnet.data.fit_normalisation`);
    the halves mode keeps the halves, the split mode makes them from the rows, the single and slab modes drop
    them.  ``checked``: every voxel of the halves was checked where they entered (read_volume, check_dataset).
    ``whiten`` (the slab mode): the rows' noise correlations; noisy and prior are whitened along Y for them
    before the normalisation (:func:`scnet.rows.row_filter_taps`), as the prediction does."""
    if mode == "split":
        noisy, prior, halves = split_inputs(noisy, prior, cfg, check, say, name or "the tomogram")
    elif mode != "halves":
        halves = None
    if whiten:
        taps = rows.row_filter_taps(whiten, -0.5)
        noisy, prior = rows.filter_rows(noisy, taps), rows.filter_rows(prior, taps)
    norm = fit_normalisation(noisy, prior)
    arrays = (norm.apply(noisy), norm.apply_prior(prior))
    for half, what in zip(halves or (), ("even half tomogram", "odd half tomogram")):
        if not checked:  # arrays handed to the API enter here (the noisy volume was checked by the caller)
            check_volume(half, what if name is None else f"{name}: {what}")
        check_same_shape(noisy, half, "noisy volume", what)
        arrays += (norm.apply(half),)
    return TrainingVolume(arrays, norm, name, prior_source)


# --------------------------------------------------------------------------- a data set: checks
def _named(name: str, fn, *args, **kw):
    """``fn(...)``, its :class:`SCNetInputError` prefixed with the tomogram's name."""
    try:
        return fn(*args, **kw)
    except SCNetInputError as exc:
        raise SCNetInputError(f"Tomogram {name}: {exc}") from None


def check_dataset(entries: Sequence[TomogramEntry], cfg, say: Optional[Callable[[str], None]] = _say) -> DatasetPlan:
    """Every check of a data set before any work (module docstring); errors name the tomogram."""
    if not entries:
        raise SCNetInputError("The data set holds no tomogram: list at least one.")
    names = [e.name for e in entries]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup or not all(names):
        raise SCNetInputError(f"Tomogram names must be unique and not empty (repeated: {', '.join(dup) or 'none'}).")
    infos = []
    for e in entries:  # headers first: cheap, and the most common mistakes
        if bool(e.even) != bool(e.odd):
            raise SCNetInputError(f"Tomogram {e.name}: only the {'even' if e.even else 'odd'} half is given; give "
                                  f"both the even and the odd half tomogram, or neither.")
        info = _named(e.name, read_info, e.noisy)
        if e.even:
            _named(e.name, distinct_halves, e.even, e.odd)  # one file twice
        for path, what in ((e.prior, "Prior"), (e.even, "Even half"), (e.odd, "Odd half")):
            if path:  # same shape and voxel size as its noisy tomogram
                _named(e.name, same_grid, e.noisy, info, path, _named(e.name, read_info, path), what)
        infos.append(info)
    ref = infos[0].voxel_size
    for e, info in zip(entries, infos):
        why = rules.sampling_mismatch(ref, info.voxel_size)
        if why:
            raise SCNetInputError(f"Tomogram {e.name}: voxel size {info.voxel_size:.4g} A/px, but {entries[0].name} "
                                  f"has {ref:.4g} A/px; one model trains on one sampling: bin the tomograms to one "
                                  f"voxel size, or train them apart.")
    has = [bool(e.even and e.odd) for e in entries]
    if any(has) and not all(has) and cfg.mode in ("auto", "halves"):
        lacking = [e.name for e, h in zip(entries, has) if not h]
        raise SCNetInputError(f"Tomograms {', '.join(lacking)} have no even/odd halves while the others have: a "
                              f"data set trains in one mode. Give the halves of every tomogram, of none, or choose "
                              f"--mode single or split (the halves are then not used).")
    for e in entries:  # every voxel of every file, by slabs of a memory map
        maps = {}
        for path in e.files():
            maps[path], _ = _named(e.name, read_volume, path, mmap=True, check=False)
            _named(e.name, check_volume, maps[path], path)
        if e.even:  # a copy of one half as the other would learn the identity
            _named(e.name, distinct_halves, e.even, e.odd, maps[e.even], maps[e.odd])
        del maps
    checks = [None] * len(entries)
    if rows.needs_check(cfg, all(has)):
        for k, e in enumerate(entries):
            vol, _ = read_volume(e.noisy, mmap=True, check=False)
            checks[k] = rows.row_check(vol)
            del vol
    mode = _dataset_mode(cfg, all(has), checks, names)
    combined, gap, whiten = None, None, None
    if mode == "slab":
        if cfg.row_gap >= 0:
            combined = rows.combine_checks([None] * len(entries), names)  # given: not combined, not refused
            combined = max((c for c in checks if c["rho"]), key=lambda c: c["gap"], default=combined)
        else:
            combined = rows.combine_checks(checks, names)
        gap, whiten = rows.slab_rows(cfg, combined)
    for e, info in zip(entries, infos):
        shape = info.shape if mode != "split" else (info.shape[0], info.shape[1] // 2, info.shape[2])
        for why in rules.patch_volume_errors(cfg.patch_size, shape, f"tomogram {e.name}"):
            raise SCNetInputError(why)
    return DatasetPlan(mode=mode, voxel_size=ref, checks=checks, shapes=[i.shape for i in infos],
                       row_check=combined, gap=gap, whiten=whiten)


def _dataset_mode(cfg, has_halves: bool, checks, names) -> str:
    """One mode for the data set: ``auto`` without halves picks each tomogram's (:func:`scnet.rows.auto_mode`)
    and refuses a set whose tomograms need different ones (rows that share noise in some only)."""
    if not (cfg.mode == "auto" and not has_halves):
        return cfg.resolved_mode(has_halves)
    picked = [cfg.resolved_mode(False, c) for c in checks]
    if len(set(picked)) > 1:
        by = {m: [n for n, p in zip(names, picked) if p == m] for m in set(picked)}
        raise SCNetInputError(
            f"Tomograms {', '.join(by['slab'])} have rows that share noise (interpolated alignment; correlation of "
            f"neighbouring rows at least {rows.SLAB_RHO}) and {', '.join(by['split'])} have not: auto would train "
            f"the slab mode for the first and the split mode for the others, and one model trains in one mode. "
            f"Train them apart, or choose --mode slab for all.")
    return picked[0]


# --------------------------------------------------------------------------- a data set: preparation
def _spill(vol: TrainingVolume, folder: str, k: int) -> TrainingVolume:
    """``vol``'s arrays written to ``folder`` as ``.npy`` and read back as read-only memory maps."""
    maps = []
    for i, a in enumerate(vol.arrays):
        path = os.path.join(folder, f"{k:04d}_{i}.npy")
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=a.shape)
        mm[...] = a
        mm.flush()
        del mm
        maps.append(np.load(path, mmap_mode="r"))
    return TrainingVolume(tuple(maps), vol.norm, vol.name, vol.prior_source)


def prepare_dataset(entries: Sequence[TomogramEntry], plan: DatasetPlan, cfg, folder: str, prior_from: str,
                    say: Optional[Callable[[str], None]] = _say) -> List[TrainingVolume]:
    """Each tomogram's :func:`training_volume`, one at a time, kept as memory maps in ``folder`` (emptied first)."""
    from .selfprior import STAND_IN, describe_source, make_prior, prior_needed
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    used = prior_needed(cfg.weights(plan.mode))
    out, nbytes = [], 0
    for k, e in enumerate(entries):
        noisy, _ = read_volume(e.noisy, check=False)  # every voxel was checked by check_dataset
        halves = [read_volume(p, check=False)[0] for p in (e.even, e.odd)] if plan.mode == "halves" else None
        if e.prior:
            prior, source = read_volume(e.prior, check=False)[0], f"given ({e.prior})"
        else:
            method = prior_from if used else STAND_IN
            source = describe_source(method, used)
            if say:
                say(f"{e.name}: no prior, prior {source}")
            prior = make_prior(noisy, method, cfg.device)
        vol = training_volume(noisy, prior, halves, plan.mode, cfg, plan.checks[k], e.name, say, source, checked=True,
                              whiten=plan.whiten)
        del noisy, prior, halves
        vol = _spill(vol, folder, k)
        nbytes += sum(a.nbytes for a in vol.arrays)
        out.append(vol)
        if say:
            say(f"{e.name} ({k + 1}/{len(entries)}): {vol.shape} normalised (mean {vol.norm.mean:.4g}, std "
                f"{vol.norm.std:.4g})")
    if say:
        say(f"data set of {len(out)} tomograms: {nbytes / 2 ** 20:.0f} MB of normalised volumes in {folder} "
            f"(memory maps; removed at the end)")
    return out


def record_differences(old: Optional[list], new: Optional[list]) -> List[str]:
    """What differs between the tomograms a checkpoint was trained on and the ones given now (resume)."""
    if not old and not new:
        return []
    if not old or not new:
        return ["data: the checkpoint was trained on " + ("one tomogram" if not old else "a data set (--tomograms)")
                + ", now " + ("a data set" if not old else "one tomogram") + " is given"]
    if [t["name"] for t in old] != [t["name"] for t in new]:
        return [f"tomograms: {', '.join(t['name'] for t in old)} in the checkpoint, "
                f"{', '.join(t['name'] for t in new)} now"]
    diffs = []
    for a, b in zip(old, new):
        if list(a["shape"]) != list(b["shape"]):
            diffs.append(f"tomogram {a['name']}: shape {tuple(a['shape'])} in the checkpoint, {tuple(b['shape'])} now")
        elif any(not np.isclose(float(a["normalisation"][k]), float(b["normalisation"][k]), rtol=1e-5, atol=1e-8)
                 for k in ("mean", "std", "prior_a", "prior_b")):
            diffs.append(f"tomogram {a['name']}: its volumes' statistics differ (other files)")
    return diffs


# --------------------------------------------------------------------------- prediction
def own_normalisation(volume, mode: Optional[str] = None, whiten: Optional[Sequence[float]] = None) -> Normalisation:
    """A tomogram normalised by its own robust mean and std (a data-set model's prediction; works on memory
    maps); in the split mode, of the mean of its even and odd rows along Y, as in the training; in the slab
    mode with ``whiten``, of the volume whitened along Y: the training's subsample (:func:`scnet.data.subsample`)
    of it, every row of the sampled Z and X whitened, then sampled along Y (the filter along Y commutes)."""
    if whiten:
        step = max(1, int(np.ceil((int(np.prod(volume.shape)) / 2_000_000) ** (1 / 3))))
        w = rows.filter_rows(np.asarray(volume[::step, :, ::step], np.float32), rows.row_filter_taps(whiten, -0.5))
        mean, std = robust_stats(None, sample=np.asarray(w[:, ::step], np.float64).ravel())
        return Normalisation(mean=mean, std=std)
    if mode != "split":
        mean, std = robust_stats(volume)
        return Normalisation(mean=mean, std=std)
    n = volume.shape[1] // 2
    even, odd = volume[:, 0:2 * n:2], volume[:, 1:2 * n:2]
    step = max(1, int(np.ceil((even.size / 2_000_000) ** (1 / 3))))  # the subsample of scnet.data.subsample

    def sampled(v):
        return np.asarray(v[::step, ::step, ::step], np.float32)
    sample = (np.float32(0.5) * (sampled(even) + sampled(odd))).astype(np.float64).ravel()
    mean, std = robust_stats(None, sample=sample)
    return Normalisation(mean=mean, std=std)


def input_normalisation(ck: dict, norm: Normalisation, volume) -> Tuple[Normalisation, bool]:
    """The normalisation a model applies to ``volume``: a data-set model (``tomograms`` in ``model.pt``) the
    volume's own (:func:`own_normalisation`), any other the stored ``norm``.  Returns (it, own or not)."""
    if not ck.get("tomograms"):
        return norm, False
    return own_normalisation(volume, ck.get("mode"), (ck.get("row_noise") or {}).get("rho")), True

