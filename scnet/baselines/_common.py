"""Shared pieces of the baselines: the :class:`Method` record and option checks."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Optional, Tuple

import numpy as np

from ..errors import SCNetInputError


@dataclass(frozen=True)
class Method:
    """One comparison method: ``run(volume, **options) -> volume``; ``why_not()`` is None when it can run.
    ``config``: its declared options (:data:`scnet.config_eval.BASELINE_OPTIONS`); ``extra``: keyword
    options of the engine API that the command line does not offer."""

    name: str
    run: Callable
    config: type
    why_not: Callable[[], Optional[str]]
    extra: Tuple[str, ...] = ()

    @property
    def options(self) -> Tuple[str, ...]:
        return tuple(f.name for f in fields(self.config)) + self.extra


def _always() -> Optional[str]:
    return None


def as_volume(volume) -> np.ndarray:
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3 or v.size == 0:
        raise SCNetInputError(f"Baselines need a 3D volume (Z, Y, X); got shape {v.shape}.")
    if not np.all(np.isfinite(v)):
        raise SCNetInputError("The input volume contains NaN or Inf voxels; fix it before denoising.")
    return v


def pos_int(name: str, value) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise SCNetInputError(f"{name} must be a positive integer (got {value!r}).") from None
    if v < 1:
        raise SCNetInputError(f"{name} must be a positive integer (got {value}).")
    return v


def reject_unknown(name: str, opts: dict, allowed) -> None:
    extra = sorted(set(opts) - set(allowed))
    if extra:
        raise SCNetInputError(
            f"Baseline {name!r} does not take option(s) {', '.join(extra)}; it takes: {', '.join(sorted(allowed))}.")
