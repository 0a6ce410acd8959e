"""A data set trained as ONE model (scnet.dataset, scnet.manifest, ``scnet train --tomograms``): the list,
patches from every tomogram, each normalised on its own, the stop on the mean of their validation losses,
memory maps, resume, the model's record of its tomograms, prediction by each tomogram's own statistics, and
a bad tomogram refused by name before any work."""
import json
import os

import numpy as np
import pytest
import torch

from scnet.cli import main
from scnet.config import PredictConfig, TrainConfig
from scnet.data import DatasetSampler, PatchSampler, synthetic_pair
from scnet.dataset import check_dataset, own_normalisation, prepare_dataset
from scnet.errors import SCNetInputError
from scnet.io import read_volume, write_volume
from scnet.manifest import TomogramEntry, read_manifest, write_manifest
from scnet.modelfile import load_model_file, safe_save
from scnet.predict import predict_array
from scnet.train import train_dataset

TINY = ["--patch-size", "16", "--epochs", "1", "--iterations-per-epoch", "2", "--base-width", "2", "--quiet"]
SHAPES = [(16, 24, 24), (16, 28, 24), (16, 24, 28)]


def tiny_cfg(**kw):
    return TrainConfig(**dict(dict(patch_size=16, batch_size=2, epochs=1, iterations_per_epoch=2, base_width=2,
                                   val_fraction=0.2), **kw))


def _write_set(d, halves=True, scales=(1.0, 3.0, 0.5), offsets=(0.0, 10.0, -4.0), voxel=10.0):
    """Three tomograms of different content, scale and offset (and their even/odd halves)."""
    entries = []
    for k, shape in enumerate(SHAPES):
        _, noisy, _ = synthetic_pair(shape, seed=k)
        rng = np.random.default_rng(10 + k)
        name = f"TS_{k}"
        files = {"noisy": noisy}
        if halves:
            files["even"] = noisy + rng.normal(size=shape).astype(np.float32)
            files["odd"] = noisy + rng.normal(size=shape).astype(np.float32)
        paths = {}
        for kind, v in files.items():
            paths[kind] = str(d / f"{name}_{kind}.mrc")
            write_volume(paths[kind], v * scales[k] + offsets[k], voxel_size=voxel)
        entries.append(TomogramEntry(name=name, **paths))
    return entries


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("dataset")
    return d, _write_set(d)


# --------------------------------------------------------------------------- the list of tomograms
def test_manifest_reads_relative_paths_none_cells_and_comments(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "l.tsv").write_text("# my data set\nnoisy\tname\teven\todd\n"
                                            "a.mrc\tTS_1\t-\t\n/abs/b.mrc\tTS_2\te.mrc\to.mrc\n\n")
    e = read_manifest(str(tmp_path / "sub" / "l.tsv"))
    assert [x.name for x in e] == ["TS_1", "TS_2"]
    assert e[0].noisy == str(tmp_path / "sub" / "a.mrc") and e[0].even is None and e[0].odd is None
    assert e[1].noisy == "/abs/b.mrc" and e[1].even == str(tmp_path / "sub" / "e.mrc") and e[1].prior is None
    write_manifest(str(tmp_path / "w.tsv"), e)
    assert read_manifest(str(tmp_path / "w.tsv")) == e


@pytest.mark.parametrize("text, words", [
    ("name\tnoisy\n", "no tomogram"),
    ("name\tfile\n", "header must name"),
    ("noisy\nx.mrc\n", "header must name"),
    ("name\tnoisy\nA\ta.mrc\nA\tb.mrc\n", "'A' is also on line 2"),
    ("name\tnoisy\nA\ta.mrc\textra\n", "line 2: 3 tab-separated cells"),
    ("name\tnoisy\tprior\nA\t-\tp.mrc\n", "line 2: every tomogram needs a name and a noisy file"),
])
def test_manifest_errors_name_the_line(tmp_path, text, words):
    (tmp_path / "l.tsv").write_text(text)
    with pytest.raises(SCNetInputError, match=words):
        read_manifest(str(tmp_path / "l.tsv"))


