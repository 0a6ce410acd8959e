"""How the engine environment is made: one recipe for ``scipion3 installb scnet``, ``make envs``
and an install by hand.

Standard library only: it runs on the Scipion side (any Python >= 3.8), before numpy or torch
exist::

    python -m scnet.engine_env PREFIX [--python PY] [--torch auto|cpu|cuda] [--torch-index URL]
                                      [--link | --copy] [--dry-run]

The steps (:func:`plan`), each printed before it runs; the first failure stops with one line
saying what to do, and leaves no ``PREFIX/bin/scnet`` (the mark of a finished environment):

1. ``PY -m venv PREFIX``, where PY is a Python >= 3.11 (the lock's numpy and scipy need it);
2. ``pip install --no-deps -r scnet/engine.lock``: every package of the environment at its pinned
   version and nothing else -- no resolver runs, so nothing can pull another build of torch;
3. torch, last, pinned by :data:`scnet.deps.TORCH`: the CPU build from the CPU index
   (:data:`CPU_INDEX`) with ``--no-deps`` (its dependencies are in the lock), or the CUDA build
   with its own CUDA libraries (the one resolver run: it adds nvidia-* packages, never another
   torch). ``auto`` takes CUDA where an NVIDIA driver is found (:func:`nvidia_driver_found`);
4. the engine itself from the files of this package (the ``scnet`` folder holding this module):
   linked when it is a source checkout (it then follows edits, as ``pip install -e`` would),
   copied when the package was installed from its wheel or sdist; then ``PREFIX/bin/scnet``;
5. check: ``PREFIX/bin/scnet --version`` runs and torch has TORCH's version.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

from . import deps

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
LOCK_FILE = os.path.join(PACKAGE_DIR, "engine.lock")
MIN_PYTHON = (3, 11)
TORCH_BUILDS = ("auto", "cpu", "cuda")
# pip index of torch's CPU builds (PyPI's Linux wheels of torch are CUDA builds of several GB)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the mark of a finished environment, written last
SCNET_COMMAND = os.path.join("bin", "scnet")


class EngineEnvError(RuntimeError):
    """A step failed or cannot run; the message says what to do."""


def nvidia_driver_found() -> bool:
    """An NVIDIA driver on this machine (its kernel module or ``nvidia-smi``)."""
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


def resolve_torch_build(build: str = "auto") -> str:
    """``cpu`` or ``cuda``: ``auto`` is ``cuda`` where an NVIDIA driver is found, else ``cpu``."""
    build = (build or "auto").strip().lower()
    if build not in TORCH_BUILDS:
        raise EngineEnvError(f"torch build {build!r} is not one of {', '.join(TORCH_BUILDS)} "
                             f"(plugin variable SCNET_TORCH).")
    if build == "auto":
        return "cuda" if nvidia_driver_found() else "cpu"
    return build


def torch_index(build: str, index: Optional[str] = None) -> str:
    """The pip index torch comes from: ``index`` when given, else the CPU index for ``cpu`` and
    pip's own index (PyPI: CUDA builds) for ``cuda``; ``""`` means pip's own."""
    if index:
        return index.strip()
    return CPU_INDEX if build == "cpu" else ""


def default_python() -> str:
    """The engine's Python: this one when it is >= 3.11, else ``python3.11`` from PATH."""
    if sys.version_info[:2] >= MIN_PYTHON:
        return sys.executable
    return "python%d.%d" % MIN_PYTHON


def is_checkout(package_dir: str = PACKAGE_DIR) -> bool:
    """True when ``scnet`` is a source checkout (pyproject.toml beside it), not an installed copy."""
    return os.path.isfile(os.path.join(os.path.dirname(package_dir), "pyproject.toml"))


def env_python(prefix: str) -> str:
    return os.path.join(prefix, "bin", "python")


def plan(prefix: str, python: Optional[str] = None, build: str = "auto", index: Optional[str] = None,
         link: Optional[bool] = None) -> List[Tuple[str, List[str]]]:
    """The steps as ``(what, argv)``; argv ``[]`` for the steps this module does itself."""
    prefix = os.path.abspath(prefix)
    python = python or default_python()
    build = resolve_torch_build(build)
    index = torch_index(build, index)
    link = is_checkout() if link is None else link
    py = env_python(prefix)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    torch = pip + (["--no-deps"] if build == "cpu" else []) + (["--index-url", index] if index else []) + [deps.TORCH]
    return [
        (f"check that {python} is Python >= {'.'.join(map(str, MIN_PYTHON))}", []),
        ("create the environment", [python, "-m", "venv", prefix]),
        ("install the lock, every package pinned, no resolver", pip + ["--no-deps", "-r", LOCK_FILE]),
        (f"install torch ({build} build), last", torch),
        (f"{'link' if link else 'copy'} the engine {PACKAGE_DIR} and write {SCNET_COMMAND}", []),
        ("check the engine", [os.path.join(prefix, SCNET_COMMAND), "--version"]),
    ]


