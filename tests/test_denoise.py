"""`scnet denoise` is `scnet.denoise.denoise` (one composition: the one the benchmarks run), and each input
is read and checked once, where it enters (counted by wrapping every binding of the read and scan functions)."""
import sys

import numpy as np
import pytest

import scnet.denoise
import scnet.io
import scnet.rows
from scnet.cli import main
from scnet.config import PredictConfig, TrainConfig
from scnet.data import synthetic_pair
from scnet.io import read_volume, write_volume

TINY = dict(patch_size=16, epochs=1, iterations_per_epoch=2, base_width=2, seed=3)
FLAGS = ["--patch-size", "16", "--epochs", "1", "--iterations-per-epoch", "2", "--base-width", "2", "--seed", "3",
         "--quiet", "--tile-size", "16", "--overlap", "4"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("denoise")
    clean, noisy, prior = synthetic_pair((16, 24, 20), seed=0)
    rng = np.random.default_rng(1)
    even = (clean + rng.normal(0, 0.4, clean.shape)).astype(np.float32)
    odd = (clean + rng.normal(0, 0.4, clean.shape)).astype(np.float32)
    for name, v in (("noisy", noisy), ("prior", prior), ("even", even), ("odd", odd)):
        write_volume(str(d / f"{name}.mrc"), v, voxel_size=2.0)
    return d


def _count_calls(monkeypatch, fn, key):
    """Wrap ``fn`` wherever a module binds it; return the list of ``key(args)`` of each call."""
    calls = []

    def spy(*a, **kw):
        calls.append(key(a, kw))
        return fn(*a, **kw)
    for mod in [m for m in list(sys.modules.values()) if m is not None and getattr(m, "__name__", "").startswith("scnet")]:
        for name, value in list(vars(mod).items()):
            if value is fn:
                monkeypatch.setattr(mod, name, spy)
    return calls


@pytest.mark.parametrize("halves", [False, True])
def test_cli_denoise_is_the_one_composition_and_checks_each_input_once(files, tmp_path, monkeypatch, halves):
    inputs = [str(files / n) for n in (["noisy.mrc", "prior.mrc"] + (["even.mrc", "odd.mrc"] if halves else []))]
    reads = _count_calls(monkeypatch, scnet.io.read_volume, lambda a, kw: a[0])
    scans = _count_calls(monkeypatch, scnet.io.check_volume, lambda a, kw: a[1] if len(a) > 1 else kw.get("name"))
    rows = _count_calls(monkeypatch, scnet.rows.row_check, lambda a, kw: 1)
    composed = _count_calls(monkeypatch, scnet.denoise.denoise, lambda a, kw: kw.get("output"))
    out = str(tmp_path / "den.mrc")
    args = ["denoise", "--noisy", inputs[0], "--prior", inputs[1], "--output", out, "--output-dir",
            str(tmp_path / "run")] + (["--even", inputs[2], "--odd", inputs[3]] if halves else []) + FLAGS
    assert main(args) == 0
    assert composed == [out]                           # the CLI runs scnet.denoise.denoise, once
    assert sorted(reads) == sorted(inputs)             # each file read once (not again for the prediction)
    assert sorted(scans) == sorted(inputs)             # every voxel of each scanned once, where it was read
    assert len(rows) == (0 if halves else 1)           # the row check (slab mode without halves): once

    # the same composition on the same arrays gives the same volume (the benchmarks call it this way)
    monkeypatch.undo()
    vols = [read_volume(p)[0] for p in inputs]
    cfg = TrainConfig(**TINY)
    direct = scnet.denoise.denoise(vols[0], vols[1], cfg, PredictConfig(tile_size=16, overlap=4),
                                   halves=vols[2:] if halves else None)
    np.testing.assert_array_equal(read_volume(out)[0], direct)


def test_denoise_checks_arrays_given_to_it(files):
    noisy = read_volume(str(files / "noisy.mrc"))[0].copy()
    prior = read_volume(str(files / "prior.mrc"))[0]
    noisy[1, 2, 3] = np.nan
    with pytest.raises(scnet.io.SCNetInputError, match="NaN"):
        scnet.denoise.denoise(noisy, prior, TrainConfig(**TINY))
