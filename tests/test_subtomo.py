"""Subtomogram averaging, the downstream measure (scnet.subtomo, `scnet average`): the measure itself is tested
on synthetic particles with known positions, orientations and shifts."""
import json

import numpy as np
import pytest

from scnet.cli import main
from scnet.errors import SCNetInputError
from scnet.io import write_volume
from scnet.subtomo import (average, box_grid, extract, gold_standard, independent_halves, inside, local_shifts,
                           read_particles, refine, rotation_to_z, write_particles)

BOX = 12


def _template(box=BOX):
    """An asymmetric object: three Gaussian blobs of different sizes at asymmetric offsets (box centre box//2)."""
    g = box_grid(box)
    t = np.zeros((box, box, box))
    for (z, y, x), s, a in (((2.5, 0, 0), 1.0, 1.0), ((-1, 2.5, 0), 1.0, 0.8), ((-1, -1, 3), 1.0, 0.6)):
        t += a * np.exp(-((g[0] - z) ** 2 + (g[1] - y) ** 2 + (g[2] - x) ** 2) / (2 * s * s))
    return t.astype(np.float32)


def _random_vectors(n, rng):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _place(shape, centres, rotations, template):
    """A volume with ``template`` at each centre, rotated: value at x = template sampled at R^T (x - c)."""
    from scipy.ndimage import map_coordinates
    vol = np.zeros(shape, np.float32)
    box = template.shape[0]
    r = box // 2 + 3
    g = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * 3, indexing="ij")).reshape(3, -1).astype(float)
    for c, R in zip(centres, rotations):
        ci = np.rint(c).astype(int)
        x = g + ci[:, None]
        local = R.T @ (x - np.asarray(c)[:, None]) + box // 2
        vals = map_coordinates(template, local, order=1, mode="constant", cval=0.0)
        vol[tuple(x.astype(int))] += vals
    return vol


def _grid_centres(shape, spacing, margin):
    axes = [np.arange(margin, n - margin, spacing) for n in shape]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3).astype(float)


def test_identity_extraction_is_the_plain_crop():
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(30, 31, 32)).astype(np.float32)
    c = np.array([[10, 12, 15], [15, 16, 17]], float)
    sub = extract(vol, c, None, BOX)
    for k, cc in enumerate(c.astype(int)):
        lo = cc - BOX // 2
        np.testing.assert_array_equal(sub[k], vol[lo[0]:lo[0] + BOX, lo[1]:lo[1] + BOX, lo[2]:lo[2] + BOX])


