"""GUI smoke check: a project with an import + SC-Net protocols (saved, not executed) opens in the
Scipion project window under Xvfb; a screenshot is taken with ImageMagick `import`.

Skipped unless `Xvfb` and `import` are on PATH (apt: xvfb imagemagick x11-utils).
`make gui-shot` runs it with SCNET_GUI_PROJECT (an existing project to open instead, e.g. the
demo's) and SCNET_GUI_SHOT (where to keep the screenshot, e.g. docs/gui_project.png)."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

PROJECT = "scnet_gui_check"

MAKE_PROJECT = textwrap.dedent(f"""
    from pyworkflow.project import Manager
    import pyworkflow.utils as pwutils
    m = Manager()
    if m.hasProject("{PROJECT}"):
        m.deleteProject("{PROJECT}")
    p = m.createProject("{PROJECT}")
    from tomo.protocols import ProtImportTomograms
    from scnet_plugin.protocols import ProtSCNetPrepareTomograms, ProtSCNetTrain, ProtSCNetDenoise
    imp = p.newProtocol(ProtImportTomograms, filesPath="/nonexistent", samplingRate=10.0)
    p.saveProtocol(imp)
    for cls in (ProtSCNetPrepareTomograms, ProtSCNetTrain, ProtSCNetDenoise):
        p.saveProtocol(p.newProtocol(cls))
    print("PROJECT_OK", p.getPath())
""")


def _free_display():
    for n in range(90, 200):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return n
    raise unittest.SkipTest("no free X display number")


@unittest.skipUnless(shutil.which("Xvfb") and shutil.which("import"),
                     "GUI check needs Xvfb and ImageMagick `import` (apt-get install xvfb imagemagick x11-utils)")
class TestProjectWindow(unittest.TestCase):
    def test_project_window_screenshot(self):
        tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="scnet_gui_"))
        self.addCleanup(shutil.rmtree, tmp_path, True)
        _project_window_screenshot(tmp_path)


def _project_window_screenshot(tmp_path):
    env = dict(os.environ)
    env.setdefault("SCIPION_USER_DATA", str(tmp_path / "userdata"))
    env.pop("MPLBACKEND", None)
    project = os.environ.get("SCNET_GUI_PROJECT", "")
    userData = env.get("SCIPION_USER_DATA", "")
    if not (project and os.path.isdir(os.path.join(userData, "projects", project))):
        project = PROJECT
        r = subprocess.run([sys.executable, "-c", MAKE_PROJECT], env=env, capture_output=True, text=True,
                           timeout=120)
        assert "PROJECT_OK" in r.stdout, r.stdout + r.stderr
    disp = _free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{disp}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gui = None
    try:
        time.sleep(2)
        env["DISPLAY"] = f":{disp}"
        log = open(tmp_path / "gui.log", "w")
        # -O: pw_project opens the window in-process (otherwise it re-launches via the `scipion` app module)
        gui = subprocess.Popen([sys.executable, "-O", "-m", "pyworkflow.apps.pw_project", project],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(25)
        assert gui.poll() is None, (tmp_path / "gui.log").read_text()
        shot = tmp_path / "shot.png"
        subprocess.run(["import", "-window", "root", str(shot)], env=env, check=True, timeout=60)
        from PIL import Image
        import numpy as np
        im = np.asarray(Image.open(shot).convert("L"))
        assert im.shape[0] >= 800 and im.std() > 10, "screenshot is blank"
        keep = os.environ.get("SCNET_GUI_SHOT")
        if keep:
            os.makedirs(os.path.dirname(os.path.abspath(keep)), exist_ok=True)
            shutil.copy(shot, keep)
            shot = keep
        print("GUI screenshot:", shot)
    finally:
        if gui is not None:
            gui.terminate()
            try:
                gui.wait(10)
            except subprocess.TimeoutExpired:
                gui.kill()
        xvfb.terminate()
        xvfb.wait(10)
