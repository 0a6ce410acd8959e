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


def _special(path, kind):
    """A FIFO, a character device (/dev/null's numbers; root only) or a listening socket's file at ``path``."""
    import socket
    import stat
    import pytest
    path = str(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "chardev":
        if not ROOT:
            pytest.skip("creating a device file needs root")
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        _special.sockets.append(s)
    return path


_special.sockets = []


def _kind(path):
    import stat
    m = os.lstat(path).st_mode
    return "fifo" if stat.S_ISFIFO(m) else "chardev" if stat.S_ISCHR(m) else "socket" if stat.S_ISSOCK(m) else \
        "file" if stat.S_ISREG(m) else "other"


class _Alarm:
    """``with _Alarm(60):`` fails the test instead of hanging (a FIFO read blocks forever)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def hang(signum, frame):
            raise AssertionError(f"hung for {self.seconds} s")
        self.old = signal.signal(signal.SIGALRM, hang)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        import signal
        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.old)
