"""Outputs (scnet.outputs, scnet.io): locked training folders, a failed re-training leaves the folder (and its
model) as it was, killed writers leave neither output nor partial file, partial files of other processes (an
input among them) are never touched, outputs are fsynced, a full disk is one line and leaves nothing,
non-finite volumes are never written, every voxel is checked."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np
import pytest

from _trust import ROOT, TINY, _sha, _train
from scnet.cli import main
from scnet.errors import SCNetInputError
from scnet.io import write_volume
from scnet.rules import TRAIN_OUTPUTS


def test_second_training_into_a_locked_folder_is_refused(fx, tmp_path, capsys):
    from scnet.outputs import lock_folder
    with lock_folder(str(tmp_path / "run")):
        rc = main(_train(fx, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2 and "in use" in err
    assert not (tmp_path / "run" / "loss_log.csv").exists()
    assert main(_train(fx, tmp_path)) == 0  # released


def _folder(d):
    """Every file of a training folder (hidden working folders included) -> sha256."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            if f != ".scnet.lock":
                out[os.path.relpath(os.path.join(root, f), d)] = _sha(os.path.join(root, f))
    return out


def test_failed_retraining_leaves_the_folder_as_it_was(fx, tmp_path, capsys):
    """A diverging re-run into a folder that holds a valid model: exit 2, the model, checkpoint, log, options
    and summary byte-identical, nothing of the failed run left (it used to delete the model first)."""
    shutil.copytree(fx / "run", tmp_path / "run")
    before = _folder(tmp_path / "run")
    assert "model.pt" in before and "loss_log.csv" in before
    rc = main(_train(fx, tmp_path, "--lr", "1e30"))  # diverges in epoch 1
    assert rc == 2 and "diverged" in capsys.readouterr().err
    assert _folder(tmp_path / "run") == before


def test_failed_resume_leaves_the_folder_as_it_was(fx, tmp_path, capsys):
    """A resume that diverges (its checkpoint valid, its data extreme) restores the checkpoint and model."""
    shutil.copytree(fx / "run", tmp_path / "run")
    before = _folder(tmp_path / "run")
    argv = _train(fx, tmp_path, "--resume")
    argv[argv.index("--epochs") + 1] = "3"

    def boom(*a, **k):
        raise SCNetInputError("Training stopped: the loss became nan (simulated)")
    import scnet.modelfile as mf
    orig, mf.check_loss = mf.check_loss, boom
    try:
        assert main(argv) == 2
    finally:
        mf.check_loss = orig
    assert "simulated" in capsys.readouterr().err
    assert _folder(tmp_path / "run") == before


def test_interrupted_retraining_keeps_the_previous_model_until_a_new_one_is_complete(fx, tmp_path):
    """SIGTERM during a re-training: the previous results wait in .scnet-previous/ (no model.pt in the folder:
    the killed run never looks complete), its checkpoint resumes, and the completed run replaces them."""
    shutil.copytree(fx / "run", tmp_path / "run")
    run = tmp_path / "run"
    old = _sha(run / "model.pt")
    argv = _train(fx, tmp_path, "--seed", "3")
    argv[argv.index("--epochs") + 1] = "100000"
    code = f"import sys; from scnet.cli import main; sys.exit(main({argv!r}))"
    p = subprocess.Popen([sys.executable, "-c", code], cwd=str(tmp_path))
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoint.pt").exists() or \
            _sha(run / "checkpoint.pt") == _sha(fx / "run" / "checkpoint.pt"):
        time.sleep(0.1)
    p.send_signal(signal.SIGTERM)
    assert p.wait(60) == -signal.SIGTERM
    assert not (run / "model.pt").exists() and (run / "checkpoint.pt").exists()
    assert _sha(run / ".scnet-previous" / "model.pt") == old
    assert not (run / ".scnet-undo").exists()  # removed by the SIGTERM handler
    import torch
    epoch = torch.load(str(run / "checkpoint.pt"), weights_only=True)["epoch"]
    argv[argv.index("--epochs") + 1] = str(epoch + 1)
    assert main(argv + ["--resume"]) == 0
    assert (run / "model.pt").exists() and _sha(run / "model.pt") != old
    assert not (run / ".scnet-previous").exists()


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


def _predict_argv(fx, inp, out, *extra):
    return ["predict", "--model", str(fx / "run" / "model.pt"), "--input", str(inp), "--output", str(out), "--quiet",
            "--tile-size", "16", "--overlap", "4", *extra]


def test_partial_files_of_other_processes_are_never_touched(fx, tmp_path):
    """A `.partial-<pid>` of a dead process stays (it may be anyone's file: cleanup only removes this process's
    own partial files); a partial name never ends in .mrc."""
    out = tmp_path / "o.mrc"
    stale = tmp_path / "o.mrc.partial-999999999"
    stale.write_bytes(b"half a tomogram")
    assert main(_predict_argv(fx, fx / "noisy.mrc", out)) == 0
    assert sorted(os.listdir(tmp_path)) == ["o.mrc", "o.mrc.partial-999999999"]
    assert stale.read_bytes() == b"half a tomogram"
    from scnet.outputs import partial_name
    assert not partial_name(str(out)).endswith(".mrc")


def test_predict_never_deletes_its_input_named_like_a_partial_file(fx, tmp_path):
    inp = tmp_path / "o.mrc.partial-999999"
    shutil.copy(fx / "noisy.mrc", inp)
    before = _sha(inp)
    assert main(_predict_argv(fx, inp, tmp_path / "o.mrc")) == 0
    assert _sha(inp) == before and (tmp_path / "o.mrc").exists()


