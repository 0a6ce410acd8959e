"""Wedge-aware halves training (scnet.dewedge): cube rotations, the wedge re-applied, the Fourier loss."""
import json
import os

import numpy as np
import pytest
import torch

from scnet import dewedge
from scnet.config import TrainConfig
from scnet.errors import SCNetInputError
from scnet.losses import LossWeights
from scnet.steps import step_loss as _step_loss
from scnet.train import train_model
from scnet.wedge import missing_wedge_mask

TILTS = (-48.0, 62.0)  # asymmetric on purpose: a wrong sign or flip shows


def _wedged(shape, seed=0):
    """Real white noise with the wedge of TILTS removed: a volume with no power in the wedge."""
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))
    return dewedge.apply_spectrum_mask(x, dewedge.measured_mask(shape, TILTS))


def _power(v):
    return torch.fft.fftn(v, dim=(-3, -2, -1)).abs() ** 2


def test_the_24_proper_rotations_of_the_cube():
    assert len(dewedge.ROTATIONS) == 24
    x = torch.arange(27.0).reshape(3, 3, 3)
    seen = {tuple(dewedge.rotate(x, r).flatten().tolist()) for r in dewedge.ROTATIONS}
    assert len(seen) == 24                                  # all different
    for perm, flips in dewedge.ROTATIONS:                   # no reflection among them
        m = np.zeros((3, 3))
        for i, a in enumerate(perm):
            m[i, a] = -1 if i in flips else 1
        assert round(np.linalg.det(m)) == 1


def test_the_rotated_mask_is_where_the_rotated_volume_has_power():
    shape = (12, 12, 12)
    x = _wedged(shape)
    measured = dewedge.measured_mask(shape, TILTS)
    for rot in dewedge.ROTATIONS:
        p = _power(dewedge.rotate(x, rot))
        mr = dewedge.rotate_spectrum_mask(measured, rot)
        assert float(p[mr == 0].max()) < 1e-6 * float(p.max()), rot
        assert float(p[mr == 1].min()) >= 0 and float(p[mr == 1].mean()) > 1e-3 * float(p.max())


def test_a_rotated_subvolume_with_its_wedge_reapplied_has_no_power_in_either_wedge():
    shape = (16, 16, 16)
    x = _wedged(shape, seed=3)
    measured = dewedge.measured_mask(shape, TILTS)
    moved = 0
    for rot in dewedge.ROTATIONS:
        xi = dewedge.apply_spectrum_mask(dewedge.rotate(x, rot), measured)
        p = _power(xi)
        both = (measured == 0) | (dewedge.rotate_spectrum_mask(measured, rot) == 0)
        assert float(p[both].max()) < 1e-6 * float(p.max())
        moved += int(not torch.equal(dewedge.rotate_spectrum_mask(measured, rot), measured))
    assert moved >= 16  # most rotations move the wedge: those pairs teach the network to fill it


def test_wedge_mask_matches_the_mask_module():
    m = dewedge.measured_mask((8, 10, 12), (-60, 60))
    assert torch.equal(m == 0, torch.from_numpy(missing_wedge_mask((8, 10, 12), (-60, 60))))


def test_fourier_masked_loss_is_the_mse_without_a_wedge_and_ignores_the_masked_samples():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 1, 8, 8, 8, generator=g), torch.randn(2, 1, 8, 8, 8, generator=g)
    ones = torch.ones(8, 8, 8)
    assert float(dewedge.fourier_masked_loss(a, b, ones)) == pytest.approx(float(((a - b) ** 2).mean()), rel=1e-5)
    m = dewedge.measured_mask((8, 8, 8), TILTS)
    diff_in_wedge = dewedge.apply_spectrum_mask(torch.randn(2, 1, 8, 8, 8, generator=g), 1 - m)
    assert float(dewedge.fourier_masked_loss(a + diff_in_wedge, a, m)) < 1e-10


def test_wedge_step_rotates_input_and_target_together():
    """With the identity as network and one half as both input and target, only the masked-away input
    samples differ from the target: the loss is the target's power in the original wedge outside the
    rotated one (never zero for most rotations, zero if the pair were not rotated together)."""
    g = torch.Generator().manual_seed(1)
    e = torch.randn(2, 1, 16, 16, 16, generator=g)
    cfg = TrainConfig(wedge=True, tilt_range="-60,60")
    terms = _step_loss(lambda x: x, (None, torch.zeros_like(e), e, e.clone()), "halves", cfg, LossWeights(), g)
    loss = float(terms["L_rec"])
    assert 0 < loss < float((e ** 2).mean())


def test_wedge_options_are_checked():
    with pytest.raises(SCNetInputError, match="tilt range"):
        TrainConfig(wedge=True).validate()
    with pytest.raises(SCNetInputError, match="MIN < MAX"):
        TrainConfig(wedge=True, tilt_range="60,-60").validate()
    with pytest.raises(SCNetInputError, match="MIN,MAX"):
        TrainConfig(wedge=True, tilt_range="60").validate()
    with pytest.raises(SCNetInputError, match="halves"):
        TrainConfig(wedge=True, tilt_range="-60,60", mode="single").resolved_mode(True)
    with pytest.raises(SCNetInputError, match="even and odd"):
        TrainConfig(wedge=True, tilt_range="-60,60").resolved_mode(False)
    assert TrainConfig(wedge=True, tilt_range="-60, 60").validate().wedge_tilt_range() == (-60.0, 60.0)


def test_train_with_wedge_runs_and_records_it(tmp_path, tiny_halves):
    clean, noisy, prior, even, odd = tiny_halves
    cfg = TrainConfig(patch_size=16, iterations_per_epoch=3, base_width=2, val_fraction=0.2, min_iterations=0,
                      max_iterations=6, wedge=True, tilt_range="-60,60")
    path = train_model(noisy, prior, cfg, str(tmp_path / "w"), progress=False, halves=(even, odd))
    assert os.path.exists(path)
    saved = json.load(open(tmp_path / "w" / "train_config.json"))
    assert saved["wedge"] is True and saved["tilt_range"] == "-60,60"
    rows = open(tmp_path / "w" / "loss_log.csv").read().splitlines()
    assert len(rows) == 7 and all(np.isfinite(float(r.split(",")[2])) for r in rows[1:])


def test_cli_wedge_flag(tmp_path):
    from scnet.cli import build_parser, join_negative_values
    from scnet.cli.engine import config_from_args
    args = build_parser().parse_args(join_negative_values(["train", "--noisy", "n.mrc", "--output-dir",
                                                           str(tmp_path), "--wedge", "--tilt-range", "-57,60"]))
    cfg = config_from_args(args)
    assert cfg.wedge is True and cfg.wedge_tilt_range() == (-57.0, 60.0)
    args = build_parser().parse_args(["train", "--noisy", "n.mrc", "--output-dir", str(tmp_path), "--wedge"])
    with pytest.raises(SCNetInputError, match="tilt range"):
        config_from_args(args)
