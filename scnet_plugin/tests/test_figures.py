"""Figures of scnet_plugin.viewers.figures on tiny synthetic MRC/CSV/JSON files."""
import json

import mrcfile
import numpy as np
from PIL import Image

from scnet_plugin.viewers import figures
from scnet_plugin.wizards.wizards import estimate_peak_memory_gb, suggest_patch_size


def _check_png(path, min_px=200):
    im = np.asarray(Image.open(path).convert("L"))
    assert im.shape[0] > min_px and im.shape[1] > min_px
    assert im.std() > 5  # not a single colour


def _mrc(path, arr):
    with mrcfile.new(str(path), overwrite=True) as m:
        m.set_data(arr.astype(np.float32))
    return str(path)


def test_slices_figure(tmp_path):
    rng = np.random.default_rng(0)
    a = _mrc(tmp_path / "a.mrc", rng.normal(size=(16, 20, 24)))
    b = _mrc(tmp_path / "b.mrc", np.arange(16 * 20 * 24).reshape(16, 20, 24))
    xy, xz, yz = figures.central_slices(a)
    assert xy.shape == (20, 24) and xz.shape == (16, 24) and yz.shape == (16, 20)
    out = figures.slices_figure({"noisy": a, "denoised": b}, str(tmp_path / "s.png"), title="t")
    _check_png(out)


def test_loss_curves_figure(tmp_path):
    p = tmp_path / "loss_log.csv"
    rows = ["iteration,epoch,loss,L_rec,L_smooth,L_exp,L_reg,val_loss,seconds"]
    for i in range(1, 21):
        val = f"{1.0 / i:.4f}" if i % 5 == 0 else ""
        rows.append(f"{i},{(i - 1) // 5},{2.0 / i},{1.0 / i},{0.1 / i},{0.2 / i},{0.01},{val},{i * 0.1}")
    p.write_text("\n".join(rows) + "\n")
    log = figures.read_loss_log(str(p))
    assert log["val_loss"].count(None) == 16
    _check_png(figures.loss_curves_figure(str(p), str(tmp_path / "l.png")))


def _fsc_csv(path, decay):
    f = np.linspace(0, 0.25, 30)
    fsc = np.exp(-f / decay)
    eo = 2 * fsc / (1 + fsc)
    lines = ["shell,frequency,resolution,fsc,fsc_eo"] + [
        f"{i},{f[i]},{(1 / f[i]) if f[i] else 'inf'},{fsc[i]},{eo[i]}" for i in range(30)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_fsc_figure_and_crossing(tmp_path):
    a = _fsc_csv(tmp_path / "noisy.csv", 0.03)
    b = _fsc_csv(tmp_path / "den.csv", 0.1)
    fr, c = figures.read_fsc_csv(b, use_eo=False)
    res = figures.crossing_resolution(fr, c)
    assert abs(res - 1 / (0.1 * np.log(2))) < 0.5  # exp(-f/0.1)=0.5 at f=0.0693
    fr2, c2 = figures.read_fsc_csv(a, use_eo=True)
    assert figures.crossing_resolution(fr2, c2) > res  # noisy reaches 0.5 at a worse resolution
    _check_png(figures.fsc_figure({"noisy": a, "denoised": b}, str(tmp_path / "f.png")))


def test_evaluation_table(tmp_path):
    p = tmp_path / "evaluation.json"
    p.write_text(json.dumps({"ground_truth": "gt.mrc", "data_range": 1.0, "shape": [8, 8, 8],
                             "convention": "x", "results": [
                                 {"label": "noisy", "path": "n.mrc", "psnr": 12.345, "ssim": 0.12345},
                                 {"label": "SC-Net", "path": "d.mrc", "psnr": 20.5, "ssim": 0.6}]}))
    t = figures.evaluation_table(str(p))
    lines = t.strip().splitlines()
    assert "| noisy | 12.35 | 0.1235 |" in lines
    assert "| SC-Net | 20.50 | 0.6000 |" in lines
    assert lines.index("| noisy | 12.35 | 0.1235 |") < lines.index("| SC-Net | 20.50 | 0.6000 |")


def test_patch_size_suggestion():
    assert estimate_peak_memory_gb(64, 2, 8) > estimate_peak_memory_gb(32, 2, 8)
    assert estimate_peak_memory_gb(64, 4, 8) > estimate_peak_memory_gb(64, 2, 8)
    # plenty of memory: limited by 128 and by the smallest dimension (multiple of 16)
    assert suggest_patch_size((500, 500, 200), 1000, 2, 8) == 128
    assert suggest_patch_size((100, 500, 70), 1000, 2, 8) == 64
    # tight memory: the suggestion must fit
    p = suggest_patch_size((500, 500, 500), 1.0, 2, 8)
    assert p % 16 == 0 and p >= 16 and estimate_peak_memory_gb(p, 2, 8) <= 1.0
    assert estimate_peak_memory_gb(p + 16, 2, 8) > 1.0 or p == 128


class _StubProt:
    """Just enough of a protocol for the viewers' result methods (extra/ folder)."""

    def __init__(self, d):
        self.d = d

    def _getExtraPath(self, *p):
        return str(self.d.joinpath(*p))

    threshold = type("P", (), {"get": lambda self: 0.5})()

    def measureNote(self):
        return "halves as given"


def test_viewers_write_results(tmp_path):
    from scnet_plugin.viewers.viewers import SCNetEvaluateViewer, SCNetFscViewer, PngView
    from pyworkflow.viewer import TextView
    test_evaluation_table(tmp_path)  # writes evaluation.json
    ev = SCNetEvaluateViewer.__new__(SCNetEvaluateViewer)
    ev.protocol = _StubProt(tmp_path)
    views = ev._showTable()
    assert isinstance(views[0], TextView)
    assert views[0].getFileList() == [str(tmp_path / "evaluation_table.md")]  # a list, not a path
    assert "| SC-Net | 20.50 | 0.6000 |" in (tmp_path / "evaluation_table.md").read_text()
    _fsc_csv(tmp_path / "ts1_noisy_fsc.csv", 0.03)
    _fsc_csv(tmp_path / "ts1_denoised_fsc.csv", 0.1)
    fv = SCNetFscViewer.__new__(SCNetFscViewer)
    fv.protocol = _StubProt(tmp_path)
    fv.useEo = type("P", (), {"get": lambda self: True})()
    views = fv._showFsc()
    assert isinstance(views[0], PngView)
    _check_png(views[0].png)
