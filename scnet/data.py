"""Training data for SC-Net (paper §4.2, §5.1): normalisation, patches, augmentation.

Common intensity scale (why): the smoothing loss (eq. 5) matches Sobel
magnitudes of the output to those of the prior, so the prior's intensity
scale becomes the output's.  Z-scoring noisy and prior separately gives the
prior unit variance although its signal is only a fraction of the noisy
volume's variance, and the network then inflates contrast.  Here the prior
is first fitted to the noisy volume by least squares (``a * prior + b ~
noisy``, on a subsample), then both are normalised with the NOISY volume's
robust mean/std.  The output therefore lives in the noisy volume's units and
is de-normalised with the same two numbers.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import SCNetInputError
from .io import check_volume, drop_pages

log = logging.getLogger(__name__)


@dataclass
class Normalisation:
    """``normalised = (raw - mean) / std``; the prior is mapped first by ``prior_a * p + prior_b``."""

    mean: float
    std: float
    prior_a: float = 1.0
    prior_b: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def apply(self, v: np.ndarray) -> np.ndarray:
        return ((np.asarray(v, np.float32) - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def apply_prior(self, p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, np.float32) * np.float32(self.prior_a) + np.float32(self.prior_b)
        return self.apply(p)

    def invert(self, v: np.ndarray) -> np.ndarray:
        return (np.asarray(v, np.float32) * np.float32(self.std) + np.float32(self.mean)).astype(np.float32)


def subsample(v: np.ndarray, max_samples: int = 2_000_000) -> np.ndarray:
    """A strided subsample of about ``max_samples`` voxels (works on memory maps)."""
    step = max(1, int(np.ceil((v.size / max_samples) ** (1 / 3))))
    return np.asarray(v[::step, ::step, ::step], dtype=np.float64).ravel()


def robust_stats(v: np.ndarray, clip: float = 0.1, sample: Optional[np.ndarray] = None) -> Tuple[float, float]:
    """Mean and std of a subsample (of ``v``, or ``sample`` when already drawn) after clipping to the
    [clip, 100-clip] percentiles."""
    s = subsample(v) if sample is None else np.asarray(sample, np.float64).ravel()
    lo, hi = np.percentile(s, [clip, 100 - clip])
    s = np.clip(s, lo, hi)
    std = float(s.std())
    if not np.isfinite(std) or std <= 0:
        std = float(np.asarray(s if v is None else v, np.float64).std())
    if std <= 0:
        raise SCNetInputError("The noisy volume is constant: there is nothing to denoise.")
    return float(s.mean()), std


def fit_normalisation(noisy: np.ndarray, prior: Optional[np.ndarray] = None,
                      common_scale: bool = True) -> Normalisation:
    """Robust z-score stats of ``noisy`` and the least-squares map of ``prior`` onto ``noisy``."""
    mean, std = robust_stats(noisy)
    a, b = 1.0, 0.0
    if prior is not None:
        n, p = subsample(noisy), subsample(prior)
        if common_scale:
            pm, nm = p.mean(), n.mean()
            var = float(((p - pm) ** 2).mean())
            if var <= 0:
                raise SCNetInputError("The prior (smoothed) volume is constant: re-create it.")
            a = float(((p - pm) * (n - nm)).mean() / var)
            if a <= 0:
                log.warning("prior anti-correlates with the noisy volume (slope %.3g); using its own z-score", a)
                pmean, pstd = robust_stats(prior)
                a = std / pstd
                b = mean - a * pmean
            else:
                b = float(nm - a * pm)
        else:  # separate z-scores (the public code's behaviour; for ablations)
            pmean, pstd = robust_stats(prior)
            a = std / pstd
            b = mean - a * pmean
    return Normalisation(mean=mean, std=std, prior_a=a, prior_b=b)


def check_pair(noisy: np.ndarray, prior: np.ndarray, noisy_name: str = "noisy volume",
               prior_name: str = "prior volume") -> None:
    """Validate a (noisy, prior) training pair where it enters: every voxel of both once, then the shapes;
    raise :class:`SCNetInputError`."""
    check_volume(noisy, noisy_name)
    check_volume(prior, prior_name)
    check_same_shape(noisy, prior, noisy_name, prior_name)


def check_same_shape(noisy: np.ndarray, prior: np.ndarray, noisy_name: str = "noisy volume",
                     prior_name: str = "prior volume") -> None:
    """Two volumes of one training (noisy and prior or a half) must share their grid (voxels already checked)."""
    if tuple(noisy.shape) != tuple(prior.shape):
        raise SCNetInputError(
            f"{noisy_name} has shape {tuple(noisy.shape)} but {prior_name} has shape {tuple(prior.shape)}: "
            "they must be reconstructions of the same tilt series with the same size and thickness.")


def split_train_val(shape, val_fraction: float, avoid: Optional[int] = None) -> Tuple[int, slice, slice]:
    """Hold out the last ``val_fraction`` of the longest axis (other than ``avoid``, an axis the validation
    patches need whole).  Returns (axis, train_slice, val_slice)."""
    if not 0.0 <= val_fraction < 0.5:
        raise SCNetInputError(f"val_fraction must be in [0, 0.5), got {val_fraction}.")
    axis = int(np.argmax([-1 if a == avoid else n for a, n in enumerate(shape)]))
    n = shape[axis]
    nval = int(round(n * val_fraction))
    if nval == 0:
        return axis, slice(0, n), slice(0, 0)
    return axis, slice(0, n - nval), slice(n - nval, n)


def take(v: np.ndarray, axis: int, sl: slice) -> np.ndarray:
    idx = [slice(None)] * 3
    idx[axis] = sl
    return v[tuple(idx)]


def pad_to(v: np.ndarray, size: int, name: str = "volume") -> np.ndarray:
    """Reflect-pad every axis shorter than ``size`` up to ``size`` (logged, per axis)."""
    pads = []
    for ax, n in enumerate(v.shape):
        extra = max(0, size - n)
        if extra and name:
            log.warning("%s: axis %s has %d voxels < patch size %d; reflect-padding it to %d",
                        name, "ZYX"[ax], n, size, size)
        pads.append((extra // 2, extra - extra // 2))
    if not any(p[0] or p[1] for p in pads):
        return v
    mode = "reflect" if min(v.shape) > 1 else "edge"
    return np.pad(v, pads, mode=mode)


class PatchSampler:
    """Random ``patch_size³`` crops of (noisy, prior[, *extra]) with identical flips / rot90 (§5.1).

    Volumes are expected already normalised (float32) and of one shape; ``extra`` holds more
    volumes cropped at the same place (the even/odd halves in the halves mode).  ``rng`` is a
    numpy Generator whose state is checkpointed for exact resume.
    """

    def __init__(self, noisy: np.ndarray, prior: np.ndarray, patch_size: int, augment: bool = True,
                 name: str = "training region", extra: Sequence[np.ndarray] = (), keep_y: bool = False):
        for v in (prior,) + tuple(extra):
            if v.shape != noisy.shape:
                raise SCNetInputError(f"{name}: volume shapes differ ({noisy.shape} vs {v.shape})")
        self.noisy = pad_to(noisy, patch_size, name)
        self.prior = pad_to(prior, patch_size, None)
        self.extra = [pad_to(v, patch_size, None) for v in extra]
        self.p = int(patch_size)
        self.augment = augment
        self.planes = ROT_PLANES_KEEP_Y if keep_y else ROT_PLANES  # keep_y: Y stays Y (the slab mode's axis)

    def crop(self, rng: np.random.Generator) -> List[np.ndarray]:
        """One random crop of every volume at the same place, augmented alike: [noisy, prior, *extra]."""
        p = self.p
        z, y, x = (int(rng.integers(0, n - p + 1)) for n in self.noisy.shape)
        crops = [v[z:z + p, y:y + p, x:x + p] for v in [self.noisy, self.prior] + self.extra]
        if self.augment:
            crops = augment_all(crops, rng, self.planes)
        return [np.ascontiguousarray(c) for c in crops]

    def sample(self, rng: np.random.Generator, batch: int) -> Tuple[np.ndarray, ...]:
        """``batch`` crops of every volume, each stacked to (batch, 1, p, p, p): (noisy, prior, *extra)."""
        return _stack([self.crop(rng) for _ in range(batch)])


def _stack(crops: Sequence[Sequence[np.ndarray]]) -> Tuple[np.ndarray, ...]:
    return tuple(np.stack(vols)[:, None] for vols in zip(*crops))


class DatasetSampler:
    """Patches of several tomograms (a data set trained as one model): each patch comes from a tomogram
    drawn at random in proportion to the size of its training region, then from a random place of it
    (:meth:`PatchSampler.crop`).  The volumes may be memory maps: only the crops are read, and the pages
    they touched are released after each batch, so the resident memory holds one batch, not the data set
    (the pages stay in the system's file cache).  With one tomogram it is that tomogram's
    :class:`PatchSampler` (no extra random draw)."""

    def __init__(self, samplers: Sequence[PatchSampler]):
        if not samplers:
            raise SCNetInputError("A data set needs at least one tomogram to draw patches from.")
        self.samplers = list(samplers)
        sizes = np.array([float(np.prod(s.noisy.shape)) for s in self.samplers])
        self.weights = sizes / sizes.sum()
        self._mapped = [v for s in self.samplers for v in [s.noisy, s.prior] + s.extra if isinstance(v, np.memmap)]

    def sample(self, rng: np.random.Generator, batch: int) -> Tuple[np.ndarray, ...]:
        if len(self.samplers) == 1:
            out = self.samplers[0].sample(rng, batch)
        else:
            picks = rng.choice(len(self.samplers), size=batch, p=self.weights)
            out = _stack([self.samplers[int(k)].crop(rng) for k in picks])
        for v in self._mapped:
            drop_pages(v)
        return out


ROT_PLANES = ((0, 1), (0, 2), (1, 2))
ROT_PLANES_KEEP_Y = ((0, 2),)


def augment_all(crops: Sequence[np.ndarray], rng: np.random.Generator, planes=ROT_PLANES) -> List[np.ndarray]:
    """The same random flips and rot90 (in a random one of ``planes``) on every cube."""
    crops = list(crops)
    for ax in range(3):
        if rng.random() < 0.5:
            crops = [np.flip(c, ax) for c in crops]
    k = int(rng.integers(0, 4))
    plane = planes[int(rng.integers(0, len(planes)))]
    return [np.rot90(c, k, plane) for c in crops]


def augment_pair(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """The same random flips and rot90 (in a random plane) on both cubes."""
    a, b = augment_all((a, b), rng)
    return a, b


def validation_patches(noisy: np.ndarray, prior: np.ndarray, patch_size: int, max_patches: int = 4,
                       seed: int = 12345, multiple: int = 1, extra: Sequence[np.ndarray] = (),
                       min_size: int = 1, name: str = "validation region") -> Tuple[np.ndarray, ...]:
    """A fixed set of up to ``max_patches`` crops of the held-out region (no augmentation).

    Crops are at most ``patch_size`` per axis and as large as the region allows (a thin
    validation slab is not padded up to a cube), rounded down to a multiple of ``multiple``
    (the network's size multiple); an axis shorter than ``min_size`` (rounded up to ``multiple``)
    is reflect-padded to it.
    Returns (noisy, prior, *extra), each (n, 1, cz, cy, cx).
    """
    vols = [noisy, prior] + list(extra)
    m = max(1, int(multiple))
    least = -(-max(m, int(min_size)) // m) * m
    vols = [pad_to(v, least, name if i == 0 else None) for i, v in enumerate(vols)]
    shape = vols[0].shape
    crop = [max(least, min(int(patch_size), n) // m * m) for n in shape]
    rng = np.random.default_rng(seed)
    n_pos = int(np.prod([n - c + 1 for n, c in zip(shape, crop)]))
    out = [[] for _ in vols]
    for _ in range(max(1, min(max_patches, n_pos))):
        z, y, x = (int(rng.integers(0, n - c + 1)) for n, c in zip(shape, crop))
        for o, v in zip(out, vols):
            o.append(np.ascontiguousarray(v[z:z + crop[0], y:y + crop[1], x:x + crop[2]]))
    return tuple(np.stack(o)[:, None].astype(np.float32) for o in out)


def synthetic_pair(shape=(32, 32, 32), noise: float = 1.0, blob_sigma: float = 2.0, prior_sigma: float = 1.5,
                   seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean, noisy, prior) for tests/benchmarks: smooth random blobs + Gaussian noise.

    ``prior`` is the Gaussian-filtered noisy volume (a stand-in for the
    reconstruction from filtered tilts).  The clean volume has unit std.
    """
    from scipy.ndimage import gaussian_filter
    rng = np.random.default_rng(seed)
    clean = gaussian_filter(rng.standard_normal(shape), blob_sigma)
    clean = np.tanh(3 * clean / clean.std())  # sharper-edged blobs
    clean = ((clean - clean.mean()) / clean.std()).astype(np.float32)
    noisy = (clean + noise * rng.standard_normal(shape)).astype(np.float32)
    prior = gaussian_filter(noisy, prior_sigma).astype(np.float32)
    return clean, noisy, prior
