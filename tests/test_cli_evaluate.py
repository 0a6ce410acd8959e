"""`scnet fsc | evaluate | baseline` (scnet/cli/evaluate.py), run through scnet.cli.main."""
import csv
import json

import numpy as np
import pytest

from scnet.cli import main
from scnet.io import read_volume, write_volume
from scnet.metrics import fsc, psnr, ssim3d


def _vol(seed, shape=(16, 24, 32)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.fixture
def vols(tmp_path):
    signal = _vol(0)
    paths = {}
    for name, arr in {"gt": signal, "a": signal + 0.5 * _vol(1), "b": signal + 0.5 * _vol(2),
                      "other": _vol(3, (16, 24, 30))}.items():
        paths[name] = str(tmp_path / f"{name}.mrc")
        write_volume(paths[name], arr, voxel_size=4.0, origin=(1.0, 2.0, 3.0))
    return paths


def test_fsc_writes_csv_and_json_and_prints_resolutions(vols, tmp_path, capsys):
    out_csv, out_json = str(tmp_path / "fsc.csv"), str(tmp_path / "fsc.json")
    assert main(["fsc", vols["a"], vols["b"], "--csv", out_csv, "--json", out_json]) == 0
    printed = capsys.readouterr().out
    assert "FSC " in printed and "FSC_e/o" in printed
    with open(out_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["shell", "frequency", "resolution", "fsc", "fsc_eo"]
    a, b = read_volume(vols["a"])[0], read_volume(vols["b"])[0]
    ref = fsc(a, b, voxel_size=4.0)
    assert len(rows) == len(ref.fsc)
    assert float(rows[3]["fsc"]) == pytest.approx(ref.fsc[3], rel=1e-4)
    assert float(rows[3]["resolution"]) == pytest.approx(1 / ref.frequency[3], rel=1e-4)
    assert float(rows[3]["fsc_eo"]) == pytest.approx(2 * ref.fsc[3] / (ref.fsc[3] + 1), rel=1e-4)
    doc = json.load(open(out_json))
    assert doc["voxel_size"] == 4.0  # from the header
    # white signal with SNR 4: FSC = 0.8 at every shell -> 0.5 never crossed (not reached -> null)
    assert doc["resolution_fsc_0.5"] is None and doc["status_fsc"].startswith("not reached")
    assert "resolution_fsc_eo_0.5" in doc
    assert "not reached" in printed


def test_fsc_subvolume_voxel_size_and_crossing(tmp_path, capsys):
    # blurred white signal + noise: FSC falls through 0.5 at a finite resolution
    rng = np.random.default_rng(0)
    from scipy.ndimage import gaussian_filter
    s = gaussian_filter(rng.normal(size=(32, 40, 40)), 1.5) * 10
    p1, p2 = str(tmp_path / "1.mrc"), str(tmp_path / "2.mrc")
    write_volume(p1, s + rng.normal(size=s.shape), voxel_size=1.0)
    write_volume(p2, s + rng.normal(size=s.shape), voxel_size=1.0)
    out_json = str(tmp_path / "f.json")
    assert main(["fsc", p1, p2, "--voxel-size", "5", "--subvolume", "24,32,0", "--mask", "soft",
                 "--json", out_json]) == 0
    doc = json.load(open(out_json))
    assert doc["shape"] == [24, 32, 40] and doc["voxel_size"] == 5.0
    r, r_eo = doc["resolution_fsc_0.5"], doc["resolution_fsc_eo_0.5"]
    assert r is not None and 10.0 < r < 200.0
    assert r_eo <= r  # eq. 10 raises the curve: e/o resolution is never worse
    assert f"{r:.2f}" in capsys.readouterr().out


def test_evaluate_prints_markdown_and_json(vols, tmp_path, capsys):
    out_json = str(tmp_path / "ev.json")
    rc = main(["evaluate", "--ground-truth", vols["gt"], "--labels", "noisy A,noisy B", "--json", out_json,
               vols["a"], vols["b"]])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| Volume | PSNR (dB) | SSIM |"
    assert lines[2].startswith("| noisy A |") and lines[3].startswith("| noisy B |")
    doc = json.load(open(out_json))
    gt, a = read_volume(vols["gt"])[0], read_volume(vols["a"])[0]
    assert doc["results"][0]["psnr"] == pytest.approx(psnr(gt, a))
    assert doc["results"][0]["ssim"] == pytest.approx(ssim3d(gt, a))
    assert f"{psnr(gt, a):.2f}" in lines[2]
    assert doc["data_range"] == pytest.approx(float(gt.max() - gt.min()))
    # the ground truth against itself: PSNR inf is written as null (strict JSON)
    assert main(["evaluate", "--ground-truth", vols["gt"], "--json", out_json, vols["gt"]]) == 0
    assert json.load(open(out_json))["results"][0]["psnr"] is None


@pytest.mark.parametrize("argv_fn,needle", [
    (lambda v, t: ["evaluate", "--ground-truth", v["gt"], v["other"]], "Shapes differ"),
    (lambda v, t: ["fsc", v["a"], v["other"]], "Shapes differ"),
    (lambda v, t: ["fsc", v["a"], str(t / "missing.mrc")], "not found"),
    (lambda v, t: ["evaluate", "--ground-truth", v["gt"], "--labels", "x,y", v["a"]], "label"),
    (lambda v, t: ["baseline", "bm3d", v["a"], str(t / "o.mrc")], "valid baselines: bm4d, n2v"),
    (lambda v, t: ["baseline", "gaussian", v["a"], str(t / "o.mrc"), "--sigma", "-1"], "sigma"),
    (lambda v, t: ["baseline", "bm4d", v["a"], str(t / "o.mrc"), "--sigma", "-0.5"], "sigma"),
    (lambda v, t: ["baseline", "lowpass", v["a"], v["a"]], "same file"),
    (lambda v, t: ["fsc", v["a"], v["b"], "--subvolume", "1,2"], "Z,Y,X"),
])
def test_bad_input_exits_2_without_output(vols, tmp_path, capsys, argv_fn, needle):
    assert main(argv_fn(vols, tmp_path)) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o.mrc").exists()


def test_baseline_writes_volume_with_header(vols, tmp_path, capsys):
    out = str(tmp_path / "g.mrc")
    assert main(["baseline", "gaussian", vols["a"], out, "--sigma", "1.0"]) == 0
    data, info = read_volume(out)
    src, sinfo = read_volume(vols["a"])
    assert data.shape == src.shape and info.voxel_size == pytest.approx(4.0)
    assert info.origin == pytest.approx(sinfo.origin)
    assert data.std() < src.std()  # smoothed
    assert main(["baseline", "lowpass", vols["a"], out, "--cutoff", "0.5", "--device", "cuda:0"]) == 0
    assert main(["baseline", "--list"]) == 0
    listing = capsys.readouterr().out
    for name in ("bm4d", "n2v", "lowpass", "gaussian", "topaz3d"):
        assert name in listing


@pytest.mark.parametrize("cmd,needle", [("fsc", "eq. 9"), ("evaluate", "data_range"), ("baseline", "--list")])
def test_help_documents_each_command(capsys, cmd, needle):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert needle in capsys.readouterr().out
