"""`scnet filter | reconstruct | phantom | simulate`: outputs, geometry, help, bad input (exit 2, nothing written)."""
import json
import os

import mrcfile
import numpy as np
import pytest

from scnet.cli import main
from scnet.io import read_volume
from scnet.tiltseries import read_angles, write_angles


@pytest.fixture(scope="module")
def ph(tmp_path_factory):
    d = tmp_path_factory.mktemp("ph")
    assert main(["phantom", "--output-dir", str(d), "--shape", "16,24,32", "--tilt-step", "10",
                 "--voxel-size", "8", "--seed", "2"]) == 0
    return d


def test_phantom_outputs(ph):
    vol, info = read_volume(str(ph / "phantom.mrc"))
    st, sinfo = read_volume(str(ph / "phantom_ts.mrcs"))
    ang = read_angles(str(ph / "phantom_ts.tlt"))
    assert vol.shape == (16, 24, 32) and st.shape == (13, 24, 32) and ang.size == 13
    assert info.voxel_size == pytest.approx(8) and sinfo.voxel_size == pytest.approx(8)


@pytest.mark.parametrize("subset,n", [("all", 13), ("even", 7), ("odd", 6)])
def test_reconstruct(ph, tmp_path, subset, n):
    out = tmp_path / f"rec_{subset}.mrc"
    assert main(["reconstruct", str(ph / "phantom_ts.mrcs"), str(out), "--angles", str(ph / "phantom_ts.tlt"),
                 "--thickness", "16", "--backend", "builtin", "--subset", subset, "--voxel-size", "8"]) == 0
    vol, info = read_volume(str(out))
    truth, _ = read_volume(str(ph / "phantom.mrc"))
    assert vol.shape == truth.shape and info.voxel_size == pytest.approx(8)
    assert np.corrcoef(vol.ravel(), truth.ravel())[0, 1] > 0.5


def test_reconstruct_copies_origin_and_voxel_size(tmp_path):
    st = tmp_path / "ts.st"
    with mrcfile.new(str(st)) as m:
        m.set_data(np.random.default_rng(0).normal(size=(5, 4, 8)).astype(np.float32))
        m.voxel_size = 4.2
        m.header.origin.x, m.header.origin.y, m.header.origin.z = 10.0, 20.0, 0.0
    write_angles(str(tmp_path / "ts.tlt"), [-40, -20, 0, 20, 40])
    assert main(["reconstruct", str(st), str(tmp_path / "r.mrc"), "--angles", str(tmp_path / "ts.tlt"),
                 "--backend", "builtin", "--method", "sirt", "--sirt-iterations", "3"]) == 0
    vol, info = read_volume(str(tmp_path / "r.mrc"))
    assert vol.shape == (4, 4, 8) and info.voxel_size == pytest.approx(4.2) and np.allclose(info.origin, (10, 20, 0))


@pytest.mark.parametrize("method,extra", [("gaussian", ["--sigma", "1"]), ("lowpass", ["--cutoff", "0.4"]),
                                          ("topaz", [])])
def test_filter(ph, tmp_path, method, extra):
    out = tmp_path / f"f_{method}.mrcs"
    assert main(["filter", str(ph / "phantom_ts.mrcs"), str(out), "--method", method] + extra) == 0
    a, _ = read_volume(str(ph / "phantom_ts.mrcs"))
    b, info = read_volume(str(out))
    assert b.shape == a.shape and info.voxel_size == pytest.approx(8)
    assert np.abs(np.diff(b, axis=2)).mean() < np.abs(np.diff(a, axis=2)).mean()


