"""Figures of scnet_plugin.viewers.figures on tiny synthetic MRC/CSV/JSON files (unittest classes,
so `scipion3 tests scnet_plugin.tests.test_figures` finds them)."""
import json
import pathlib
import shutil
import tempfile
import unittest

import mrcfile
import numpy as np
from PIL import Image

from scnet_plugin.viewers import figures
from scnet_plugin.wizards.wizards import estimate_peak_memory_gb, suggest_patch_size


def _check_png(path, min_px=200):
    im = np.asarray(Image.open(path).convert("L"))
    if not (im.shape[0] > min_px and im.shape[1] > min_px and im.std() > 5):  # not tiny, not one colour
        raise AssertionError(f"{path}: shape {im.shape}, std {im.std():.1f}")


def _mrc(path, arr):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(arr.astype(np.float32))
    return str(path)


class _TmpDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="scnet_fig_"))
        self.addCleanup(shutil.rmtree, self.tmp, True)


def _fsc_csv(path, decay):
    f = np.linspace(0, 0.25, 30)
    fsc = np.exp(-f / decay)
    eo = 2 * fsc / (1 + fsc)
    lines = ["shell,frequency,resolution,fsc,fsc_eo"] + [
        f"{i},{f[i]},{(1 / f[i]) if f[i] else 'inf'},{fsc[i]},{eo[i]}" for i in range(30)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


ROWS = [{"label": "noisy", "path": "n.mrc", "psnr": 12.345, "ssim": 0.12345},
        {"label": "SC-Net", "path": "d.mrc", "psnr": 20.5, "ssim": 0.6}]


class TestFigures(_TmpDirTest):
    def test_slices_figure(self):
        rng = np.random.default_rng(0)
        a = _mrc(self.tmp / "a.mrc", rng.normal(size=(16, 20, 24)))
        b = _mrc(self.tmp / "b.mrc", np.arange(16 * 20 * 24).reshape(16, 20, 24))
        xy, xz, yz = figures.central_slices(a)
        self.assertEqual((xy.shape, xz.shape, yz.shape), ((20, 24), (16, 24), (16, 20)))
        _check_png(figures.slices_figure({"noisy": a, "denoised": b}, str(self.tmp / "s.png"), title="t"))

    def test_loss_curves_figure(self):
        p = self.tmp / "loss_log.csv"
        rows = ["iteration,epoch,loss,L_rec,L_smooth,L_exp,L_reg,val_loss,seconds"]
        for i in range(1, 21):
            val = f"{1.0 / i:.4f}" if i % 5 == 0 else ""
            rows.append(f"{i},{(i - 1) // 5},{2.0 / i},{1.0 / i},{0.1 / i},{0.2 / i},{0.01},{val},{i * 0.1}")
        p.write_text("\n".join(rows) + "\n")
        log = figures.read_loss_log(str(p))
        self.assertEqual(log["val_loss"].count(None), 16)
        _check_png(figures.loss_curves_figure(str(p), str(self.tmp / "l.png")))

    def test_fsc_figure_and_crossing(self):
        a = _fsc_csv(self.tmp / "noisy.csv", 0.03)
        b = _fsc_csv(self.tmp / "den.csv", 0.1)
        fr, c = figures.read_fsc_csv(b, use_eo=False)
        res = figures.crossing_resolution(fr, c)
        self.assertLess(abs(res - 1 / (0.1 * np.log(2))), 0.5)  # exp(-f/0.1)=0.5 at f=0.0693
        fr2, c2 = figures.read_fsc_csv(a, use_eo=True)
        self.assertGreater(figures.crossing_resolution(fr2, c2), res)  # noisy: 0.5 at a worse resolution
        _check_png(figures.fsc_figure({"noisy": a, "denoised": b}, str(self.tmp / "f.png")))

    def test_scores_and_evaluation_table(self):
        lines = figures.scores_table(ROWS).strip().splitlines()
        self.assertIn("| noisy | 12.35 | 0.1235 |", lines)
        self.assertIn("| SC-Net | 20.50 | 0.6000 |", lines)
        self.assertLess(lines.index("| noisy | 12.35 | 0.1235 |"), lines.index("| SC-Net | 20.50 | 0.6000 |"))
        self.assertIn("| x | - | - |", figures.scores_table([{"label": "x", "psnr": None, "ssim": None}]))
        p = self.tmp / "evaluation.json"
        p.write_text(json.dumps({"ground_truth": "gt.mrc", "data_range": 1.0, "shape": [8, 8, 8],
                                 "convention": "x", "results": ROWS}))
        t = figures.evaluation_table(str(p))
        self.assertTrue(t.startswith("Ground truth: gt.mrc"))
        self.assertIn("| SC-Net | 20.50 | 0.6000 |", t)


class TestWizard(unittest.TestCase):
    def test_patch_size_suggestion(self):
        self.assertGreater(estimate_peak_memory_gb(64, 2, 8), estimate_peak_memory_gb(32, 2, 8))
        self.assertGreater(estimate_peak_memory_gb(64, 4, 8), estimate_peak_memory_gb(64, 2, 8))
        # plenty of memory: limited by 128 and by the smallest dimension (multiple of 16)
        self.assertEqual(suggest_patch_size((500, 500, 200), 1000, 2, 8), 128)
        self.assertEqual(suggest_patch_size((100, 500, 70), 1000, 2, 8), 64)
        # tight memory: the suggestion must fit
        p = suggest_patch_size((500, 500, 500), 1.0, 2, 8)
        self.assertTrue(p % 16 == 0 and p >= 16 and estimate_peak_memory_gb(p, 2, 8) <= 1.0)
        self.assertTrue(estimate_peak_memory_gb(p + 16, 2, 8) > 1.0 or p == 128)


class _StubProt:
    """Just enough of a protocol for the viewers' result methods (extra/ folder, Scores output)."""

    def __init__(self, d, results=None):
        self.d = d
        self._results = results or {}

    def _getExtraPath(self, *p):
        return str(self.d.joinpath(*p))

    def results(self):
        return self._results

    threshold = type("P", (), {"get": lambda self: 0.5})()

    def measureNote(self):
        return "halves as given"


def _loss_log(path, rows=10):
    path.write_text("iteration,epoch,loss,L_rec,L_smooth,L_exp,L_reg,val_loss,seconds\n" +
                    "".join(f"{i},0,{1.0 / i},{1.0 / i},0.1,0.1,0.01,,{i}\n" for i in range(1, rows + 1)))
    return str(path)


class TestViewerFixes(_TmpDirTest):
    """What a new user saw: weight-0 loss terms plotted as if trained on, an FSC legend over the curves,
    raw markdown for a table."""

    def test_weight0_loss_terms_are_marked(self):
        log = figures.read_loss_log(_loss_log(self.tmp / "loss_log.csv"))
        weights = {"L_rec": 0.6, "L_smooth": 0.0, "L_exp": 0.0, "L_reg": 0.0}  # halves mode defaults
        series = {col: (label, trained) for col, _, _, label, trained in figures.loss_series(log, weights)}
        self.assertEqual(series["L_rec"], ("L_rec (weight 0.6)", True))
        for col in ("L_smooth", "L_exp", "L_reg"):
            self.assertEqual(series[col], (f"{col} (weight 0: not trained on)", False))
        self.assertEqual(series["loss"], ("loss (weighted sum)", True))
        # without recorded weights (an older model), nothing is claimed
        self.assertTrue(all(t and lab == c for c, _, _, lab, t in figures.loss_series(log, None)))
        summary = self.tmp / "training_summary.json"
        self.assertIsNone(figures.read_loss_weights(str(summary)))
        summary.write_text(json.dumps({"mode": "halves", "loss_weights": weights}))
        self.assertEqual(figures.read_loss_weights(str(summary)), weights)

    def test_fsc_legend_does_not_cover_the_curves(self):
        import matplotlib.pyplot as plt
        curves = {f"TS_01 {name} (a long label like the viewer's)": _fsc_csv(self.tmp / f"{name}.csv", d)
                  for name, d in (("noisy", 0.03), ("SC-Net", 0.1), ("SC-Net independent", 0.08))}
        kept = []
        real_close = plt.close
        plt.close = lambda fig=None: kept.append(fig)
        try:
            png = figures.fsc_figure(curves, str(self.tmp / "f.png"), title="Measure: halves as given")
        finally:
            plt.close = real_close
        fig = kept[-1]
        ax = fig.axes[0]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        legend = ax.get_legend().get_window_extent(renderer)
        axes = ax.get_window_extent(renderer)
        self.assertLessEqual(legend.y1, axes.y0)  # wholly under the plot area
        self.assertEqual(len(ax.get_legend().get_texts()), 3)
        real_close(fig)
        im = np.asarray(Image.open(png).convert("L"))
        self.assertLess(im[-im.shape[0] // 10:].min(), 128)  # the saved image keeps the legend (not cut off)

    def test_evaluate_viewer_shows_a_table_not_markdown(self):
        from scnet_plugin.viewers.viewers import SCNetEvaluateViewer, TableView
        ev = SCNetEvaluateViewer.__new__(SCNetEvaluateViewer)
        ev.protocol = _StubProt(self.tmp, {"TS_01": ROWS})
        views = ev._showTable()
        self.assertIsInstance(views[0], TableView)
        self.assertEqual(views[0].columns, ["tsId", "Method", "PSNR (dB)", "SSIM"])
        self.assertEqual(views[0].rows, [("TS_01", "noisy", "12.35", "0.1235"), ("TS_01", "SC-Net", "20.50", "0.6000")])
        text = (self.tmp / "evaluation_table.md").read_text()  # the same numbers, as markdown, for reports
        self.assertIn("| SC-Net | 20.50 | 0.6000 |", text)


class TestViewers(_TmpDirTest):

    def test_fsc_viewer_writes_png(self):
        from scnet_plugin.viewers.viewers import PngView, SCNetFscViewer
        _fsc_csv(self.tmp / "ts1_noisy_fsc.csv", 0.03)
        _fsc_csv(self.tmp / "ts1_denoised_fsc.csv", 0.1)
        fv = SCNetFscViewer.__new__(SCNetFscViewer)
        fv.protocol = _StubProt(self.tmp)
        fv.useEo = type("P", (), {"get": lambda self: True})()
        views = fv._showFsc()
        self.assertIsInstance(views[0], PngView)
        _check_png(views[0].png)

    def test_loss_curves_view_is_shared(self):
        from scnet_plugin.objects import SCNetModel
        from scnet_plugin.viewers.viewers import PngView, SCNetModelLossViewer, lossCurvesView
        p = _loss_log(self.tmp / "loss_log.csv")
        (self.tmp / "training_summary.json").write_text(json.dumps({"loss_weights": {"L_exp": 0.0}}))
        m = SCNetModel(path=str(self.tmp / "model.pt"), lossLog=p, tsId="TS_01")
        v = lossCurvesView(m)
        self.assertIsInstance(v, PngView)
        _check_png(v.png)
        viewer = SCNetModelLossViewer.__new__(SCNetModelLossViewer)
        self.assertEqual(viewer._visualize(m)[0].png, v.png)
