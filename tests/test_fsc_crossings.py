"""FSC crossings that do not flatter: first 0.5 / 0.143 crossings, and a warning when the curve
climbs back above the threshold after its first crossing (metrics.crossing, `scnet fsc --json`)."""
import json
import math

import mrcfile
import numpy as np
import pytest

from scnet.cli import main
from scnet.metrics import FSC_THRESHOLDS, crossing, crossing_warning, crossings, resolution_at

F = np.linspace(0.0, 0.05, 11)  # 1/A; shell 0 is the origin


def test_monotonic_curve_crosses_once():
    c = np.linspace(1.0, 0.0, 11)
    r = crossing(F, c, 0.5)
    assert r["resolution"] == pytest.approx(resolution_at(F, c, 0.5))
    assert r["resolution"] == pytest.approx(1 / 0.025)
    assert not r["rises_again"] and r["rise_resolution"] is None
    assert crossing_warning(r) is None
    assert [x["threshold"] for x in crossings(F, c)] == list(FSC_THRESHOLDS)
    assert crossings(F, c)[1]["resolution"] == pytest.approx(1 / (0.05 * (1 - 0.143)), rel=1e-6)


def test_curve_rising_again_is_flagged_and_only_the_first_crossing_counts():
    # falls below 0.5 at shell 4, climbs back to 0.8 at shell 8 (denoised halves' high frequencies)
    c = np.array([1.0, 0.9, 0.7, 0.55, 0.3, 0.2, 0.3, 0.6, 0.8, 0.7, 0.6])
    r = crossing(F, c, 0.5)
    assert r["resolution"] == pytest.approx(1 / (0.015 + (0.55 - 0.5) * 0.005 / 0.25))
    assert r["rises_again"] and r["rise_resolution"] == pytest.approx(1 / F[7])
    assert r["max_after"] == pytest.approx(0.8)
    w = crossing_warning(r, "FSC_e/o")
    assert "rises back above 0.5" in w and "first crossing" in w
    r143 = crossing(F, c, 0.143)  # never below 0.143: not reached, nothing to warn about
    assert math.isnan(r143["resolution"]) and not r143["rises_again"]


def test_cli_json_reports_crossings(tmp_path, caplog):
    rng = np.random.default_rng(0)
    shape = (24, 24, 24)
    signal = rng.normal(size=shape).astype(np.float32)
    a = signal + rng.normal(size=shape).astype(np.float32)
    b = signal + rng.normal(size=shape).astype(np.float32)
    for name, v in (("a.mrc", a), ("b.mrc", b)):
        with mrcfile.new(tmp_path / name) as m:
            m.set_data(v)
            m.voxel_size = 5.0
    out = tmp_path / "f.json"
    assert main(["fsc", str(tmp_path / "a.mrc"), str(tmp_path / "b.mrc"), "--json", str(out),
                 "--threshold", "0.3"]) == 0
    d = json.loads(out.read_text())
    for name in ("fsc", "fsc_eo"):
        th = [c["threshold"] for c in d["crossings"][name]]
        assert th == [0.5, 0.143, 0.3]
        for c in d["crossings"][name]:
            assert set(c) >= {"resolution", "rises_again", "rise_resolution", "max_after", "status"}
