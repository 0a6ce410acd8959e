"""pyworkflow viewers for SC-Net protocols. Each writes a PNG (via .figures) into the protocol's
extra/ folder and shows it in a matplotlib window."""
import glob
import os

import pyworkflow.protocol.params as params
from pyworkflow.viewer import DESKTOP_TKINTER, ProtocolViewer, View, Viewer

from scnet_plugin.constants import TRAIN_SUMMARY
from scnet_plugin.objects import SCNetModel, SetOfSCNetModels
from scnet_plugin.protocols import ProtSCNetDenoise, ProtSCNetEvaluate, ProtSCNetFscEo, ProtSCNetTrain
from scnet_plugin.protocols.protocol_base import ProtSCNetBase
from . import figures


class PngView(View):
    """Shows a PNG in a matplotlib window (non-blocking in the GUI)."""

    def __init__(self, png, title="SC-Net"):
        self.png, self.title = png, title

    def show(self):
        import matplotlib.pyplot as plt
        img = plt.imread(self.png)
        h, w = img.shape[:2]
        fig = plt.figure(self.title, figsize=(w / 100, h / 100))
        ax = fig.add_axes([0, 0, 1, 1])
        ax.imshow(img)
        ax.axis("off")
        plt.show(block=False)


class TableView(View):
    """A table (one row per score) in its own window: sortable columns, no markup."""

    def __init__(self, columns, rows, title="SC-Net", tkParent=None):
        self.columns, self.rows, self.title, self.tkParent = list(columns), list(rows), title, tkParent

    def show(self):
        import tkinter as tk
        from tkinter import ttk
        from pyworkflow.gui import Window, configureWeigths
        w = Window(self.title, self.tkParent, minsize=(520, 200))
        tree = ttk.Treeview(w.root, columns=self.columns, show="headings", height=min(20, max(3, len(self.rows))))
        for c in self.columns:
            tree.heading(c, text=c)
            tree.column(c, anchor=tk.W if c in self.columns[:2] else tk.E, width=180 if c == "Method" else 100)
        for row in self.rows:
            tree.insert("", tk.END, values=row)
        tree.grid(row=0, column=0, sticky="news")
        configureWeigths(w.root)
        w.show()


def _tsIds(setOfTomos):
    """tsIds of a set (the protocols' own helper), [] for no set."""
    return ProtSCNetBase._tsIds(setOfTomos) if setOfTomos is not None else []


def _modelFor(modelOrSet, tsId):
    """The SCNetModel used for ``tsId``: the model itself, or the set's model of that tsId."""
    if isinstance(modelOrSet, SetOfSCNetModels):
        return modelOrSet.getModelFor(tsId)
    return modelOrSet


def _priorFor(denoiseProt, tsId):
    """Prior tomogram the model used for ``tsId`` was trained with, by provenance (None if unknown)."""
    model = _modelFor(denoiseProt.inputModel.get(), tsId)
    return model.getPriorFile(tsId) if model is not None else None


def lossCurvesView(model):
    """PNG of the loss curves of one SCNetModel (written beside its loss log) as a view; the terms
    of weight 0 in its training (its training summary) are marked."""
    csv_path = model.getLossLog()
    png = os.path.join(os.path.dirname(csv_path), "loss_curves.png")
    weights = figures.read_loss_weights(os.path.join(os.path.dirname(csv_path), TRAIN_SUMMARY))
    figures.loss_curves_figure(csv_path, png, weights=weights)
    return PngView(png, f"SC-Net losses {model.getTsId() or ''}".strip())


class SCNetSlicesViewer(ProtocolViewer):
    """Central XY/XZ/YZ slices: noisy | prior | denoised for one tomogram."""
    _label = "SC-Net slices viewer"
    _targets = [ProtSCNetDenoise]
    _environments = [DESKTOP_TKINTER]

    def _ids(self):
        out = getattr(self.protocol, "Tomograms", None)
        return _tsIds(out) or _tsIds(self.protocol.inputTomograms.get())

    def _defineParams(self, form):
        form.addSection(label="Visualization")
        ids = self._ids() or ["-"]
        form.addParam("tsIndex", params.EnumParam, choices=ids, default=0, label="Tomogram (tsId)")
        form.addParam("displaySlices", params.LabelParam, label="Show noisy | prior | denoised slices")

    def _getVisualizeDict(self):
        return {"displaySlices": self._showSlices}

    def _showSlices(self, e=None):
        ids = self._ids()
        if not ids:
            return [self.errorMessage("No tomograms.", "SC-Net")]
        tsId = ids[self.tsIndex.get()]
        vols = {}
        noisy = self.protocol.inputTomograms.get().getItem("_tsId", tsId)
        vols["noisy"] = noisy.getFileName() if noisy else None
        vols["prior"] = _priorFor(self.protocol, tsId)
        out = getattr(self.protocol, "Tomograms", None)
        den = out.getItem("_tsId", tsId) if out is not None else None
        vols["denoised"] = den.getFileName() if den else None
        png = self.protocol._getExtraPath(f"{tsId}_slices.png")
        figures.slices_figure(vols, png, title=tsId)
        return [PngView(png, f"SC-Net slices {tsId}")]


