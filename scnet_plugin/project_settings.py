"""Open projects that use SC-Net in the Tomography view of the protocol tree.

pyworkflow stores the chosen view ("Tomography", "All", ...) in the project's
settings.sqlite; a project that never chose one opens in the first view found,
which hides tomo's tree (and this plugin's protocols). The demo, the examples and
every SC-Net protocol run (in its own process, where the cwd is the project folder)
call :func:`useTomographyView`, which only fills an unset choice: a user's own choice is kept.
"""
import os

TOMOGRAPHY_VIEW = "Tomography"  # the view defined by scipion-em-tomo's protocols.conf


def useTomographyView(projectPath: str = ".", force: bool = False) -> bool:
    """Set the project's protocol view to Tomography when none was chosen (or ``force``).

    Returns True when the settings were changed. Never raises: a view is a convenience.
    """
    from pyworkflow.constants import PROJECT_SETTINGS
    from pyworkflow.project.config import ProjectSettings
    path = os.path.join(projectPath, PROJECT_SETTINGS)
    if not os.path.exists(path):
        return False
    try:
        settings = ProjectSettings.load(path)
        if settings.getProtocolView() and not force:
            return False
        settings.setProtocolView(TOMOGRAPHY_VIEW)
        settings.write()
        return True
    except Exception:  # settings locked or unreadable: keep the run going
        return False