# --------------------------------------------------------------------------- sampling and set-up
def test_patches_come_from_every_tomogram_in_proportion_to_its_size():
    vols = [np.full((8, 8, 8 * (k + 1)), float(k), np.float32) for k in range(3)]  # sizes 1 : 2 : 3
    sampler = DatasetSampler([PatchSampler(v, v, 8) for v in vols])
    noisy, prior = sampler.sample(np.random.default_rng(0), 600)
    counts = np.bincount(noisy[:, 0, 0, 0, 0].astype(int), minlength=3) / 600
    assert np.allclose(counts, [1 / 6, 2 / 6, 3 / 6], atol=0.05)
    assert np.array_equal(noisy, prior)  # every volume of a patch from the same tomogram and place


def test_one_tomogram_sampler_draws_as_before():
    v = np.random.default_rng(1).normal(size=(12, 12, 12)).astype(np.float32)
    a = PatchSampler(v, v, 8).sample(np.random.default_rng(5), 3)
    b = DatasetSampler([PatchSampler(v, v, 8)]).sample(np.random.default_rng(5), 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_each_tomogram_normalised_on_its_own_and_kept_in_memory_maps(dataset, tmp_path):
    _, entries = dataset
    cfg = tiny_cfg()
    plan = check_dataset(entries, cfg, say=None)
    assert plan.mode == "halves" and plan.voxel_size == 10.0
    vols = prepare_dataset(entries, plan, cfg, str(tmp_path / "scratch"), "gaussian", say=None)
    assert [v.name for v in vols] == ["TS_0", "TS_1", "TS_2"]
    for v, e in zip(vols, entries):
        assert len(v.arrays) == 4 and all(isinstance(a, np.memmap) for a in v.arrays)  # noisy, prior, even, odd
        raw = read_volume(e.noisy)[0]
        assert abs(float(np.median(v.arrays[0]))) < 0.3 and 0.7 < float(np.std(v.arrays[0])) < 1.3
        assert v.norm.mean == pytest.approx(own_normalisation(raw).mean)  # what prediction will use
    # three offsets and scales (0, 10, -4; x1, x3, x0.5): each tomogram's own statistics
    assert np.allclose([v.norm.mean for v in vols], [0.0, 10.0, -4.0], atol=0.5)
    assert np.allclose([v.norm.std / vols[0].norm.std for v in vols], [1.0, 3.0, 0.5], rtol=0.15)


def test_stop_on_the_mean_of_the_tomograms_validation_losses(dataset, tmp_path, monkeypatch):
    _, entries = dataset
    import scnet.train as train_mod
    calls = []

    def fake(model, val, mode, cfg, weights):
        calls.append(val[0].shape[0])
        return float(len(calls) % 3 + 1)  # 2, 3, 1 for the three tomograms of the first validation
    monkeypatch.setattr(train_mod, "validation_loss", fake)
    train_dataset(entries, tiny_cfg(), str(tmp_path / "run"), progress=False, prior_from="gaussian")
    rows = open(tmp_path / "run" / "loss_log.csv").read().splitlines()
    assert float(rows[-1].split(",")[7]) == pytest.approx(2.0)  # (2 + 3 + 1) / 3
    assert calls[:3] == [3, 3, 3]  # 8 validation patches shared by 3 tomograms: 3 each (at least 2)


# --------------------------------------------------------------------------- train, record, predict
@pytest.fixture(scope="module")
def joint(dataset):
    d, entries = dataset
    out = str(d / "joint")
    write_manifest(str(d / "list.tsv"), entries)
    assert main(["train", "--tomograms", str(d / "list.tsv"), "--output-dir", out] + TINY) == 0
    return d, entries, out


def test_joint_model_records_its_tomograms(joint):
    d, entries, out = joint
    summary = json.load(open(os.path.join(out, "training_summary.json")))
    assert summary["mode"] == "halves"
    assert [t["name"] for t in summary["tomograms"]] == ["TS_0", "TS_1", "TS_2"]
    assert [t["shape"] for t in summary["tomograms"]] == [list(s) for s in SHAPES]
    assert all(t["val_loss"] > 0 for t in summary["tomograms"])
    _, norm, ck = load_model_file(os.path.join(out, "model.pt"))
    assert [t["name"] for t in ck["tomograms"]] == ["TS_0", "TS_1", "TS_2"] and ck["voxel_size"] == 10.0
    assert not os.path.exists(os.path.join(out, ".scnet-data"))  # the memory maps are gone


def test_joint_model_normalises_each_tomogram_by_its_own_statistics(joint):
    d, entries, out = joint
    _, _, ck = load_model_file(os.path.join(out, "model.pt"))
    for e, rec in zip(entries, ck["tomograms"]):
        raw = read_volume(e.noisy)[0]
        own = own_normalisation(raw)
        assert own.mean == pytest.approx(rec["normalisation"]["mean"], rel=1e-6)
        assert own.std == pytest.approx(rec["normalisation"]["std"], rel=1e-6)
    # its own statistics: a tomogram in other units (x3 + 7) is denoised into those units, exactly
    model, fp32 = os.path.join(out, "model.pt"), PredictConfig(precision="fp32")  # bf16 rounding: not exact
    raw = read_volume(entries[0].noisy)[0]
    den = predict_array(model, raw, fp32)
    assert np.allclose(predict_array(model, 3 * raw + 7, fp32), 3 * den + 7, atol=1e-3 * float(den.std()))
    # a half map normalised by its full tomogram's statistics (--stats-from), not by its own
    e = entries[1]
    out_half = str(d / "half.mrc")
    assert main(["predict", "--model", model, "--input", e.even, "--stats-from", e.noisy,
                 "--output", out_half, "--tile-size", "16", "--overlap", "4", "--precision", "fp32", "--quiet"]) == 0
    even, full = read_volume(e.even)[0], read_volume(e.noisy)[0]
    by_full = predict_array(model, even, fp32, stats_from=full)
    assert np.allclose(read_volume(out_half)[0], by_full, atol=1e-3 * float(by_full.std()))
    assert not np.allclose(predict_array(model, even, fp32), by_full, atol=1e-2 * float(by_full.std()))


def test_one_tomogram_model_is_unchanged(tmp_path):
    """One --noisy: no tomograms entry, the stored normalisation (as before the data-set training existed)."""
    _, noisy, prior = synthetic_pair((16, 24, 24), seed=0)
    write_volume(str(tmp_path / "n.mrc"), noisy)
    write_volume(str(tmp_path / "p.mrc"), prior)
    assert main(["train", "--noisy", str(tmp_path / "n.mrc"), "--prior", str(tmp_path / "p.mrc"),
                 "--output-dir", str(tmp_path / "run")] + TINY) == 0
    _, _, ck = load_model_file(str(tmp_path / "run" / "model.pt"))
    assert "tomograms" not in ck
    assert "tomograms" not in json.load(open(tmp_path / "run" / "training_summary.json"))


def test_resume_a_joint_training_and_refuse_another_set(dataset, tmp_path):
    d, entries = dataset
    out = str(tmp_path / "run")
    train_dataset(entries, tiny_cfg(epochs=1), out, progress=False)
    os.remove(os.path.join(out, "model.pt"))  # interrupted after the checkpoint of epoch 1
    train_dataset(entries, tiny_cfg(epochs=2), out, resume=True, progress=False)
    rows = open(os.path.join(out, "loss_log.csv")).read().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == [1, 2, 3, 4]
    ck = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert [t["name"] for t in ck["tomograms"]] == ["TS_0", "TS_1", "TS_2"]
    with pytest.raises(SCNetInputError, match="tomograms: TS_0, TS_1, TS_2 in the checkpoint, TS_0, TS_2 now"):
        train_dataset([entries[0], entries[2]], tiny_cfg(epochs=3), out, resume=True, progress=False)
    swapped = [entries[0], entries[1], TomogramEntry("TS_2", entries[1].noisy, even=entries[1].even,
                                                     odd=entries[1].odd)]
    with pytest.raises(SCNetInputError, match="tomogram TS_2: shape"):
        train_dataset(swapped, tiny_cfg(epochs=3), out, resume=True, progress=False)


def test_a_damaged_tomograms_record_is_refused(joint, tmp_path):
    _, _, out = joint
    ck = torch.load(os.path.join(out, "model.pt"), weights_only=True)
    ck["tomograms"][0]["normalisation"]["std"] = 0.0
    safe_save(ck, str(tmp_path / "bad.pt"))
    with pytest.raises(SCNetInputError, match="tomogram TS_0.*std"):
        load_model_file(str(tmp_path / "bad.pt"))


# --------------------------------------------------------------------------- a bad tomogram, by name, before work
def _bad_case(tmp_path, case):
    entries = _write_set(tmp_path)
    bad = entries[1]
    if case == "nan":
        v = read_volume(bad.noisy)[0]
        v[3, 4, 5] = np.nan
        import mrcfile
        with mrcfile.new(bad.noisy, overwrite=True) as m:
            m.set_data(v)
            m.voxel_size = 10.0
        return entries, "Tomogram TS_1: .*NaN"
    if case == "voxel":  # the whole tomogram (noisy and halves) at 12 A/px, the others at 10
        for path in bad.files():
            write_volume(path, read_volume(path)[0], voxel_size=12.0)
        return entries, "Tomogram TS_1: voxel size 12 A/px, but TS_0 has 10 A/px"
    if case == "missing_half":
        entries[1] = TomogramEntry(bad.name, bad.noisy, even=bad.even)
        return entries, "Tomogram TS_1: only the even half is given"
    if case == "no_halves":
        entries[1] = TomogramEntry(bad.name, bad.noisy)
        return entries, "Tomograms TS_1 have no even/odd halves while the others have"
    if case == "grid":
        write_volume(bad.odd, np.ones((16, 20, 24), np.float32) + np.arange(24, dtype=np.float32))
        return entries, r"Tomogram TS_1: Odd half .* has shape \(16, 20, 24\)"
    if case == "same_halves":
        entries[1] = TomogramEntry(bad.name, bad.noisy, even=bad.even, odd=bad.even)
        return entries, "Tomogram TS_1: The even and odd half tomograms are the same file"
    if case == "absent":
        os.remove(bad.even)
        return entries, "Tomogram TS_1: .*TS_1_even.mrc not found"
    raise ValueError(case)


@pytest.mark.parametrize("case", ["nan", "voxel", "missing_half", "no_halves", "grid", "same_halves", "absent"])
def test_a_bad_tomogram_is_refused_by_name_before_any_work(tmp_path, case, capsys):
    entries, words = _bad_case(tmp_path, case)
    write_manifest(str(tmp_path / "list.tsv"), entries)
    out = tmp_path / "run"
    assert main(["train", "--tomograms", str(tmp_path / "list.tsv"), "--output-dir", str(out),
                 "--save-config", str(tmp_path / "cfg.json")] + TINY) == 2
    import re
    assert re.search(words, capsys.readouterr().err), words
    assert not out.exists() and not (tmp_path / "cfg.json").exists()  # nothing written, nothing trained


def test_a_mixed_set_trains_when_the_mode_ignores_the_halves(tmp_path):
    entries, _ = _bad_case(tmp_path, "no_halves")
    path = train_dataset(entries, tiny_cfg(mode="single"), str(tmp_path / "run"), progress=False,
                         prior_from="gaussian")
    assert json.load(open(tmp_path / "run" / "training_summary.json"))["mode"] == "single"
    assert os.path.exists(path)


def test_split_mode_data_set_normalises_like_its_training(tmp_path):
    """An explicit split mode without halves: prediction fits the statistics the training fitted (the mean of
    each tomogram's even and odd rows)."""
    entries = _write_set(tmp_path, halves=False)
    out = str(tmp_path / "run")
    train_dataset(entries, tiny_cfg(mode="split"), out, progress=False, prior_from="gaussian")
    _, _, ck = load_model_file(os.path.join(out, "model.pt"))
    assert ck["mode"] == "split"
    for e, rec in zip(entries, ck["tomograms"]):
        own = own_normalisation(read_volume(e.noisy, mmap=True)[0], "split")
        assert own.mean == pytest.approx(rec["normalisation"]["mean"], rel=1e-5, abs=1e-6)
        assert own.std == pytest.approx(rec["normalisation"]["std"], rel=1e-5)


def _rows_set(d, kinds, shape=(48, 48), thickness=24):
    """Tomograms reconstructed from pure-noise tilts whose rows were interpolated once ("mixed": rotated
    4.3 degrees and back, rows share noise ~0.25 at lag 1) or not ("white"), each with its own offset."""
    from scnet.recon import ReconConfig, reconstruct
    from scnet.simulate import rotated_and_back
    ang = np.arange(-60.0, 61.0, 3.0)
    entries = []
    for k, kind in enumerate(kinds):
        rng = np.random.default_rng(20 + k)
        tilts = (rotated_and_back(np.zeros((ang.size,) + shape, np.float32), 1.0, 4.3, 1, rng) if kind == "mixed"
                 else rng.standard_normal((ang.size,) + shape).astype(np.float32))
        v = reconstruct(tilts, ang, ReconConfig(thickness=thickness, backend="builtin"))
        path = str(d / f"R_{k}.mrc")
        write_volume(path, (v / v.std() + 5.0 * k).astype(np.float32), voxel_size=10.0)
        entries.append(TomogramEntry(name=f"R_{k}", noisy=path))
    return entries


def test_slab_mode_data_set_whitens_its_rows_and_normalises_like_its_training(tmp_path):
    """Without halves, auto -> slab where the tomograms' rows share noise (interpolated): the data set is
    whitened along Y for the mean of their measured correlations; model.pt records it; prediction of each
    tomogram fits the statistics of its whitened volume, as the training did."""
    entries = _rows_set(tmp_path, ["mixed", "mixed"])
    plan = check_dataset(entries, tiny_cfg(), None)
    assert plan.mode == "slab" and plan.gap == 0 and 0.15 < plan.whiten[0] < 0.35, plan
    out = str(tmp_path / "run")
    train_dataset(entries, tiny_cfg(), out, progress=False, plan=plan)
    _, _, ck = load_model_file(os.path.join(out, "model.pt"))
    assert ck["mode"] == "slab" and ck["model_config"]["row_gap"] == 0
    assert ck["row_noise"]["rho"] == pytest.approx(plan.whiten)
    summary = json.load(open(os.path.join(out, "training_summary.json")))
    assert summary["mode"] == "slab" and summary["row_noise"]["rho"] == pytest.approx(plan.whiten)
    # each tomogram's own row check, the reason auto chose slab
    assert [t["row_check"]["rho"][0] for t in summary["tomograms"]] == pytest.approx(
        [c["rho1"] for c in plan.checks], abs=1e-4)
    from scnet.rows import SLAB_RHO
    assert all(t["row_check"]["rho"][0] >= SLAB_RHO for t in summary["tomograms"])
    for e, rec in zip(entries, ck["tomograms"]):
        vol = read_volume(e.noisy, mmap=True)[0]
        own = own_normalisation(vol, "slab", ck["row_noise"]["rho"])
        assert own.mean == pytest.approx(rec["normalisation"]["mean"], rel=1e-4, abs=1e-4)
        assert own.std == pytest.approx(rec["normalisation"]["std"], rel=1e-4)
        out_vol = predict_array(os.path.join(out, "model.pt"), np.asarray(vol),
                                PredictConfig(tile_size=16, overlap=4, tta=1, precision="fp32"))
        assert out_vol.shape == vol.shape and np.isfinite(out_vol).all()


def test_slab_mode_data_set_refuses_rows_that_share_noise_differently(tmp_path):
    """One interpolated tomogram and one not: auto would pick slab for one and split for the other, and in
    the slab mode one model whitens one way, so the set is refused naming them (before any work); --row-gap
    hides rows without whitening, then the set is accepted; white rows alone -> split."""
    entries = _rows_set(tmp_path, ["mixed", "white"])
    with pytest.raises(SCNetInputError, match="R_0 have rows that share noise .* R_1 have not"):
        check_dataset(entries, tiny_cfg(), None)
    with pytest.raises(SCNetInputError, match="one model trains in one mode"):
        train_dataset(entries, tiny_cfg(), str(tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(SCNetInputError, match="R_0 and R_1 share noise differently"):
        check_dataset(entries, tiny_cfg(mode="slab"), None)
    assert check_dataset(_rows_set(tmp_path, ["white", "white"]), tiny_cfg(), None).mode == "split"
    plan = check_dataset(entries, tiny_cfg(row_gap=1), None)
    assert plan.mode == "slab" and plan.gap == 1 and plan.whiten is None
    assert check_dataset(entries, tiny_cfg(mode="single"), None).mode == "single"


@pytest.mark.parametrize("extra, words", [
    (["--noisy", "N"], "not both"),
    (["--even", "E"], "not --even"),
    (["--prior", "P"], "not --prior"),
])
def test_cli_refuses_files_beside_the_list(dataset, tmp_path, capsys, extra, words):
    _, entries = dataset
    write_manifest(str(tmp_path / "l.tsv"), entries)
    extra = [entries[0].noisy if a in ("N", "E", "P") else a for a in extra]
    assert main(["train", "--tomograms", str(tmp_path / "l.tsv"), "--output-dir", str(tmp_path / "run")]
                + TINY + extra) == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cli_needs_a_tomogram_or_a_list(tmp_path, capsys):
    assert main(["train", "--output-dir", str(tmp_path / "run")] + TINY) == 2
    assert "--noisy N.mrc, or the tomograms of a data set with --tomograms" in capsys.readouterr().err
