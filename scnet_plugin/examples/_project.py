"""What the scripted examples share: a fresh Scipion project and a launcher that times each protocol."""
import os
import sys
import time


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
