"""What the trust tests share: tiny training options, file helpers, a malicious pickle."""
import hashlib
import os

import mrcfile
import torch

TINY = ["--patch-size", "16", "--epochs", "1", "--iterations-per-epoch", "2", "--base-width", "2", "--quiet",
        "--mode", "single"]  # the synthetic volumes' rows are independent: auto would pick split


ROOT = os.geteuid() == 0


def _sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.isfile(path) else None


def _mrc(path, data, mode=None, voxel=2.0):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(data)
        m.voxel_size = voxel
    return str(path)


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('SCNET_PWNED', '/tmp/scnet_pwned')}",))


def _train(fx, tmp_path, *extra, noisy=None, prior=None):
    return ["train", "--noisy", noisy or str(fx / "noisy.mrc"), "--prior", prior or str(fx / "prior.mrc"),
            "--output-dir", str(tmp_path / "run")] + TINY + list(extra)


def _evil_pickle(tmp_path, name="model.pt"):
    p = tmp_path / name
    torch.save({"format": "scnet-model-1", "payload": _Evil()}, str(p))
    return str(p)


def _truncated(fx, tmp_path, src="run/model.pt", name="model.pt"):
    raw = open(fx / src, "rb").read()
    (tmp_path / name).write_bytes(raw[:len(raw) // 2])
    return str(tmp_path / name)
