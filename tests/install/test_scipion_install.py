"""What a user does to add SC-Net to Scipion 3, for real: README's "Install into an existing
Scipion 3" commands, run line by line as written (`make test-install`, part of `make test`).

A fresh temporary folder holds a new HOME (so ``~/scipion3`` is new), a venv standing for the
user's own Python (``pip``/``python`` on PATH) and ``scipion-em-scnet``, a link to this checkout,
so ``installp -p scipion-em-scnet --devel`` is the README's line verbatim. Only pip's cache is
shared between runs (``SCNET_INSTALL_CACHE``, default ``.cache/install-test``).
Every command's exit status is asserted and its time printed. Afterwards: the plugin is the only
thing added to Scipion's environment; the engine environment holds exactly the lock plus the
locked torch (CPU build here: no NVIDIA driver), under 3 GB, and ``scnet --version`` runs;
``uninstallb`` + ``installb`` rebuild it. A second Scipion on Python 3.8 (where one is on the
machine) runs the plugin tests with an engine made from a Python 3.11.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from scnet import __version__, deps, engine_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(REPO, "README.md")
SECTION = "## Install into an existing Scipion 3"
CACHE = os.environ.get("SCNET_INSTALL_CACHE") or os.path.join(REPO, ".cache", "install-test")
ENGINE_DIR = f"scnet-{__version__}"
MAX_ENGINE_BYTES = 3 * 1024 ** 3
TIMES = []  # (what, seconds, exit status): printed at the end


def readme_commands():
    """The shell lines of README's install block (comments and blank lines dropped)."""
    with open(README) as fh:
        text = fh.read()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    block = re.search(r"```\n(.*?)```", text[text.index(SECTION):], re.S)
    assert block, f"README.md: no command block under {SECTION!r}"
    lines = [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines()]
    return [ln for ln in lines if ln]


def _clean_environ(home, path_first):
    """The caller's environment without this checkout's Scipion/engine settings, HOME replaced."""
    drop = ("SCIPION_", "SCNET_", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_", "DISPLAY")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    here = os.path.join(REPO, ".venv")
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(here)]
    env.update(HOME=home, PATH=os.pathsep.join(path_first + path), MPLBACKEND="Agg",
               PIP_CACHE_DIR=os.path.join(CACHE, "pip"), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return env


def run(cmd, env, cwd, what=None, timeout=1800):
    """Run one shell line; record and print its time; return (exit status, output without colours)."""
    t = time.time()
    proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    dt = time.time() - t
    TIMES.append((what or cmd, dt, proc.returncode))
    out = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout)
    with open(os.path.join(cwd, f"step{len(TIMES):02d}.log"), "w") as fh:  # kept with SCNET_KEEP_INSTALL_TEST=1
        fh.write(f"$ {cmd}\n{out}")
    print(f"[install test] {dt:6.1f} s  exit {proc.returncode}  {what or cmd}", flush=True)
    return proc.returncode, out


def _passed(out):
    """pyworkflow's test runner's summary: '[  PASSED  ] N tests' and no failure."""
    m = re.search(r"\[\s+PASSED\s+\]\s+(\d+) tests", out)
    return bool(m) and int(m.group(1)) > 0 and "FAILED" not in out


def _check(status_out, cmd):
    status, out = status_out
    assert status == 0, f"`{cmd}` exited {status}:\n{out[-6000:]}"
    return out


def _site_packages(scipion_dir):
    found = glob.glob(os.path.join(scipion_dir, ".scipion3", "lib", "python3*", "site-packages"))
    assert len(found) == 1, found
    return found[0]


