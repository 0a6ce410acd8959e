from .figures import slices_figure, loss_curves_figure, fsc_figure, evaluation_table  # noqa: F401
