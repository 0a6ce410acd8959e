"""The benchmark scripts are not run by CI (hours on 2 cores), but what they claim about their
settings is: they run at the user defaults, the capacity benchmark's reference network is the
default network, and every `make bench-*` target points at a script that exists."""
import importlib.util
import os
import re

import pytest

from scnet.choices import NETWORK_DEFAULTS
from scnet.config import TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(REPO, "benchmarks", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_capacity_reference_is_the_default_network_and_the_rest_are_user_defaults():
    cap = _load("capacity")
    args = cap.parse_args([])
    assert args.networks[0] == (NETWORK_DEFAULTS["base_width"], NETWORK_DEFAULTS["depth"])
    assert len(set(args.networks)) == len(args.networks) >= 2
    cfg = cap._cfg(args, args.shape, 16, 3)
    ref = TrainConfig()
    # only the network and the (equal) time budget differ from what a user gets
    for field in ("mode", "epochs", "max_iterations", "min_iterations", "patience", "lr", "batch_size",
                  "patch_size", "upsampling_block"):
        assert getattr(cfg, field) == getattr(ref, field), field
    assert (cfg.base_width, cfg.depth, cfg.max_minutes) == (16, 3, args.max_minutes)


@pytest.mark.parametrize("bad", ["16", "16x", "ax3", "16x3x2"])
def test_capacity_rejects_a_malformed_network(bad, capsys):
    cap = _load("capacity")
    with pytest.raises(SystemExit):
        cap.parse_args(["--networks", bad])
    assert "WIDTHxDEPTH" in capsys.readouterr().err


def test_finetune_and_quality_run_at_the_user_defaults():
    ft = _load("finetune")
    args = ft.parse_args([])
    assert ft._cfg(args, args.shape).to_dict() == TrainConfig().to_dict()
    q = _load("quality")
    qa = q.parse_args([])
    assert (qa.scnet_epochs, qa.scnet_iterations, qa.scnet_config) == (0, 0, None)
    assert q._scnet_config(qa, qa.shape, True, seed=0).to_dict() == TrainConfig(seed=0).to_dict()
    assert qa.seeds == [0, 1] and qa.sigmas == [10.0, 15.0, 20.0] and qa.shape == (64, 128, 128)
    assert q.parse_args(["--shape", "32x48x48"]).shape == (32, 48, 48)  # both spellings of a shape


def test_dataset_benchmark_runs_at_the_user_defaults():
    """No training option reaches `scnet train` (a user's defaults), four tomograms and a fifth apart."""
    ds = _load("dataset")
    args = ds.parse_args([])
    assert ds.train_options(args, args.shape) == []
    assert len(args.seeds) == 4 and args.unseen_seed not in args.seeds and args.shape == (64, 128, 128)
    assert ds.train_options(ds.parse_args(["--epochs", "1", "--patch", "16"]), (16, 32, 32)) == \
        ["--epochs", "1", "--patch-size", "16"]


def test_quality_scnet_config_file_is_applied(tmp_path):
    q = _load("quality")
    path = tmp_path / "depth4.json"
    path.write_text('{"depth": 4}')
    qa = q.parse_args(["--scnet-config", str(path), "--shape", "32,48,48"])
    cfg = q._scnet_config(qa, qa.shape, False, seed=3)
    assert (cfg.depth, cfg.use_expectancy, cfg.seed, cfg.patch_size) == (4, False, 3, 32)


def test_every_make_bench_target_runs_an_existing_script():
    with open(os.path.join(REPO, "Makefile")) as fh:
        text = fh.read()
    targets = re.findall(r"^(bench-[a-z]+):", text, flags=re.M)
    scripts = re.findall(r"benchmarks/([a-z_]+\.py)", text)
    assert {"bench-quality", "bench-finetune", "bench-capacity", "bench-speed", "bench-prediction"} <= set(targets)
    assert len(scripts) >= len(targets)
    for s in scripts:
        assert os.path.exists(os.path.join(REPO, "benchmarks", s)), s


def test_quality_reports_the_missing_wedge_against_the_phantom(tmp_path):
    """A tiny run of the quality benchmark: every method also gets PSNR/SSIM against the phantom
    (no wedge), its wedge power and its Z/X elongation; the back-projection ground truth is the
    reference row (stretched along Z, almost no power inside the wedge)."""
    import json
    q = _load("quality")
    out = tmp_path / "q"
    assert q.main(["--shape", "16,32,32", "--seeds", "0", "--sigmas", "15", "--fsc-sigmas", "",
                   "--methods", "noisy,lpf,oracle", "--prior-filter", "gaussian", "--output", str(out)]) == 0
    res = json.load(open(out / "results.json"))["cases"]["0_15"]
    ref = res["wedge_reference"]
    assert 0 <= ref["wedge_power"] < 0.1 and ref["elongation"] > 1.1
    for m in ("noisy", "lpf", "oracle"):
        met = res["metrics"][m]
        assert {"psnr_iso", "ssim_iso", "wedge_power", "elongation"} <= set(met), m
    # a linear filter restores nothing inside the wedge: it only removes noise there
    assert res["metrics"]["lpf"]["wedge_power"] < res["metrics"]["noisy"]["wedge_power"]
    assert res["metrics"]["lpf"]["elongation"] > 1.1
    text = (out / "tables.md").read_text()
    assert "## Missing wedge: against the phantom itself" in text and "### Z/X elongation" in text


def test_quality_reports_the_row_texture_and_runs_the_interpolated_rows_variant(tmp_path):
    """--rotations 0,4.3: each case also with the tilts' noise interpolated (rotated and back); every method
    gets its row texture (noisy > 1: the noise has power at the row frequency; a low-pass < 1)."""
    import json
    q = _load("quality")
    out = tmp_path / "r"
    assert q.main(["--shape", "16,32,32", "--seeds", "0", "--sigmas", "15", "--fsc-sigmas", "", "--rotations",
                   "0,4.3", "--methods", "noisy,lpf", "--prior-filter", "gaussian", "--output", str(out)]) == 0
    res = json.load(open(out / "results.json"))["cases"]
    assert set(res) == {"0_15", "0_15_r4.3"}
    for case in res.values():
        assert case["metrics"]["noisy"]["texture"] > 1.2 and case["metrics"]["lpf"]["texture"] < 0.8
    text = (out / "tables.md").read_text()
    assert "## Row texture" in text and "seed 0, σ=15, rows interp. 4.3°" in text
    assert (out / "slices_seed0_sigma15_rot4.3.png").exists()


def test_quality_scores_auto_and_other_row_averages_of_the_same_model(tmp_path):
    """scnet_auto says which mode auto trained; --row-averages adds one row per output average along Y,
    predicted by the same model (none = no average: more row texture than the default's); --interpolation is
    recorded and changes the interpolated case."""
    import json
    q = _load("quality")
    out = tmp_path / "a"
    assert q.main(["--shape", "16,32,32", "--seeds", "0", "--sigmas", "15", "--fsc-sigmas", "", "--rotations", "4.3",
                   "--interpolation", "3", "--methods", "noisy,scnet_auto", "--prior-filter", "gaussian",
                   "--scnet-epochs", "1", "--scnet-iterations", "2", "--scnet-patch", "16", "--scnet-tta", "1",
                   "--row-averages", "none,cubic", "--output", str(out)]) == 0
    r = json.load(open(out / "results.json"))
    assert r["meta"]["interpolation"] == 3
    case = r["cases"]["0_15_r4.3"]
    assert {"scnet_auto", "scnet_auto@none", "scnet_auto@cubic"} <= set(case["metrics"])
    assert "mode auto -> " in case["notes"]["scnet_auto"] and "output average along Y: none" in \
        case["notes"]["scnet_auto@none"]
    m = case["metrics"]
    assert m["scnet_auto@none"]["texture"] > m["scnet_auto"]["texture"]
    assert "SC-Net auto, no halves (default), cubic average" in (out / "tables.md").read_text()


def test_quality_runs_the_wedge_aware_halves_training(tmp_path):
    """The halves + wedge row trains with the simulation's tilt range (a few iterations here)."""
    import json
    q = _load("quality")
    out = tmp_path / "w"
    assert q.main(["--shape", "16,32,32", "--seeds", "0", "--sigmas", "15", "--fsc-sigmas", "",
                   "--methods", "noisy,scnet_wedge", "--prior-filter", "gaussian", "--scnet-epochs", "1",
                   "--scnet-iterations", "2", "--scnet-patch", "16", "--scnet-tta", "1", "--output", str(out)]) == 0
    res = json.load(open(out / "results.json"))["cases"]["0_15"]
    assert "wedge filled (tilts -60,60)" in res["notes"]["scnet_wedge"]
    assert {"psnr_iso", "wedge_power", "elongation"} <= set(res["metrics"]["scnet_wedge"])


def test_prediction_benchmark_compares_options_of_one_model_per_case(tmp_path, capsys):
    """Its cases are quality.py's; every option predicts with the same model (so the reference option's
    PSNR change is exactly 0), the training runs at the user defaults, and a table row per option."""
    import json
    pb, q = _load("prediction"), _load("quality")
    a, qa = pb.parse_args([]), q.parse_args([])
    assert (a.shape, a.seeds, a.sigmas) == (qa.shape, qa.seeds, qa.sigmas)
    assert pb.REFERENCE in [(n, p) for n in a.flips for p in a.precisions]
    with pytest.raises(SystemExit):
        pb.parse_args(["--flips", "1,2"])  # without the reference
    out = tmp_path / "p"
    assert pb.main(["--shape", "16,32,32", "--seeds", "0", "--sigmas", "15", "--modes", "halves",
                    "--flips", "1,8", "--precisions", "fp32", "--epochs", "1", "--iterations", "2",
                    "--output", str(out)]) == 0
    rows = json.load(open(out / "results.json"))
    assert set(rows) == {"halves 1 fp32", "halves 8 fp32"}
    assert rows["halves 8 fp32"][0][3] == 0.0 and rows["halves 1 fp32"][0][3] != 0.0
    text = capsys.readouterr().out
    assert "| halves | 1 | fp32 |" in text and "+0.00 / +0.00" in text


def test_speed_benchmark_before_column_builds_the_former_layout():
    """The 'before' column runs networks in the standard NCDHW layout; the default stays channels-last."""
    import torch
    from scnet.model import CHANNELS_LAST, ModelConfig, SCNet
    sp = _load("speed")
    with sp.layout(sp.BEFORE["layout"]):
        w = SCNet(ModelConfig(base_width=4, depth=3)).encoder[1][0].weight
        assert not w.is_contiguous(memory_format=CHANNELS_LAST)
    assert SCNet(ModelConfig(base_width=4, depth=3)).encoder[1][0].weight.is_contiguous(memory_format=CHANNELS_LAST)
    assert sp.BEFORE["layout"] == torch.contiguous_format and sp.BEFORE["tile_size"] < sp.PredictConfig().tile_size


def test_real_benchmark_labels_every_method_and_reports_every_crossing(capsys):
    real = _load("real")
    assert set(real.METHODS) | {"raw"} == set(real.LABELS)
    with pytest.raises(SystemExit):
        real.main(["--cache-dir", "/nonexistent", "--methods", "scnet_halves,nonsense"])
    assert "nonsense" in capsys.readouterr().err
    flat = {"resolution": float("nan"), "rises_again": False, "rise_resolution": None}
    fall = {"resolution": 80.0, "rises_again": True, "rise_resolution": 45.0}
    rows = {"raw": {"crossings": [fall, flat], "ice_std": 0.1, "contrast": 0.03},
            "gaussian": {"crossings": [fall, fall], "ice_std": 0.01, "contrast": 0.02, "seconds": 60, "modes": []}}
    text = real.table(rows, 20.0, 30, 90)
    assert "| Gaussian (1.5 px) | 80 Å (rises again at 45 Å) |" in text
    assert "not reached" in text and "| 0.100 | 0.67 | 2.00 | 1.0 |" in text


def test_real_benchmark_keeps_the_rows_of_methods_not_re_run(tmp_path):
    import json
    real = _load("real")
    row = {"crossings": [], "ice_std": 0.01, "contrast": 0.02}
    json.dump({"voxel": 20.0, "argv": ["--cache-dir", "c"], "rows": {"raw": row, "gaussian": row, "topaz3d": row}},
              open(tmp_path / "results.json", "w"))
    (tmp_path / "gaussian").mkdir()
    (tmp_path / "gaussian" / "even.mrc").write_bytes(b"")
    args = real.parser().parse_args(["--cache-dir", "c", "--methods", "bm4d"])
    assert set(real._earlier(str(tmp_path), args, ["bm4d"], 20.0)) == {"gaussian"}  # topaz3d has no volume
    assert real._earlier(str(tmp_path), args, ["gaussian"], 20.0) == {}              # re-run: not kept
    other = real.parser().parse_args(["--cache-dir", "c", "--bin", "4"])
    assert real._earlier(str(tmp_path), other, ["bm4d"], 40.0) == {}                 # other settings