def _pip_freeze(python, env):
    out = subprocess.run([python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return {deps.name_of(line): line.split("==", 1)[1] for line in out.splitlines() if "==" in line}


def _size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


@pytest.fixture(scope="module")
def workdir():
    os.makedirs(CACHE, exist_ok=True)
    d = tempfile.mkdtemp(prefix="scnet-install-")
    os.symlink(REPO, os.path.join(d, "scipion-em-scnet"))
    yield d
    if not os.environ.get("SCNET_KEEP_INSTALL_TEST"):
        shutil.rmtree(d, ignore_errors=True)
    print("\n[install test] times (s): " + "; ".join(f"{w}: {t:.0f}" for w, t, _ in TIMES), flush=True)


@pytest.fixture(scope="module")
def user(workdir):
    """The README's lines run as a user runs them; stops at the first failing one."""
    home = os.path.join(workdir, "home")
    os.makedirs(home)
    venv = os.path.join(workdir, "user-python")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)  # the user's own Python, with pip
    env = _clean_environ(home, [os.path.join(venv, "bin")])
    scipion = os.path.join(home, "scipion3")
    site = None
    outputs = {}
    before = {}
    for cmd in readme_commands():
        if " installp " in f" {cmd} ":
            site = _site_packages(scipion)
            before = _pip_freeze(os.path.join(scipion, ".scipion3", "bin", "python"), env)
        outputs[cmd] = _check(run(cmd, env, cwd=workdir), cmd)
    return dict(env=env, scipion=scipion, home=home, site=site, outputs=outputs, before=before, workdir=workdir)


def _line(user, word):
    hits = [c for c in user["outputs"] if f" {word} " in f" {c} "]
    assert len(hits) == 1, (word, list(user["outputs"]))
    return hits[0]


def test_readme_block_is_the_user_route_with_our_tomo_pin():
    cmds = readme_commands()
    words = [c.split()[1] if c.startswith("~/scipion3/scipion3") else c.split()[0] for c in cmds]
    assert words[:2] == ["pip", "python"] and "scipioninstaller" in cmds[1] and "-venv -noAsk" in cmds[1]
    assert words[2:] == ["pip", "installp", "installb", "tests"], cmds
    assert cmds[3] == "~/scipion3/scipion3 installp -p scipion-em-scnet --devel"
    assert cmds[4] == "~/scipion3/scipion3 installb scnet"
    with open(os.path.join(REPO, "requirements", "scipion.lock")) as fh:
        tomo = [ln.strip() for ln in fh if ln.startswith("scipion-em-tomo==")]
    assert cmds[2] == f"~/scipion3/scipion3 pip install {tomo[0]}", "README's tomo pin is not requirements/scipion.lock's"


def test_every_readme_command_exits_0(user):
    assert len(user["outputs"]) == len(readme_commands())


def test_installp_registers_the_plugin_and_runs_the_binary_install(user):
    out = user["outputs"][_line(user, "installp")]
    assert "ERROR" not in out, out[-4000:]
    assert glob.glob(os.path.join(user["site"], f"scipion_em_scnet-{__version__}.dist-info")), os.listdir(user["site"])
    assert "[scnet engine] ready:" in out  # Scipion's automatic binary install ran the engine recipe
    # nothing but the plugin was added to (or changed in) Scipion's own environment
    after = _pip_freeze(os.path.join(user["scipion"], ".scipion3", "bin", "python"), user["env"])
    assert {k: v for k, v in after.items() if user["before"].get(k) != v} == {"scipion-em-scnet": __version__}


def _engine(user):
    return os.path.join(user["scipion"], "software", "em", ENGINE_DIR)


def _check_engine(user):
    engine = _engine(user)
    py = os.path.join(engine, "bin", "python")
    torch = subprocess.run([py, "-c", "import torch; print(torch.__version__, torch.version.cuda)"],
                           capture_output=True, text=True, env=user["env"])
    assert torch.returncode == 0, torch.stderr
    version, cuda = torch.stdout.split()
    assert version.split("+")[0] == deps.version_of(deps.TORCH) and cuda == "None", torch.stdout  # CPU build
    got = subprocess.run([os.path.join(engine, "bin", "scnet"), "--version"], capture_output=True, text=True,
                         env=user["env"])
    assert got.returncode == 0 and got.stdout.strip() == f"scnet {__version__}", got
    # exactly the lock plus torch: every pin at its version, nothing else (pip and setuptools of the venv aside)
    with open(engine_env.LOCK_FILE) as fh:
        lock = {deps.name_of(ln): deps.version_of(ln) for ln in (x.split("#")[0].strip() for x in fh) if ln}
    lock[deps.name_of(deps.TORCH)] = version
    have = _pip_freeze(py, user["env"])
    extra = set(have) - set(lock) - {"pip", "setuptools"}
    assert not extra, f"packages beyond the lock: {sorted(extra)}"
    assert {k: have.get(k) for k in lock} == lock
    size = _size(engine)
    print(f"[install test] engine environment: {size / 1024 ** 3:.2f} GB", flush=True)
    assert size < MAX_ENGINE_BYTES


def test_engine_is_the_locked_cpu_environment(user):
    _check_engine(user)


def test_scipion_tests_of_the_plugin_pass(user):
    out = user["outputs"][_line(user, "tests")]
    assert _passed(out), out[-4000:]


def test_uninstallb_then_installb_rebuilds_the_engine(user):
    engine = _engine(user)
    launcher = os.path.join(user["scipion"], "scipion3")
    _check(run(f"{shlex.quote(launcher)} uninstallb {ENGINE_DIR}", user["env"], user["workdir"]), "uninstallb")
    assert not os.path.exists(engine)
    out = _check(run(f"{shlex.quote(launcher)} installb scnet", user["env"], user["workdir"],
                     what="installb scnet (rebuild)"), "installb")
    assert "[scnet engine] ready:" in out
    _check_engine(user)


def _python38():
    for cand in [shutil.which("python3.8")] + sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8"))):
        if cand and subprocess.run([cand, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"],
                                   capture_output=True).returncode == 0:
            return cand
    return None


def test_python38_scipion_runs_the_plugin_with_a_python311_engine(workdir):
    """Scipion's installer defaults to Python 3.8: the plugin runs there, and installb makes the
    engine from python3.11 (SCNET_ENGINE_PYTHON's default where Scipion's own Python is older)."""
    py38 = _python38()
    if py38 is None:
        pytest.skip("no Python 3.8 on this machine")
    home = os.path.join(workdir, "home38")
    os.makedirs(home)
    venv = os.path.join(workdir, "user-python38")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    env = _clean_environ(home, [os.path.join(venv, "bin"), os.path.dirname(py38)])
    scipion = os.path.join(home, "scipion3")
    launcher = shlex.quote(os.path.join(scipion, "scipion3"))
    tomo = [c for c in readme_commands() if "scipion-em-tomo==" in c][0].split()[-1]
    # virtualenv 21 no longer seeds Python 3.8 environments; the installer's conda route would
    for cmd, what in [("pip install scipion-installer 'virtualenv<21'", None),
                      ("python -m scipioninstaller ~/scipion3 -venv -noAsk -python python3.8", None),
                      (f"{launcher} pip install {tomo}", "pip install tomo (3.8)"),
                      (f"{launcher} installp -p scipion-em-scnet --devel", "installp (3.8)"),
                      (f"{launcher} tests scnet_plugin.tests.test_plugin", "tests (3.8)")]:
        out = _check(run(cmd, env, workdir, what=what), cmd)
    assert _passed(out), out[-4000:]
    engine = os.path.join(scipion, "software", "em", ENGINE_DIR)
    cfg = open(os.path.join(engine, "pyvenv.cfg")).read()
    assert re.search(r"^version(_info)? = 3\.11", cfg, re.M), cfg
