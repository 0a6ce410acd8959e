"""Synthetic cellular phantom and its missing-wedge tilt series."""
import numpy as np
import pytest

from scnet.errors import SCNetInputError
from scnet.filters import gaussian_3d
from scnet.phantom import _bilayer, make_phantom, phantom_tilt_series, tilt_angles
from scnet.recon import reproject


def test_seeded_and_shaped():
    a = make_phantom((24, 32, 40), seed=3)
    b = make_phantom((24, 32, 40), seed=3)
    c = make_phantom((24, 32, 40), seed=4)
    assert a.shape == (24, 32, 40) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.isfinite(a)) and a.max() > 0.7 and -0.5 < a.min() < 0.2


def test_bilayer_profile_two_leaflets():
    d = np.linspace(-6, 6, 1201)
    p = _bilayer(d, 2.25, 0.6, 1.0)
    peaks = d[1:-1][(p[1:-1] > p[:-2]) & (p[1:-1] > p[2:])]
    assert np.allclose(sorted(peaks), [-2.25, 2.25], atol=0.02)       # 4.5 nm apart at 10 A/voxel
    assert p[600] < 0.1 * p.max()                                    # gap between the leaflets


def test_fine_structure_defeats_a_gaussian_filter():
    """Membranes/particles are finer than sigma=2: the Gaussian loses >40% of the signal's variation
    and much of the power lies above 0.15 cycles/voxel (the bilayer spacing is ~0.22)."""
    v = make_phantom((48, 48, 48), seed=0)
    g = gaussian_3d(v, 2.0)
    assert np.linalg.norm(g - v) / np.linalg.norm(v - v.mean()) > 0.4
    F = np.abs(np.fft.rfftn(v - v.mean())) ** 2
    f = np.sqrt(sum(np.meshgrid(np.fft.fftfreq(48) ** 2, np.fft.fftfreq(48) ** 2, np.fft.rfftfreq(48) ** 2,
                                indexing="ij")))
    assert F[f > 0.15].sum() / F.sum() > 0.2


def test_voxel_size_scales_features():
    """At a larger voxel size the same content is smaller: more high-frequency power."""
    def hf(v):
        F = np.abs(np.fft.rfftn(v - v.mean())) ** 2
        f = np.sqrt(sum(np.meshgrid(*[np.fft.fftfreq(n) ** 2 for n in v.shape[:2]],
                                    np.fft.rfftfreq(v.shape[2]) ** 2, indexing="ij")))
        return F[f > 0.15].sum() / F.sum()
    assert hf(make_phantom((40, 40, 40), 1, voxel_size=20.0)) > hf(make_phantom((40, 40, 40), 1, voxel_size=5.0))


def test_tilt_series_missing_wedge_defaults():
    stack, angles, vol = phantom_tilt_series((16, 20, 24), seed=1)
    assert angles.size == 41 and angles[0] == -60 and angles[-1] == 60 and np.allclose(np.diff(angles), 3)
    assert stack.shape == (41, 20, 24)
    assert np.allclose(stack, reproject(vol, angles))
    assert np.allclose(tilt_angles(50, 2)[[0, -1]], [-50, 50])


@pytest.mark.parametrize("shape", [(4, 32, 32), (32, 32), "abc", (1, 2, 3, 4)])
def test_bad_shapes(shape):
    with pytest.raises(SCNetInputError, match="shape"):
        make_phantom(shape)


@pytest.mark.parametrize("rng,step", [(0, 3), (95, 3), (60, 0), (60, -1), (60, 200)])
def test_bad_tilt_scheme(rng, step):
    with pytest.raises(SCNetInputError, match="tilt"):
        tilt_angles(rng, step)
