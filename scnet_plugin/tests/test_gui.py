"""The Scipion GUI a user meets, under Xvfb: a project where the SC-Net chain ran (tiny phantom)
is opened in pyworkflow's project window by ``gui_driver.py``, which checks and records:

* the project opens in the Tomography view (set by the plugin's runs, not by this test);
* the plugin's protocols sit in tomo's own tree groups with labels that name the method
  ("SC-Net train", ...), and the labels fit the tree's default width; graph boxes read the same;
* the form of every SC-Net protocol opens; every SC-Net viewer of the runs opens and each of its
  display actions runs (the evaluation table is read back from its table window);
* screenshots (non-blank). ``make gui-shot`` keeps them as docs/gui_project.png and docs/gui_windows.png.

Needs Xvfb and ImageMagick `import` (``make gui-deps`` installs them from Debian; ``make test``
depends on it). Skipped without them, except under CI (CI=true), where that is a failure.
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

import tempfile
import unittest

HAVE_X = bool(shutil.which("Xvfb") and shutil.which("import"))
if not HAVE_X and os.environ.get("CI"):
    raise RuntimeError("GUI test needs Xvfb and ImageMagick `import`: run `make gui-deps`")
SKIP_WHY = ("GUI test needs Xvfb and ImageMagick `import` "
            "(make gui-deps: apt-get install xvfb imagemagick x11-utils)")

PROJECT = "scnet_gui_check"
SHAPE = (32, 48, 48)
TINY_TRAIN = dict(patchSize=16, batchSize=2, epochs=1, iterationsPerEpoch=2, baseWidth=4)
# where each protocol must appear in the Tomography tree (tomo's groups) and its label
EXPECTED = {
    ("Imports", "SC-Net simulate"),
    ("Imports", "SC-Net halves"),
    ("Imports", "SC-Net IMOD .xf"),
    ("Tomograms", "Tomogram Reconstruction", "SC-Net prepare"),
    ("Tomograms", "Denoise", "SC-Net prepare"),
    ("Tomograms", "Denoise", "SC-Net train"),
    ("Tomograms", "Denoise", "SC-Net model"),
    ("Tomograms", "Denoise", "SC-Net denoise"),
    ("Tomograms", "Quality Analysis", "SC-Net FSC e/o"),
    ("Tomograms", "Quality Analysis", "SC-Net evaluate"),
}
VIEWERS = {"SCNetSlicesViewer", "SCNetTrainingViewer", "SCNetFscViewer", "SCNetEvaluateViewer",
           "SCNetModelLossViewer"}


def _build_project():
    """The SC-Net chain (tiny) in a fresh project, as a script would run it (no view set here)."""
    from pyworkflow.project import Manager

    from scnet_plugin.workflow import import_tilt_series, run_chain, simulate_phantom_files
    m = Manager()
    if m.hasProject(PROJECT):
        m.deleteProject(PROJECT)
    project = m.createProject(PROJECT)
    cwd = os.getcwd()
    os.chdir(project.getPath())
    try:
        tsDir, gt = simulate_phantom_files(os.path.abspath("sim"), shape=SHAPE, sigma=15, seed=2, voxelSize=10.0,
                                     tiltStep=6)

        def launch(prot):
            project.launchProtocol(prot, wait=True)
            assert prot.isFinished(), f"{prot.getRunName()}: {prot.getErrorMessage()}"
            return prot
        imp = import_tilt_series(project.newProtocol, launch, tsDir, 10.0)
        run_chain(project.newProtocol, launch, getattr(imp, imp.OUTPUT_NAME), thickness=SHAPE[0], train=TINY_TRAIN,
                  groundTruth=gt, log=lambda m: None)
    finally:
        os.chdir(cwd)
    return PROJECT


def _free_display():
    for n in range(90, 200):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return n
    raise AssertionError("no free X display number")


@unittest.skipUnless(HAVE_X, SKIP_WHY)
class TestProjectWindow(unittest.TestCase):
    def test_gui_project_tree_forms_viewers(self):
        tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="scnet_gui_"))
        self.addCleanup(shutil.rmtree, tmp_path, True)
        _gui_project_tree_forms_viewers(tmp_path)


def _gui_project_tree_forms_viewers(tmp_path):
    t0 = time.time()
    project = os.environ.get("SCNET_GUI_PROJECT", "")
    userData = os.environ.get("SCIPION_USER_DATA", "")
    existing = bool(project and os.path.isdir(os.path.join(userData, "projects", project)))
    if not existing:
        project = _build_project()
    tBuilt = time.time()
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # viewers plot in Tk windows
    disp = _free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{disp}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resultPath = tmp_path / "gui.json"
    try:
        time.sleep(2)
        env["DISPLAY"] = f":{disp}"
        with open(tmp_path / "gui.log", "w") as log:
            r = subprocess.run([sys.executable, "-m", "scnet_plugin.tests.gui_driver", project, str(resultPath),
                                str(tmp_path)], env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
        assert resultPath.exists(), (tmp_path / "gui.log").read_text()[-5000:]
    finally:
        xvfb.terminate()
        xvfb.wait(10)
    res = json.loads(resultPath.read_text())
    print(f"\n[gui] project built in {tBuilt - t0:.0f} s, GUI checks in {time.time() - tBuilt:.0f} s")
    assert not res["errors"], "\n".join(res["errors"])
    assert r.returncode == 0

    # screenshots are real images of windows
    from PIL import Image
    import numpy as np
    for name in ("project.png", "windows.png"):
        im = np.asarray(Image.open(tmp_path / name).convert("L"))
        assert im.shape == (1000, 1600) and im.std() > 10, f"{name} is blank"
    keep = os.environ.get("SCNET_GUI_SHOT")  # `make gui-shot`: docs/gui_project.png (+ _windows)
    if keep:
        shutil.copy(tmp_path / "project.png", keep)
        shutil.copy(tmp_path / "windows.png", keep.replace(".png", "_windows.png"))

    assert res["view"] == "Tomography"
    paths = {tuple(p[1:]) for p in res["tree"] if p[0] == "Tomography"}  # the tree's root is the view
    missing = EXPECTED - paths
    assert not missing, f"not in the Tomography tree: {sorted(missing)}"
    scnet = {p for p in paths if any("SC-Net" in x or "scnet" in x.lower() for x in p)}
    assert scnet == EXPECTED, f"unexpected SC-Net tree items: {sorted(scnet - EXPECTED)}"
    print("[gui] label widths (px):", res["labelWidths"], "tree:", res["treeWidth"])
    for label, width in res["labelWidths"].items():
        assert width <= res["treeWidth"], f"{label!r} needs {width} px, the tree is {res['treeWidth']} px wide"
    if not existing:
        runs = [n for n in res["graphLabels"] if "SC-Net" in n or "scnet" in n]
        assert sorted(runs) == sorted(["SC-Net prepare", "SC-Net train", "SC-Net denoise", "SC-Net FSC e/o",
                                       "SC-Net FSC e/o", "SC-Net evaluate"]), runs  # FSC: as given, independent

    assert len(res["forms"]) == 9, res["forms"]
    opened = {v.split(" on ")[0] for v in res["viewers"]}
    assert VIEWERS <= opened, f"viewers not opened: {VIEWERS - opened}"
    assert any(a.startswith("SCNetEvaluateViewer.displayTable: ['TableView']") for a in res["actions"]), \
        res["actions"]
    tables = [t for t in res["tables"] if "PSNR (dB)" in t["columns"] and "SSIM" in t["columns"]]
    assert tables, res["tables"]
    methods = {row[1] for row in tables[0]["rows"]}
    assert {"SC-Net", "noisy"} <= methods, tables[0]
    assert not any("|" in cell or "---" in cell for row in tables[0]["rows"] for cell in row)  # no markdown
    assert any("SC-Net" in f for f in res["figures"]), res["figures"]
