"""Training volumes: one tomogram, or a data set of several trained as ONE model (``scnet train --tomograms``).

A facility denoises a data set -- tens of tomograms of one sample -- not one volume.  A data-set training
draws its patches from every tomogram (:class:`scnet.data.DatasetSampler`), each tomogram normalised on
its own (its own robust mean and std, :mod:`scnet.data`), a validation region held out in each and the
automatic stop on the mean of their validation losses (:mod:`scnet.train`).

* :func:`check_dataset` -- every check BEFORE any work, each error naming the tomogram: files present and
  readable, a prior and halves on the tomogram's grid, both halves or neither, one voxel size for all
  (``rules.SAMPLING_TOLERANCE``), no NaN/Inf and no constant volume (every voxel read once, by slabs of
  memory maps), two different halves, patches that fit.  How the modes combine: halves for EVERY tomogram -> ``auto`` = the
  halves mode; halves for none -> ``auto`` = split when every tomogram's rows pass the split check, else
  single; halves for some only -> refused for ``auto``/``halves`` (name the ones without), ignored for an
  explicit ``single``/``split``.
* :func:`training_volume` -- one tomogram's normalised training arrays (noisy, prior[, even, odd]), the
  same for one tomogram and for a data set (the split mode: its even and odd rows, :mod:`scnet.split`).
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

from . import rules, split
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
    """What :func:`check_dataset` found: the mode for the whole set, the voxel size, the row checks."""

    mode: str
    voxel_size: float
    checks: List[Optional[dict]] = field(default_factory=list)
    shapes: List[tuple] = field(default_factory=list)


def _say(msg: str) -> None:
    print(f"[scnet train] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- one tomogram
def split_inputs(noisy, prior, cfg, check, say: Optional[Callable[[str], None]] = _say, name: str = "the tomogram"):
    """The split mode's training data (:mod:`scnet.split`): the rows' mean (normalisation and patch
    positions), the prior's even rows and the (even rows, odd rows) pair, all (Z, Y // 2, X)."""
    even, odd = split.split_rows(noisy)
    for why in rules.patch_volume_errors(cfg.patch_size, even.shape, f"the even rows of {name}"):
        raise SCNetInputError(why)
    note = (f"split mode: even and odd rows along Y (the tilt axis), {even.shape} each; flatness of the rows' "
            f"noise spectrum {check['flatness']:.2f} (independent rows ~1, mixed rows << 1)")
    if say:
        say(note if name == "the tomogram" else f"{name}: {note}")
    if not check["ok"]:
        warn = (f"the rows' noise spectrum is not flat ({check['flatness']:.2f} < {split.ROW_CHECK_MIN}): the rows "
                "were mixed before the reconstruction (interpolated alignment, tilt axis not along Y, filtering), so "
                "the split mode's two parts share noise and it denoises less; prefer the halves mode (even/odd tilt "
                "reconstructions) or the single mode")
        (say or log.warning)(f"WARNING: {'' if name == 'the tomogram' else name + ': '}{warn}")
    return 0.5 * (even + odd), split.split_rows(prior)[0], (even, odd)


def training_volume(noisy, prior, halves, mode: str, cfg, check=None, name: Optional[str] = None,
                    say: Optional[Callable[[str], None]] = _say, prior_source: str = "given") -> TrainingVolume:
    """One tomogram's training arrays in ``mode``: normalised on its own (:func:`scnet.data.fit_normalisation`);
    the halves mode keeps the halves, the split mode makes them from the rows, the single mode drops them."""
    if mode == "split":
        noisy, prior, halves = split_inputs(noisy, prior, cfg, check, say, name or "the tomogram")
    elif mode != "halves":
        halves = None
    norm = fit_normalisation(noisy, prior)
    arrays = (norm.apply(noisy), norm.apply_prior(prior))
    for half, what in zip(halves or (), ("even half tomogram", "odd half tomogram")):
        check_volume(half, what if name is None else f"{name}: {what}")  # the noisy volume was checked already
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
    if cfg.mode in ("auto", "split") and not all(has):
        for k, e in enumerate(entries):
            vol, _ = read_volume(e.noisy, mmap=True, check=False)
            checks[k] = split.row_check(vol)
            del vol
    mode = cfg.resolved_mode(all(has), all(c is not None and c["ok"] for c in checks))
    if cfg.mode == "auto" and not all(has) and mode == "single" and say:
        failed = [e.name for e, c in zip(entries, checks) if not c["ok"]]
        say(f"auto mode: single (the rows of {', '.join(failed)} do not pass the split check)")
    for e, info in zip(entries, infos):
        shape = info.shape if mode != "split" else (info.shape[0], info.shape[1] // 2, info.shape[2])
        for why in rules.patch_volume_errors(cfg.patch_size, shape, f"tomogram {e.name}"):
            raise SCNetInputError(why)
    return DatasetPlan(mode=mode, voxel_size=ref, checks=checks, shapes=[i.shape for i in infos])


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
        vol = training_volume(noisy, prior, halves, plan.mode, cfg, plan.checks[k], e.name, say, source)
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
def own_normalisation(volume, mode: Optional[str] = None) -> Normalisation:
    """A tomogram normalised by its own robust mean and std (a data-set model's prediction; works on memory
    maps); in the split mode, of the mean of its even and odd rows along Y, as in the training."""
    if mode != "split":
        mean, std = robust_stats(volume)
        return Normalisation(mean=mean, std=std)
    n = volume.shape[1] // 2
    even, odd = volume[:, 0:2 * n:2], volume[:, 1:2 * n:2]
    step = max(1, int(np.ceil((even.size / 2_000_000) ** (1 / 3))))  # the subsample of scnet.data.subsample

    def rows(v):
        return np.asarray(v[::step, ::step, ::step], np.float32)
    sample = (np.float32(0.5) * (rows(even) + rows(odd))).astype(np.float64).ravel()
    mean, std = robust_stats(None, sample=sample)
    return Normalisation(mean=mean, std=std)


def input_normalisation(ck: dict, norm: Normalisation, volume) -> Tuple[Normalisation, bool]:
    """The normalisation a model applies to ``volume``: a data-set model (``tomograms`` in ``model.pt``) the
    volume's own (:func:`own_normalisation`), any other the stored ``norm``.  Returns (it, own or not)."""
    if not ck.get("tomograms"):
        return norm, False
    return own_normalisation(volume, ck.get("mode")), True