def test_simulate_phantom_and_tilt_series(ph, tmp_path):
    d = tmp_path / "sim"
    assert main(["simulate", "--output-dir", str(d), "--phantom", "--shape", "16,24,32", "--tilt-step", "10",
                 "--sigma", "10", "--seed", "3"]) == 0
    for f in ("ground_truth.mrc", "noisy_ts.mrcs", "noisy_ts.tlt", "noisy_rec.mrc", "simulation.json"):
        assert (d / f).exists()
    js = json.loads((d / "simulation.json").read_text())
    assert js["sigma"] == 10 and js["seed"] == 3 and js["source"] == "phantom" and js["gaussian_sigma"] == 0
    gt, gi = read_volume(str(d / "ground_truth.mrc"))
    nr, _ = read_volume(str(d / "noisy_rec.mrc"))
    assert gt.shape == nr.shape == (16, 24, 32) and gi.voxel_size == pytest.approx(10)
    d2 = tmp_path / "sim2"
    assert main(["simulate", "--output-dir", str(d2), "--tilt-series", str(ph / "phantom_ts.mrcs"),
                 "--angles", str(ph / "phantom_ts.tlt"), "--sigma", "20", "--thickness", "16"]) == 0
    js2 = json.loads((d2 / "simulation.json").read_text())
    assert js2["source"] == "tilt series" and js2["gaussian_sigma"] == 2.0 and js2["thickness"] == 16
    assert read_volume(str(d2 / "noisy_rec.mrc"))[1].voxel_size == pytest.approx(8)


@pytest.mark.parametrize("cmd", ["filter", "reconstruct", "phantom", "simulate"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0 and len(capsys.readouterr().out) > 300


def _bad(argv, out_paths, capsys, match):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err, err
    for p in out_paths:
        assert not os.path.exists(p)


def test_bad_inputs_exit_2_and_write_nothing(ph, tmp_path, capsys, monkeypatch):
    st, tlt = str(ph / "phantom_ts.mrcs"), str(ph / "phantom_ts.tlt")
    out = str(tmp_path / "out.mrc")
    short = str(tmp_path / "short.tlt")
    write_angles(short, [-10, 0, 10])
    _bad(["reconstruct", st, out, "--angles", short], [out], capsys, "must match")
    _bad(["reconstruct", st, out, "--angles", tlt, "--thickness", "0"], [out], capsys, ">= 1")
    _bad(["reconstruct", st, out, "--angles", tlt, "--thickness", "500"], [out], capsys, "4x")
    _bad(["reconstruct", st, out, "--angles", tlt, "--radial", "0.3"], [out], capsys, "R1,R2")
    monkeypatch.setenv("IMOD_DIR", str(tmp_path / "noimod"))
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    _bad(["reconstruct", st, out, "--angles", tlt, "--backend", "imod"], [out], capsys, "IMOD_DIR")
    _bad(["filter", st, out, "--method", "gaussian", "--sigma", "-1"], [out], capsys, "sigma")
    _bad(["filter", st, st, "--method", "gaussian"], [], capsys, "same file")
    sim = str(tmp_path / "simdir")
    _bad(["simulate", "--output-dir", sim, "--phantom", "--sigma", "-5"], [sim], capsys, "sigma")
    _bad(["simulate", "--output-dir", sim, "--sigma", "5"], [sim], capsys, "exactly one source")
    _bad(["simulate", "--output-dir", sim, "--tilt-series", st, "--angles", short], [sim], capsys, "must match")
    _bad(["phantom", "--output-dir", sim, "--shape", "4,4"], [sim], capsys, "shape")
    _bad(["phantom", "--output-dir", sim, "--tilt-range", "100"], [sim], capsys, "tilt_range=100.0 (--tilt-range): must be in (0, 90] deg")
    empty = tmp_path / "empty.mrc"
    empty.write_bytes(b"")
    _bad(["reconstruct", str(empty), out, "--angles", tlt], [out], capsys, "empty")
    flat = tmp_path / "img2d.mrc"
    with mrcfile.new(str(flat)) as m:
        m.set_data(np.arange(32, dtype=np.float32).reshape(4, 8))
    _bad(["filter", str(flat), out, "--method", "gaussian"], [out], capsys, "3D")