def test_a_file_under_this_process_partial_name_is_left_alone(tmp_path):
    from scnet.outputs import atomic, partial_name, write_text
    out = tmp_path / "r.json"
    mine = tmp_path / os.path.basename(partial_name(str(out)))
    mine.write_text("someone else's")
    write_text(str(out), "{}\n")
    assert out.read_text() == "{}\n" and mine.read_text() == "someone else's"
    with pytest.raises(RuntimeError):
        with atomic(str(out)) as tmp:
            open(tmp, "w").write("x")
            raise RuntimeError("boom")
    assert sorted(os.listdir(tmp_path)) == sorted([out.name, mine.name])


def test_outputs_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    from scnet.outputs import write_text
    out = tmp_path / "a.json"
    write_text(str(out), "{}")
    assert any(".partial-" in p for p in synced) and str(tmp_path) in synced
    synced.clear()
    write_volume(str(tmp_path / "v.mrc"), np.random.default_rng(0).normal(size=(4, 4, 4)), 2.0)
    assert any(".partial-" in p for p in synced) and str(tmp_path) in synced
    synced.clear()
    from scnet.io import VolumeWriter
    with VolumeWriter(str(tmp_path / "w.mrc"), (4, 4, 4), 2.0) as w:
        w.data[:] = np.arange(64).reshape(4, 4, 4)
    assert any(".partial-" in p for p in synced) and str(tmp_path) in synced


# ----------------------------------------------------------------------------- a full disk


@contextmanager
def _small_fs(tmp_path, size="2m"):
    """A real, small file system (tmpfs) at tmp_path/fs; skipped where mounting is not allowed."""
    d = tmp_path / "fs"
    d.mkdir()
    if not ROOT or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                                  capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root and the permission to mount (the statvfs test still runs)")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False)


def _big_input(tmp_path, edge=96):
    p = tmp_path / "big.mrc"
    write_volume(str(p), np.random.default_rng(0).normal(size=(edge, edge, edge)).astype(np.float32), 2.0)
    return p


def test_full_disk_predict_is_one_line_and_leaves_nothing(fx, tmp_path):
    """predict into a real 2 MB file system, too small for its 3.5 MB output: exit 1, 'No space left on <fs>:
    N MB needed', nothing left there (before: a bus error through the memory map and a partial file)."""
    big = _big_input(tmp_path)
    with _small_fs(tmp_path) as fs:
        r = subprocess.run([sys.executable, "-c", "import sys; from scnet.cli import main; sys.exit(main(sys.argv[1:]))",
                            *_predict_argv(fx, big, fs / "den.mrc")], capture_output=True, text=True)
        assert r.returncode == 1, r.stderr
        line = r.stderr.strip().splitlines()[-1]
        assert f"No space left on {fs}: " in line and "MB needed" in line and "Traceback" not in r.stderr
        assert os.listdir(fs) == []


def test_full_disk_when_the_free_space_is_misreported_is_still_one_line(fx, tmp_path):
    """Free space checked as plenty (another writer fills the disk after the check): the blocks of the memory
    map are reserved before any write, so the run ends with the same line, never with SIGBUS."""
    big = _big_input(tmp_path)
    with _small_fs(tmp_path) as fs:
        code = ("import sys; import scnet.outputs as o; o.free_bytes = lambda d: 1 << 40\n"
                "from scnet.cli import main; sys.exit(main(sys.argv[1:]))")
        r = subprocess.run([sys.executable, "-c", code, *_predict_argv(fx, big, fs / "den.mrc")],
                           capture_output=True, text=True)
        assert r.returncode == 1, (r.returncode, r.stderr[-2000:])  # -7 would be SIGBUS
        assert f"No space left on {fs}" in r.stderr and "Traceback" not in r.stderr
        assert os.listdir(fs) == []


def test_full_disk_small_outputs_leave_nothing(fx, tmp_path):
    """A disk already full: fsc --json, filter (written, not mapped) and train end with the line, nothing left."""
    with _small_fs(tmp_path, "1m") as fs:
        with open(fs / "filler", "wb") as fh:
            try:
                while True:
                    fh.write(bytes(65536))
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        for argv in (["fsc", str(fx / "noisy.mrc"), str(fx / "prior.mrc"), "--json", str(fs / "f.json")],
                     ["filter", str(fx / "stack.mrcs"), str(fs / "f.mrcs"), "--method", "gaussian"],
                     _train(fx, fs)):
            r = subprocess.run([sys.executable, "-c", "import sys; from scnet.cli import main; "
                                "sys.exit(main(sys.argv[1:]))", *argv], capture_output=True, text=True)
            assert r.returncode == 1 and f"No space left on {fs}" in r.stderr, r.stderr[-2000:]
            assert "Traceback" not in r.stderr and sorted(os.listdir(fs)) in (["filler"], ["filler", "run"])
        assert os.listdir(fs / "run") == [".scnet.lock"]  # the training's folder: its (empty) lock file only


def test_full_disk_checked_before_writing(fx, tmp_path, monkeypatch, capsys):
    """The free-space check itself (statvfs reports 1 MB free; runs everywhere, no mount needed)."""
    import scnet.outputs as o
    big = _big_input(tmp_path)
    monkeypatch.setattr(o, "free_bytes", lambda d: 10 ** 6)
    out = tmp_path / "den" / "o.mrc"
    assert main(_predict_argv(fx, big, out)) == 1
    err = capsys.readouterr().err
    needed = (96 ** 3 * 4 + 1024 + o.MARGIN_BYTES) / 1e6
    assert f"No space left on {out.parent}: {needed:.1f} MB needed, 1.0 MB free" in err, err
    assert os.listdir(out.parent) == []


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
