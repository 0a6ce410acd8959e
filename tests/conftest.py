"""Engine-test fixtures: ``fx``, valid inputs of every kind (shared by the trust tests)."""
import json
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the tests' own helper modules

from _trust import TINY  # noqa: E402
from scnet.cli import main  # noqa: E402
from scnet.data import synthetic_pair  # noqa: E402
from scnet.io import write_volume  # noqa: E402


@pytest.fixture(scope="session")
def fx(tmp_path_factory):
    """Valid inputs of every kind: volumes, a tilt series + angles, a config, a trained model."""
    d = tmp_path_factory.mktemp("fx")
    _, noisy, prior = synthetic_pair((16, 24, 20), seed=0)
    write_volume(str(d / "noisy.mrc"), noisy, voxel_size=2.0)
    write_volume(str(d / "prior.mrc"), prior, voxel_size=2.0)
    assert main(["phantom", "--output-dir", str(d / "ph"), "--shape", "16,24,24", "--tilt-step", "15"]) == 0
    shutil.copy(d / "ph" / "phantom_ts.mrcs", d / "stack.mrcs")
    shutil.copy(d / "ph" / "phantom_ts.tlt", d / "stack.tlt")
    (d / "stack.xf").write_text("".join(f"1 0 0 1 {i % 3 - 1} 0.5\n" for i in range(9)))  # 9 tilts (step 15)
    json.dump({"seed": 1}, open(d / "cfg.json", "w"))
    (d / "particles.txt").write_text("10 12 8 0 0 1\n9 11 7 1 0 0\n")
    assert main(["train", "--noisy", str(d / "noisy.mrc"), "--prior", str(d / "prior.mrc"),
                 "--output-dir", str(d / "run")] + TINY) == 0
    return d


@pytest.fixture
def tiny_halves():
    """(clean, noisy, prior, even, odd) of a 20x24x24 synthetic volume; the halves noisier than the full one."""
    import numpy as np
    clean, noisy, prior = synthetic_pair((20, 24, 24), noise=1.0, seed=1)
    n = np.random.default_rng(0).standard_normal((2,) + clean.shape).astype(np.float32)
    return clean, noisy, prior, clean + 1.4 * n[0], clean + 1.4 * n[1]
