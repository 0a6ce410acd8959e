"""The comparison methods of the paper's Tables 1-3 behind one interface.

``run_baseline(name, volume, **opts) -> volume`` (same shape, float32, same
intensity scale as the input), for ``name`` in:

* ``"bm4d"``    BM4D (Maggioni et al.), ``bm4d`` package 4.2.5.  OPTIONAL: a
  closed binary under a non-commercial licence, never a default dependency;
  install it with ``make bm4d`` (``pip install bm4d==4.2.5`` in the engine env).
  ``sigma`` = noise standard deviation in the volume's intensity units; when
  not given it is estimated (:func:`estimate_noise_sigma`, MAD of the finest
  3D Haar detail band).
* ``"n2v"``     Noise2Void 3D (Krull et al.) through careamics 0.3.5, trained on
  the single noisy volume itself (like SC-Net).  Besides its declared options the
  engine API takes ``depth``, ``num_channels_init``, ``work_dir`` (None = a temporary
  folder that is removed: lightning logs and checkpoints never land in the working
  directory) and ``tile_size`` (prediction tiles; None = whole volume up to 128^3, else 96).
* ``"lowpass"`` isotropic 3D low-pass (:func:`scnet.filters.lowpass_3d`).
* ``"gaussian"`` isotropic 3D Gaussian (:func:`scnet.filters.gaussian_3d`).
* ``"topaz3d"`` pretrained Topaz-Denoise 3D Noise2Noise network
  (:func:`scnet.filters.topaz_denoise_3d`).

Each method's options, defaults and bounds are declared once in
:data:`scnet.config_eval.BASELINE_OPTIONS`; :func:`run_baseline` fills in the defaults
and validates.  ``sigma`` means the noise level for ``bm4d`` but the filter width for
``gaussian``.

:func:`available_baselines` tells which of them can run here and, for those
that cannot, why.

Layout: one module per method (:mod:`.bm4d`, :mod:`.n2v`, :mod:`.filters`
for lowpass / gaussian / topaz3d), each exporting its :class:`Method`
record; this module is the registry.  Names come from
:data:`scnet.choices.BASELINES` (shared with the plugin).

careamics needs a torchvision stand-in at import: see :mod:`.n2v`.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ..choices import BASELINES
from ..config_eval import BASELINE_OPTIONS
from ..declare import defaults
from ..errors import SCNetInputError
from . import bm4d as _bm4d_mod, filters as _filters_mod, n2v as _n2v_mod
from ._common import Method, as_volume, reject_unknown
from .n2v import n2v_denoise  # noqa: F401  (public: the benchmarks use it)
from .noise import estimate_noise_sigma, estimate_noise_sigma_even_odd  # noqa: F401

REGISTRY: Dict[str, Method] = {m.name: m for m in (_bm4d_mod.METHOD, _n2v_mod.METHOD, *_filters_mod.METHODS)}
if tuple(REGISTRY) != tuple(BASELINES) or any(BASELINE_OPTIONS[n] is not m.config for n, m in REGISTRY.items()):
    raise ImportError(f"scnet.baselines registry {tuple(REGISTRY)} differs from scnet.choices.BASELINES {BASELINES} "
                      f"or scnet.config_eval.BASELINE_OPTIONS")  # pragma: no cover  (import-time guard)


def _why_not(name: str) -> Optional[str]:
    try:
        return REGISTRY[name].why_not()
    except Exception as exc:  # a broken optional install must not break the listing
        return f"{type(exc).__name__}: {exc}"


def available_baselines() -> Dict[str, Optional[str]]:
    """``{name: None}`` when the baseline can run here, else ``{name: reason}``."""
    return {name: _why_not(name) for name in BASELINES}


def run_baseline(name: str, volume, **opts) -> np.ndarray:
    """Denoise ``volume (Z, Y, X)`` with baseline ``name``; see the module docstring for options.

    Returns float32 of the input's shape.  Unknown names or options, and
    values outside their declared bounds, raise :class:`SCNetInputError`; an
    unavailable optional baseline raises it with the reason (and how to install it).
    Options not given (or None) take the method's declared defaults.
    """
    if name not in REGISTRY:
        raise SCNetInputError(f"Unknown baseline {name!r}; valid baselines: {', '.join(BASELINES)}.")
    method = REGISTRY[name]
    reject_unknown(name, opts, method.options)
    declared = defaults(method.config)
    cfg = method.config(**{k: declared[k] if opts.get(k) is None else opts[k] for k in declared}).validate()
    extra = {k: v for k, v in opts.items() if k in method.extra and v is not None}
    why = _why_not(name)
    if why:
        raise SCNetInputError(f"Baseline {name!r} cannot run here: {why}.")
    v = as_volume(volume)
    out = method.run(v, **cfg.to_dict(), **extra)
    out = np.asarray(out, dtype=np.float32)
    if out.shape != v.shape:
        raise RuntimeError(f"Internal error: baseline {name} returned shape {out.shape} for input {v.shape}.")
    return out
