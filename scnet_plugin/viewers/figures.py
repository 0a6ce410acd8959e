"""Headless figures for SC-Net results (matplotlib Agg + mrcfile + csv/json only; no numerics of the method).

Used by the viewers and the demo. Every function writes a PNG and returns its path.
"""
import csv
import json
import os

import numpy as np


def _plt():
    import matplotlib
    if not os.environ.get("DISPLAY"):
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def central_slices(path):
    """Central XY, XZ, YZ slices of an MRC volume (Z, Y, X); memory-mapped, only the 3 slices are read."""
    import mrcfile
    with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
        d = mrc.data
        if d.ndim == 2:
            d = d[None]
        z, y, x = d.shape
        return (np.array(d[z // 2], dtype=np.float32), np.array(d[:, y // 2, :], dtype=np.float32),
                np.array(d[:, :, x // 2], dtype=np.float32))


def _limits(slices, lo=1, hi=99):
    vals = np.concatenate([s.ravel() for s in slices])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 0.0, 1.0
    a, b = np.percentile(vals, [lo, hi])
    return (float(a), float(b)) if b > a else (float(a), float(a) + 1.0)


def slices_figure(volumes, out_png, title=None):
    """Rows = volumes (label -> MRC path), columns = central XY, XZ, YZ slices, contrast = percentiles 1-99."""
    plt = _plt()
    items = [(k, v) for k, v in volumes.items() if v]
    fig, axes = plt.subplots(len(items), 3, figsize=(10, 3.2 * len(items)), squeeze=False)
    for r, (label, path) in enumerate(items):
        sl = central_slices(path)
        vmin, vmax = _limits(sl)
        for c, (s, name) in enumerate(zip(sl, ("XY", "XZ", "YZ"))):
            ax = axes[r][c]
            ax.imshow(s, cmap="gray", vmin=vmin, vmax=vmax, origin="lower")
            ax.set_xticks([]); ax.set_yticks([])
            ax.set_title(f"{label} — {name}", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def _float(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def read_loss_log(loss_csv):
    """loss_log.csv -> dict column -> list (None where empty)."""
    with open(loss_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    cols = rows[0].keys() if rows else []
    return {c: [_float(r.get(c)) for r in rows] for c in cols}


def read_loss_weights(summary_json):
    """The weight of each logged loss term (``training_summary.json``'s ``loss_weights``), or None
    (no summary yet, or one written before the weights were recorded)."""
    if not summary_json or not os.path.exists(summary_json):
        return None
    with open(summary_json) as f:
        weights = json.load(f).get("loss_weights")
    return weights if isinstance(weights, dict) else None


def loss_series(log, weights=None):
    """The curves of :func:`loss_curves_figure`: ``(column, xs, ys, label, trained)`` per logged column
    with positive values. With ``weights``, each term's label gives its weight (eq. 8), and a term of
    weight 0 -- logged, but not in the loss the network was trained on -- says so and is not ``trained``."""
    it = log.get("iteration") or []
    out = []
    for col in ("loss", "L_rec", "L_smooth", "L_exp", "L_reg", "val_loss"):
        ys = log.get(col)
        pts = [(x, y) for x, y in zip(it, ys or []) if x is not None and y is not None and y > 0]
        if not pts:
            continue
        label, trained = col, True
        if weights is not None and col in weights:
            w = float(weights[col] or 0)
            trained = w > 0
            label = f"{col} (weight {w:g})" if trained else f"{col} (weight 0: not trained on)"
        elif weights is not None and col == "loss":
            label = "loss (weighted sum)"
        xs, vs = zip(*pts)
        out.append((col, list(xs), list(vs), label, trained))
    return out


def loss_curves_figure(loss_csv, out_png, weights=None):
    """Each loss term (loss, L_rec, L_smooth, L_exp, L_reg) and val_loss vs iteration, log y; the terms
    of weight 0 (``weights``: :func:`read_loss_weights`) drawn faint and dotted, their label saying so."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for col, xs, vs, label, trained in loss_series(read_loss_log(loss_csv), weights):
        style = dict(marker="o", ls="--") if col == "val_loss" else {}
        if not trained:
            style = dict(ls=":", color="0.6", alpha=0.8)
        ax.plot(xs, vs, label=label, **style)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("SC-Net training losses")
    return _finish(fig, ax, out_png)


def read_fsc_csv(csv_path, use_eo=True):
    """scnet fsc CSV -> (frequency 1/A, curve) with curve = fsc_eo (eq. 10) or fsc."""
    key = "fsc_eo" if use_eo else "fsc"
    freq, vals = [], []
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            fr, v = _float(r.get("frequency")), _float(r.get(key))
            if fr is not None and v is not None:
                freq.append(fr); vals.append(v)
    return np.asarray(freq), np.asarray(vals)


def crossing_resolution(freq, curve, threshold=0.5):
    """Resolution (A) where the curve first drops below threshold (linear interpolation); None if never."""
    for i in range(1, len(curve)):
        if curve[i] < threshold <= curve[i - 1]:
            f0, f1, c0, c1 = freq[i - 1], freq[i], curve[i - 1], curve[i]
            f = f0 + (threshold - c0) * (f1 - f0) / (c1 - c0) if c1 != c0 else f1
            return 1.0 / f if f > 0 else None
    return None


def _engine_crossings(csv_path, use_eo):
    """The engine's first crossings for a `scnet fsc` CSV (its sibling .json), or None."""
    js = csv_path[:-len(".csv")] + ".json" if csv_path.endswith(".csv") else None
    if not js or not os.path.exists(js):
        return None
    with open(js) as f:
        data = json.load(f)
    return data.get("crossings", {}).get("fsc_eo" if use_eo else "fsc")


def _crossing_text(cross):
    parts = []
    for c in cross:
        r = c.get("resolution")
        parts.append(f"{c['threshold']:g}: {r:.1f} Å" if r else f"{c['threshold']:g}: not reached")
    text = ", ".join(parts)
    if any(c.get("rises_again") for c in cross):
        text += "; rises again!"
    return text


def fsc_figure(curves, out_png, use_eo=True, threshold=0.5, title=None):
    """FSC_e/o (or FSC) vs spatial frequency (1/A) for label -> CSV path, dashed threshold lines.
    The legend gives the engine's first crossings (the CSV's sibling JSON from `scnet fsc --json`:
    0.5 and 0.143, flagged when the curve rises above a threshold again); without that JSON, the
    first crossing of ``threshold``. ``title``: which measure is shown."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lines = {threshold}
    for label, path in curves.items():
        freq, curve = read_fsc_csv(path, use_eo)
        cross = _engine_crossings(path, use_eo)
        if cross:
            txt = _crossing_text(cross)
            lines |= {c["threshold"] for c in cross}
        else:
            res = crossing_resolution(freq, curve, threshold)
            txt = f"{threshold} at {res:.1f} Å" if res else f"{threshold} not reached"
        ax.plot(freq, curve, label=f"{label} ({txt})")
    for t in sorted(lines):
        ax.axhline(t, ls="--", color="k", lw=0.8)
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC$_{e/o}$" if use_eo else "FSC")
    ax.set_ylim(-0.1, 1.05)
    if title:
        import textwrap
        ax.set_title("\n".join(textwrap.wrap(title, 95)), fontsize=8)
    return _finish(fig, ax, out_png, legend_below=True)


def scores_table(rows, header=None):
    """Markdown table (label, PSNR, SSIM) of score rows ``{'label', 'psnr', 'ssim'[, 'path']}``
    (paper Tables 1-2 layout); ``header`` = a line above the table."""
    lines = ([header, ""] if header else []) + ["| Method | PSNR (dB) | SSIM |", "|---|---|---|"]
    for r in rows:
        p, s = r.get("psnr"), r.get("ssim")
        ps = f"{p:.2f}" if isinstance(p, (int, float)) else "-"
        ss = f"{s:.4f}" if isinstance(s, (int, float)) else "-"
        lines.append(f"| {r.get('label') or os.path.basename(r.get('path') or '?')} | {ps} | {ss} |")
    return "\n".join(lines) + "\n"


SCORE_COLUMNS = ("tsId", "Method", "PSNR (dB)", "SSIM")


def score_rows(results):
    """Rows of :data:`SCORE_COLUMNS` (strings, as :func:`scores_table` formats them) from
    ``{tsId: [score rows]}`` -- what the evaluate viewer's table shows."""
    out = []
    for tsId, rows in results.items():
        for r in rows:
            p, s = r.get("psnr"), r.get("ssim")
            out.append((str(tsId), r.get("label") or os.path.basename(r.get("path") or "?"),
                        f"{p:.2f}" if isinstance(p, (int, float)) else "-",
                        f"{s:.4f}" if isinstance(s, (int, float)) else "-"))
    return out


def evaluation_table(json_path):
    """:func:`scores_table` of a `scnet evaluate --json` file."""
    with open(json_path) as f:
        data = json.load(f)
    return scores_table(data.get("results", []), f"Ground truth: {data.get('ground_truth', '?')}")


def _finish(fig, ax, out_png, legend_below=False):
    """Legend, grid, tight layout; save ``out_png`` (100 dpi) and free the figure. ``legend_below``:
    the legend under the axes, one entry per line, so long labels never cover a curve."""
    if legend_below:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=1, fontsize=8, frameon=False)
    else:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100, bbox_inches="tight" if legend_below else None)
    _plt().close(fig)
    return out_png