def _clean_env() -> dict:
    """The environment for the engine's Python: nothing from the calling (Scipion) Python."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}


def _run(argv: List[str], what: str) -> str:
    print(f"[scnet engine] {what}: {' '.join(shlex.quote(a) for a in argv)}", flush=True)
    try:
        proc = subprocess.run(argv, env=_clean_env(), stdout=None, stderr=None)
    except FileNotFoundError:
        raise EngineEnvError(f"{argv[0]} was not found.") from None
    if proc.returncode != 0:
        raise EngineEnvError(f"'{what}' failed (exit {proc.returncode}): see pip's message above.")
    return what


def _output(argv: List[str]) -> str:
    """stdout of ``argv``; a failure raises :class:`EngineEnvError` with the end of its stderr."""
    try:
        proc = subprocess.run(argv, env=_clean_env(), capture_output=True, text=True)
    except OSError as exc:
        raise EngineEnvError(f"{argv[0]} cannot be run: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EngineEnvError(f"{' '.join(argv)} failed (exit {proc.returncode}): {' / '.join(tail)}")
    return proc.stdout.strip()


def check_python(python: str) -> None:
    need = ".".join(map(str, MIN_PYTHON))
    try:
        version = _output([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    except EngineEnvError:
        raise EngineEnvError(
            f"The SC-Net engine needs Python >= {need} and {python} cannot be run: install Python {need} "
            f"and point the plugin variable SCNET_ENGINE_PYTHON (scipion.conf [PLUGINS] or the environment) "
            f"to it, then run `scipion3 installb scnet` again.") from None
    if tuple(int(x) for x in version.split(".")) < MIN_PYTHON:
        raise EngineEnvError(
            f"The SC-Net engine needs Python >= {need}; {python} is Python {version}. Point the plugin "
            f"variable SCNET_ENGINE_PYTHON (scipion.conf [PLUGINS] or the environment) to a Python {need} "
            f"and run `scipion3 installb scnet` again.")


def _remove(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def install_engine_files(prefix: str, link: bool, package_dir: str = PACKAGE_DIR) -> str:
    """Put the ``scnet`` package into the environment's site-packages (a link or a copy) and write
    ``PREFIX/bin/scnet``, which runs ``scnet.cli.main`` with the environment's Python."""
    py = env_python(prefix)
    site = _output([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    target = os.path.join(site, "scnet")
    _remove(target)
    if link:
        os.symlink(package_dir, target)
    else:
        shutil.copytree(package_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    script = os.path.join(prefix, SCNET_COMMAND)
    # the shell finds the interpreter, so the prefix may hold spaces (a #! line cannot)
    with open(script + ".part", "w") as fh:
        fh.write("#!/bin/sh\n"
                 f"'''exec' {shlex.quote(py)} \"$0\" \"$@\"\n"
                 "' '''\n"
                 "import sys\n"
                 "from scnet.cli import main\n"
                 "if __name__ == '__main__':\n"
                 "    sys.exit(main())\n")
    os.chmod(script + ".part", 0o755)
    os.replace(script + ".part", script)
    return target


def check_engine(prefix: str) -> str:
    """``scnet --version`` runs and torch is the pinned version; returns a one-line description."""
    got = _output([os.path.join(prefix, SCNET_COMMAND), "--version"])
    torch = _output([env_python(prefix), "-c",
                     "import torch; print(torch.__version__, 'cuda' if torch.version.cuda else 'cpu')"])
    version, build = torch.split()
    if version.split("+")[0] != deps.version_of(deps.TORCH):
        raise EngineEnvError(f"torch {version} was installed instead of {deps.TORCH}: the environment is "
                             f"not the locked one. Remove {prefix} and install it again.")
    return f"{got}, torch {version} ({build})"


def create(prefix: str, python: Optional[str] = None, build: str = "auto", index: Optional[str] = None,
           link: Optional[bool] = None) -> str:
    """Run :func:`plan`; returns the check's line. On failure ``PREFIX/bin/scnet`` does not exist."""
    prefix = os.path.abspath(prefix)
    python = python or default_python()
    link = is_checkout() if link is None else link
    steps = plan(prefix, python, build, index, link)
    try:
        check_python(python)
        for what, argv in steps[1:4]:
            _run(argv, what)
        print(f"[scnet engine] {steps[4][0]}", flush=True)
        install_engine_files(prefix, link)
        print(f"[scnet engine] {steps[5][0]}", flush=True)
        return check_engine(prefix)
    except OSError as exc:
        _remove(os.path.join(prefix, SCNET_COMMAND))
        raise EngineEnvError(f"{exc}") from None
    except EngineEnvError:
        _remove(os.path.join(prefix, SCNET_COMMAND))
        raise


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m scnet.engine_env",
                                description="Create the SC-Net engine environment (what `scipion3 installb "
                                            "scnet` runs): the lock, then torch, then the engine.")
    p.add_argument("prefix", help="folder of the new environment (a venv)")
    p.add_argument("--python", default="", help="Python >= 3.11 for it (default: this one when it is "
                                                "3.11 or newer, else python3.11)")
    p.add_argument("--torch", default="auto", choices=TORCH_BUILDS,
                   help="torch build: auto (CUDA where an NVIDIA driver is found, else CPU), cpu or cuda")
    p.add_argument("--torch-index", default="",
                   help=f"pip index for torch (default: {CPU_INDEX} for the CPU build, pip's own for CUDA)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--link", dest="link", action="store_const", const=True,
                     help="link the engine's files (default for a source checkout)")
    how.add_argument("--copy", dest="link", action="store_const", const=False,
                     help="copy the engine's files (default for an installed package)")
    p.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    a = p.parse_args(argv)
    try:
        if a.dry_run:
            for what, cmd in plan(a.prefix, a.python or None, a.torch, a.torch_index or None, a.link):
                print(f"# {what}" + (f"\n{' '.join(shlex.quote(c) for c in cmd)}" if cmd else ""))
            return 0
        print(f"[scnet engine] ready: {create(a.prefix, a.python or None, a.torch, a.torch_index or None, a.link)}")
        return 0
    except EngineEnvError as exc:
        print(f"[scnet engine] ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
