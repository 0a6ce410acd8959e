"""The smoothed prior made from the tomogram itself (a tomogram without its tilt series).

The paper guides training by a "smoothed" tomogram reconstructed from Topaz-denoised tilt
images (§4.3; eq. 5 and 7 compare the network's output with it).  A user who brings a
reconstructed tomogram (Warp, AreTomo, IMOD, RELION) has no such prior; :func:`make_prior`
then smooths the noisy tomogram with one of the 3D baselines (:data:`scnet.choices.SELF_PRIORS`,
:mod:`scnet.baselines`, with their declared options, :mod:`scnet.config_eval`):

* ``topaz3d``  the pretrained Topaz-Denoise 3D network,
* ``gaussian`` a 3D Gaussian,
* ``lowpass``  an isotropic low-pass.

The default (:data:`scnet.choices.DEFAULT_SELF_PRIOR`) is chosen by measurement
(``benchmarks/quality.py --methods scnet_tomo``; docs/benchmarks.md).  In the halves mode with the
prior terms off (the default weights) no prior is used by the loss: :func:`prior_needed` says so,
and a Gaussian (cheap) stands in for the log's L_smooth / L_exp columns.
"""
from __future__ import annotations

import numpy as np

from .choices import BASELINES_WITH_DEVICE, DEFAULT_SELF_PRIOR, SELF_PRIORS, describe
from .errors import SCNetInputError

STAND_IN = "gaussian"   # the cheap prior that fills the log's prior columns when the loss ignores them


def check_method(method: str) -> str:
    if method not in SELF_PRIORS:
        raise SCNetInputError(f"Unknown prior method {method!r} (--prior-from); choose {describe(SELF_PRIORS)}.")
    return method


def prior_needed(weights) -> bool:
    """Whether eq. 8's prior terms carry weight: L_smooth (eq. 5) and L_exp (eq. 7) compare with the
    prior; L_rec and L_reg do not."""
    return bool(weights.smooth or weights.exp)


def make_prior(noisy: np.ndarray, method: str = DEFAULT_SELF_PRIOR, device: str = "cpu") -> np.ndarray:
    """The smoothed prior of ``noisy`` made by ``method`` (float32, same shape and intensity scale)."""
    from .baselines import run_baseline
    check_method(method)
    opts = {"device": device.split(",")[0]} if method in BASELINES_WITH_DEVICE else {}
    return np.asarray(run_baseline(method, noisy, **opts), dtype=np.float32)


def describe_source(method: str, used: bool) -> str:
    """What the training log and summary say about the prior."""
    if used:
        return f"made from the tomogram ({method})"
    return f"none needed (prior terms off; a {STAND_IN} of the tomogram fills the log's prior columns)"