def test_rotation_to_z():
    rng = np.random.default_rng(1)
    v = np.vstack([_random_vectors(50, rng), [[1, 0, 0], [-1, 0, 0]]])
    R = rotation_to_z(v * 3.0)  # any length: normalised
    np.testing.assert_allclose(R[:, :, 0], v, atol=1e-12)
    np.testing.assert_allclose(np.einsum("nij,nik->njk", R, R), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    with pytest.raises(SCNetInputError, match="vector 2"):
        rotation_to_z([[1, 0, 0], [0, 0, 0]])


def test_known_orientations_are_recovered():
    rng = np.random.default_rng(2)
    shape = (48, 64, 64)
    centres = _grid_centres(shape, 16, 14) + rng.uniform(-0.4, 0.4, size=(1, 3))
    vecs = _random_vectors(len(centres), rng)
    R = rotation_to_z(vecs)
    t = _template()
    vol = _place(shape, centres, R, t)
    right = average(vol, centres, R, BOX)
    wrong = average(vol, centres, None, BOX)
    corr = lambda a: float(np.corrcoef(a.ravel(), t.ravel())[0, 1])  # noqa: E731
    assert corr(right) > 0.95
    assert corr(wrong) < corr(right) - 0.2


def test_known_shifts_are_recovered_under_noise():
    rng = np.random.default_rng(3)
    shape = (48, 96, 96)
    centres = _grid_centres(shape, 12, 12)  # 72 particles, 36 per half
    R = rotation_to_z(_random_vectors(len(centres), rng))
    s_true = rng.integers(-2, 3, size=(len(centres), 3))
    true_centres = centres + np.einsum("nij,nj->ni", R, s_true.astype(float))
    t = _template()
    vol = _place(shape, true_centres, R, t) + rng.normal(0, 0.1, shape).astype(np.float32)
    # against the true template: every shift exactly
    s = local_shifts(extract(vol, centres, R, BOX), t, max_shift=2)
    assert (s == s_true).all(axis=1).mean() >= 0.9
    # refine (each half against its own average, from the blurred average at the wrong centres) brings every
    # particle onto the truth up to one offset common to its half (an average has no absolute origin)
    halves = (np.arange(0, len(centres), 2), np.arange(1, len(centres), 2))
    new = refine(vol, centres, R, BOX, halves, iterations=3, max_shift=2)
    for h in halves:
        before = np.einsum("nji,nj->ni", R[h], centres[h] - true_centres[h])  # particle frame
        after = np.einsum("nji,nj->ni", R[h], new[h] - true_centres[h])
        off = np.median(after, axis=0)
        assert np.abs(off).max() <= 1.0
        assert (np.linalg.norm(after - off, axis=1) < 0.5).mean() >= 0.9
        assert (np.linalg.norm(before - np.median(before, axis=0), axis=1) < 0.5).mean() < 0.2


def test_halves_share_no_voxel():
    rng = np.random.default_rng(4)
    # two clusters far apart: whole clusters go to each half
    a = rng.normal(0, 2, size=(40, 3)) + 20
    b = rng.normal(0, 2, size=(30, 3)) + 80
    ha, hb, dropped = independent_halves(np.vstack([a, b]), BOX, seed=0)
    assert dropped == 0 and {len(ha), len(hb)} == {40, 30}
    assert set(ha).isdisjoint(hb)
    # one dense lattice: a plane split, no pair across it closer than two box radii
    c = _grid_centres((40, 80, 40), 3, 2)
    ha, hb, dropped = independent_halves(c, BOX, seed=0)
    assert len(ha) > 0 and len(hb) > 0 and dropped == len(c) - len(ha) - len(hb)
    from scipy.spatial.distance import cdist
    assert cdist(c[ha], c[hb]).min() >= 2 * np.ceil(BOX * np.sqrt(3) / 2) - 1e-9


def test_gold_standard_noise_free_noise_and_particle_count():
    rng = np.random.default_rng(5)
    shape = (40, 96, 96)
    centres = _grid_centres(shape, 22, 12)
    vecs = _random_vectors(len(centres), rng)
    R = rotation_to_z(vecs)
    clean = _place(shape, centres, R, _template())
    res = gold_standard(clean, centres, vecs, box=BOX, voxel_size=10.0, iterations=0)
    assert res["n_particles"] == len(centres) and res["n_dropped"] == 0
    # noise-free halves: FSC near 1 (trilinear sampling of rotated copies blurs a little near Nyquist)
    assert np.isnan(res["fsc_0.143"]) and np.isnan(res["fsc_0.5"]) and min(res["fsc"][1:]) > 0.85
    noise = rng.normal(size=shape).astype(np.float32)
    res = gold_standard(noise, centres, vecs, box=BOX, voxel_size=10.0, iterations=0)
    assert res["fsc_0.5"] > 30.0 or np.isinf(res["fsc_0.5"])  # pure noise: no correlation beyond the lowest shells
    noisy = clean + 0.8 * noise
    few = gold_standard(noisy, centres, vecs, box=BOX, voxel_size=10.0, iterations=0, per_half=2)
    many = gold_standard(noisy, centres, vecs, box=BOX, voxel_size=10.0, iterations=0)
    assert many["snr"] > few["snr"] and many["half_sizes"] != few["half_sizes"] == [2, 2]
    assert inside(centres, shape, BOX).all()


def test_particle_files(tmp_path):
    p = tmp_path / "p.txt"
    p.write_text("# x y z nx ny nz\n1 2 3 0 0 1\n4 5 6  1 0 0  # a comment\n")
    c, v = read_particles(str(p))
    np.testing.assert_array_equal(c, [[3, 2, 1], [6, 5, 4]])  # x y z -> z y x
    np.testing.assert_array_equal(v, [[1, 0, 0], [0, 0, 1]])
    write_particles(str(tmp_path / "q.txt"), c, v, comment="round trip")
    c2, v2 = read_particles(str(tmp_path / "q.txt"))
    np.testing.assert_allclose(c2, c) and np.testing.assert_allclose(v2, v)
    (tmp_path / "xyz.txt").write_text("1 2 3\n")
    assert read_particles(str(tmp_path / "xyz.txt"))[1] is None
    for text, words in (("1 2\n", "2 columns"), ("1 2 x\n", "not numbers"), ("1 2 3\n1 2 3 0 0 1\n", "one format"),
                        ("# nothing\n", "no particles"), ("1 2 nan\n", "not finite")):
        (tmp_path / "bad.txt").write_text(text)
        with pytest.raises(SCNetInputError, match=words) as exc:
            read_particles(str(tmp_path / "bad.txt"))
        assert "bad.txt" in str(exc.value)
    with pytest.raises(SCNetInputError, match="not found"):
        read_particles(str(tmp_path / "none.txt"))


def test_cli_average(tmp_path, capsys):
    rng = np.random.default_rng(6)
    shape = (40, 96, 96)
    centres = _grid_centres(shape, 22, 12)
    vecs = _random_vectors(len(centres), rng)
    vol = _place(shape, centres, rotation_to_z(vecs), _template()) + rng.normal(0, 0.3, shape).astype(np.float32)
    write_volume(str(tmp_path / "v.mrc"), vol, voxel_size=40.0)
    write_volume(str(tmp_path / "small.mrc"), vol[:, :48], voxel_size=40.0)
    write_particles(str(tmp_path / "p.txt"), centres, vecs)
    args = ["average", "--volume", str(tmp_path / "v.mrc"), "--particles", str(tmp_path / "p.txt"),
            "--box", str(BOX), "--json", str(tmp_path / "a.json"), "--csv", str(tmp_path / "a.csv"),
            "--output", str(tmp_path / "avg.mrc")]
    assert main(args) == 0
    assert "particles" in capsys.readouterr().out
    d = json.load(open(tmp_path / "a.json"))
    assert {"n_particles", "n_dropped", "box", "voxel_size", "fsc_0.5", "fsc_0.143", "snr", "mean_shift",
            "frequency", "fsc", "half_sizes"} <= set(d)
    assert d["voxel_size"] == 40.0 and "average_a" not in d
    from scnet.io import read_volume
    avg, info = read_volume(str(tmp_path / "avg.mrc"))
    assert avg.shape == (BOX,) * 3 and info.voxel_size == 40.0
    # random subsets: R results, their mean and SD
    assert main(args[:-6] + ["--json", str(tmp_path / "r.json"), "--repeats", "3", "--repeats-per-half", "3"]) == 0
    sub = json.load(open(tmp_path / "r.json"))["subsets"]
    assert sub["repeats"] == 3 and sub["per_half"] == 3 and len(sub["snr"]) == 3
    assert sub["snr_mean"] == pytest.approx(np.mean(sub["snr"])) and sub["snr_sd"] >= 0
    assert main(args[:-6] + ["--repeats", "2", "--repeats-per-half", "1"]) == 2
    bad = ["average", "--volume", str(tmp_path / "v.mrc"), "--align-on", str(tmp_path / "small.mrc"),
           "--particles", str(tmp_path / "p.txt"), "--json", str(tmp_path / "b.json")]
    assert main(bad) == 2 and not (tmp_path / "b.json").exists()
    assert "--align-on" in capsys.readouterr().err
    # an output may not overwrite an input
    assert main(["average", "--volume", str(tmp_path / "v.mrc"), "--particles", str(tmp_path / "p.txt"),
                 "--output", str(tmp_path / "v.mrc")]) == 2
