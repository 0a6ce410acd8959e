"""SC-Net viewers (pyworkflow discovers the classes imported here) and headless figures."""
from .figures import slices_figure, loss_curves_figure, fsc_figure, evaluation_table  # noqa: F401
from .viewers import SCNetSlicesViewer, SCNetTrainingViewer, SCNetModelLossViewer, SCNetFscViewer, SCNetEvaluateViewer  # noqa: F401
