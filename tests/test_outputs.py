"""Outputs (scnet.outputs, scnet.io): locked training folders, no stale model beside a new log, killed
writers leave neither output nor partial file, non-finite volumes are never written, every voxel is checked."""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from _trust import _train
from scnet.cli import main
from scnet.errors import SCNetInputError
from scnet.io import write_volume


def test_second_training_into_a_locked_folder_is_refused(fx, tmp_path, capsys):
    from scnet.outputs import lock_folder
    with lock_folder(str(tmp_path / "run")):
        rc = main(_train(fx, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2 and "in use" in err
    assert not (tmp_path / "run" / "loss_log.csv").exists()
    assert main(_train(fx, tmp_path)) == 0  # released


def test_new_training_removes_the_old_model_first(fx, tmp_path):
    """A re-run that dies must not leave the previous model.pt beside the new log and config."""
    shutil.copytree(fx / "run", tmp_path / "run")
    rc = main(_train(fx, tmp_path, "--lr", "1e30"))  # diverges -> stops in epoch 1
    assert rc == 2
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / "checkpoint.pt").exists()


def _kill_during(code, partial_glob_dir, tmp_path):
    p = subprocess.Popen([sys.executable, "-c", code], cwd=str(tmp_path), env={**os.environ})
    deadline = time.time() + 60
    while time.time() < deadline and not any(".partial-" in f for f in os.listdir(partial_glob_dir)):
        time.sleep(0.05)
    assert any(".partial-" in f for f in os.listdir(partial_glob_dir)), "the writer never started"
    p.send_signal(signal.SIGTERM)
    p.wait(30)
    return p.returncode


@pytest.mark.parametrize("writer", ["atomic", "volume_writer"])
def test_sigterm_removes_partial_output(tmp_path, writer):
    out = tmp_path / "out.mrc"
    if writer == "atomic":
        code = (f"import time; from scnet.outputs import atomic\n"
                f"with atomic({str(out)!r}) as t:\n open(t, 'w').write('x')\n time.sleep(60)\n")
    else:
        code = (f"import time; from scnet.io import VolumeWriter\n"
                f"with VolumeWriter({str(out)!r}, (8, 8, 8)) as w:\n w.data[:] = 1\n time.sleep(60)\n")
    rc = _kill_during(code, tmp_path, tmp_path)
    assert rc == -signal.SIGTERM
    assert os.listdir(tmp_path) == []  # neither the output nor a partial file


def test_killed_predict_leaves_no_output_and_no_partial(fx, tmp_path):
    """SIGTERM to a running `scnet predict`: neither OUT.mrc nor OUT.mrc.partial-<pid> remains."""
    vol = np.random.default_rng(0).normal(size=(64, 64, 64)).astype(np.float32)
    write_volume(str(tmp_path / "big.mrc"), vol, voxel_size=2.0)
    work = tmp_path / "out"
    work.mkdir()
    code = ("import sys; from scnet.cli import main; sys.exit(main(['predict', '--model', %r, '--input', %r, "
            "'--output', %r, '--tile-size', '16', '--overlap', '4', '--tta', '8', '--quiet']))"
            % (str(fx / "run" / "model.pt"), str(tmp_path / "big.mrc"), str(work / "den.mrc")))
    rc = _kill_during(code, work, tmp_path)
    assert rc == -signal.SIGTERM
    assert os.listdir(work) == []


def test_stale_partial_of_a_dead_process_is_cleaned_and_never_named_mrc(fx, tmp_path):
    out = tmp_path / "o.mrc"
    stale = tmp_path / "o.mrc.partial-999999999"
    stale.write_bytes(b"half a tomogram")
    assert main(["predict", "--model", str(fx / "run" / "model.pt"), "--input", str(fx / "noisy.mrc"),
                 "--output", str(out), "--quiet", "--tile-size", "16", "--overlap", "4"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["o.mrc"]
    from scnet.outputs import partial_name
    assert not partial_name(str(out)).endswith(".mrc")


def test_write_volume_refuses_non_finite(tmp_path):
    v = np.ones((4, 4, 4), np.float32)
    v[1, 2, 3] = np.inf
    with pytest.raises(SCNetInputError, match="NaN/Inf"):
        write_volume(str(tmp_path / "x.mrc"), v)
    assert os.listdir(tmp_path) == []


def test_every_voxel_is_checked():
    from scnet.io import check_volume
    v = np.random.default_rng(1).normal(size=(33, 40, 41)).astype(np.float32)
    for idx in [(0, 0, 0), (1, 1, 1), (32, 39, 40), (17, 3, 29)]:
        w = v.copy()
        w[idx] = np.nan
        with pytest.raises(SCNetInputError, match=r"1 NaN"):
            check_volume(w, "v", chunk=1000)  # many slabs