class SCNetTrainingViewer(ProtocolViewer):
    """Training loss curves (each term + validation) of ProtSCNetTrain or an SCNetModel."""
    _label = "SC-Net training viewer"
    _targets = [ProtSCNetTrain]
    _environments = [DESKTOP_TKINTER]

    def _models(self):
        obj = self.protocol
        out = getattr(obj, "Model", None)
        if out is not None:
            return [out]
        outs = getattr(obj, "Models", None)
        return [m.clone() for m in outs.iterItems()] if outs is not None else []

    def _defineParams(self, form):
        form.addSection(label="Visualization")
        ids = [m.getTsId() or "model" for m in self._models()] or ["-"]
        form.addParam("modelIndex", params.EnumParam, choices=ids, default=0, label="Model (tsId)")
        form.addParam("displayLoss", params.LabelParam, label="Show loss curves")

    def _getVisualizeDict(self):
        return {"displayLoss": self._showLoss}

    def _showLoss(self, e=None):
        models = self._models()
        if not models:
            return [self.errorMessage("No trained model yet.", "SC-Net")]
        return [lossCurvesView(models[self.modelIndex.get()])]


class SCNetModelLossViewer(Viewer):
    """Loss curves of one SCNetModel (double-click on the Model output)."""
    _label = "SC-Net model loss curves"
    _targets = [SCNetModel]
    _environments = [DESKTOP_TKINTER]

    def _visualize(self, obj, **kwargs):
        return [lossCurvesView(obj)]


class SCNetFscViewer(ProtocolViewer):
    """FSC_e/o curves (from extra/*_fsc.csv) with the engine's first 0.5 / 0.143 crossings; the title says
    which measure is shown (halves as given, or independent networks); or pwem's FscViewer on the outputs."""
    _label = "SC-Net FSC e/o viewer"
    _targets = [ProtSCNetFscEo]
    _environments = [DESKTOP_TKINTER]

    def _defineParams(self, form):
        form.addSection(label="Visualization")
        form.addParam("useEo", params.BooleanParam, default=True, label="Plot FSC_e/o (eq. 10)?",
                      help="No: plot the plain half-map FSC.")
        form.addParam("displayFsc", params.LabelParam, label="Show combined FSC plot")
        form.addParam("displayPwem", params.LabelParam, label="Open Scipion FSC viewer on outputs")

    def _getVisualizeDict(self):
        return {"displayFsc": self._showFsc, "displayPwem": self._showPwem}

    def _showFsc(self, e=None):
        csvs = sorted(glob.glob(self.protocol._getExtraPath("*_fsc.csv")))
        if not csvs:
            return [self.errorMessage("No FSC curves in extra/ yet.", "SC-Net")]
        curves = {os.path.basename(c)[:-len("_fsc.csv")].replace("_", " "): c for c in csvs}
        png = self.protocol._getExtraPath("fsc_eo.png")
        figures.fsc_figure(curves, png, use_eo=self.useEo.get(), threshold=self.protocol.threshold.get(),
                           title="Measure: " + self.protocol.measureNote())
        return [PngView(png, "SC-Net FSC")]

    def _showPwem(self, e=None):
        from pwem.viewers import FscViewer
        fscs = getattr(self.protocol, "FSCs", None)
        if fscs is None:
            return [self.errorMessage("No FSCs output yet.", "SC-Net")]
        v = FscViewer(project=self.protocol.getProject(), threshold=0.5, protocol=self.protocol)
        v.visualize(fscs)
        return []


class SCNetEvaluateViewer(ProtocolViewer):
    """PSNR/SSIM table(s) of ProtSCNetEvaluate (its Scores output)."""
    _label = "SC-Net evaluation viewer"
    _targets = [ProtSCNetEvaluate]
    _environments = [DESKTOP_TKINTER]

    def _defineParams(self, form):
        form.addSection(label="Visualization")
        form.addParam("displayTable", params.LabelParam, label="Show PSNR / SSIM table")

    def _getVisualizeDict(self):
        return {"displayTable": self._showTable}

    def _showTable(self, e=None):
        results = self.protocol.results()
        if not results:
            return [self.errorMessage("No Scores output yet.", "SC-Net")]
        text = "\n".join(f"## {tsId}\n\n{figures.scores_table(rows)}" for tsId, rows in results.items())
        with open(self.protocol._getExtraPath("evaluation_table.md"), "w") as f:  # for reports
            f.write(text)
        return [TableView(figures.SCORE_COLUMNS, figures.score_rows(results), title="SC-Net evaluation (PSNR / SSIM)",
                          tkParent=getattr(self, "formWindow", None))]
