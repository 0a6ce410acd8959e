# scipion-em-scnet -- two commands do everything on a fresh machine:
#   make demo   full SC-Net chain in a local Scipion project (figures + metrics table)
#   make test   the whole test suite (engine tests, then Scipion plugin tests)
#
# Two virtual environments under .venv/ (see README, "Two environments"):
#   .venv/engine   torch + topaz-em + astra-toolbox + careamics + the scnet engine
#   .venv/scipion  scipion-pyworkflow + scipion-em + scipion-em-tomo + the plugin
# Both are installed from fully pinned lock files with --no-deps (no resolver,
# no surprise CUDA torch), then checked by importing the key modules.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
ENGINE := $(VENV)/engine
SCIPION := $(VENV)/scipion
ENGINE_PY := $(CURDIR)/$(ENGINE)/bin/python
SCIPION_PY := $(CURDIR)/$(SCIPION)/bin/python
PIP_QUIET := -q --disable-pip-version-check

# --- Scipion headless, configured in a local folder (read when pyworkflow is imported)
export SCIPION_HOME := $(CURDIR)/.scipion
export SCIPION_USER_DATA ?= $(CURDIR)/.scipion/data
export SCIPION_DOMAIN := pwem
export SCIPION_PYTHON := $(SCIPION_PY)
export SCIPION_TEST_NOSYNC := 1
export SCIPION_NOTIFY := False
export MPLBACKEND := Agg
# where the plugin finds the engine's `scnet` command (Plugin variable SCNET_ENGINE_HOME)
export SCNET_ENGINE_HOME := $(CURDIR)/$(ENGINE)
export PYTHONUNBUFFERED := 1

ENGINE_STAMP := $(ENGINE)/.installed
SCIPION_STAMP := $(SCIPION)/.installed
HOSTS := .scipion/config/hosts.conf

.PHONY: demo test test-engine test-plugin slurm-start slurm-stop slurm-status hosts-slurm hosts-local envs bm4d bench-speed bench-quality gui gui-shot clean

envs: $(ENGINE_STAMP) $(SCIPION_STAMP) $(HOSTS)

$(ENGINE_STAMP): requirements/engine.lock setup.py
	@echo "[setup] engine environment $(ENGINE)"
	test -x $(ENGINE_PY) || $(PYTHON) -m venv $(ENGINE)
	$(ENGINE_PY) -m pip install $(PIP_QUIET) --no-deps -r requirements/engine.lock
	$(ENGINE_PY) -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	$(ENGINE_PY) -c "import torch, topaz.denoise, astra, mrcfile, skimage, lightning; print('[setup] engine ok: torch', torch.__version__)" 2>&1 | { grep -v -i cuda || true; }
	touch $@

$(SCIPION_STAMP): requirements/scipion.lock setup.py
	@echo "[setup] Scipion environment $(SCIPION)"
	test -x $(SCIPION_PY) || $(PYTHON) -m venv $(SCIPION)
	$(SCIPION_PY) -m pip install $(PIP_QUIET) --no-deps -r requirements/scipion.lock
	$(SCIPION_PY) -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e .
	$(SCIPION_PY) -c "import pyworkflow, pwem, tomo; print('[setup] scipion ok: pyworkflow', pyworkflow.__version__)"
	touch $@

# hosts.conf from the plugin's one generator (scnet_plugin/hosts.py; `slurm` flavour: docs/cluster.md); kept once written
$(HOSTS):
	@mkdir -p .scipion/config .scipion/data
	$(PYTHON) scnet_plugin/hosts.py localhost -o $@

# Optional BM4D baseline (non-commercial licence, closed binary): never a default dependency.
bm4d: $(ENGINE_STAMP)
	$(ENGINE_PY) -m pip install $(PIP_QUIET) bm4d==4.2.5

# engine tests, then a single-node Slurm (installed from Debian when missing), then the plugin
# tests, whose queue tests (scnet_plugin/tests/test_queue.py) must then run, not skip.
test: envs
	$(MAKE) --no-print-directory test-engine slurm-start
	SCNET_REQUIRE_SLURM=1 $(MAKE) --no-print-directory test-plugin

test-engine:
	$(ENGINE_PY) -m pytest -q -p no:cacheprovider tests

test-plugin:
	$(SCIPION_PY) -m pytest -q -p no:cacheprovider -p no:warnings scnet_plugin/tests

# single-node Slurm on this machine (root: apt-get install slurm-wlm munge when missing)
slurm-start:
	tools/slurm.sh start

slurm-stop:
	tools/slurm.sh stop

slurm-status:
	tools/slurm.sh status

# switch this checkout's Scipion (.scipion/config/hosts.conf) to Scipion's queue on Slurm, or back
hosts-slurm:
	$(PYTHON) scnet_plugin/hosts.py slurm --engine-home "$(CURDIR)/$(ENGINE)" -o $(HOSTS)

hosts-local:
	$(PYTHON) scnet_plugin/hosts.py localhost -o $(HOSTS)

demo: envs
	$(SCIPION_PY) -m scnet_plugin.demo --output demo_output

# Open a project of $(SCIPION_USER_DATA) in the Scipion GUI (needs a display); default: the demo's.
# -O: pw_project opens the window in-process instead of re-launching through the `scipion` launcher.
PROJECT ?= scnet_demo
gui: envs
	$(SCIPION_PY) -O -m pyworkflow.apps.pw_project $(PROJECT)

# Screenshot of the Scipion project window under Xvfb (apt: xvfb imagemagick x11-utils) -> docs/
gui-shot: envs
	SCNET_GUI_SHOT=$(CURDIR)/docs/gui_project.png SCNET_GUI_PROJECT=$(PROJECT) \
	  $(SCIPION_PY) -m pytest -q -s -p no:cacheprovider -p no:warnings scnet_plugin/tests/test_gui.py

# Benchmarks print tables (not part of `make test`); one heavy job at a time on a small machine.
bench-speed: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/speed.py

# the README's quality table comes from this run at the user defaults (64x128x128, seeds 0,1, sigma 10,15,20)
BENCH_ARGS ?=
bench-quality: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/quality.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .scipion demo_output
