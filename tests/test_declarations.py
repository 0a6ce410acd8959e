"""One declaration per option (scnet.declare): every ``scnet`` parser is walked and every option with a
default, a bound or choices must be its declaration's -- 0 differences; every declared bound is refused
by the config and by the command line, before any file is read."""
import argparse
import math
from dataclasses import fields

import pytest

from scnet.cli import build_parser, main
from scnet.cli.options import differences
from scnet.config import PredictConfig, PriorConfig, TrainConfig
from scnet.config_eval import BASELINE_OPTIONS, AverageConfig, EvaluateConfig, FscConfig
from scnet.config_tomo import AlignConfig, FilterConfig, PhantomConfig, ReconstructConfig, SimulationConfig
from scnet.declare import bounds_text, defaults, field_of, just_outside

CONFIGS = [TrainConfig, PriorConfig, PredictConfig, AlignConfig, ReconstructConfig, FilterConfig, PhantomConfig,
           SimulationConfig, FscConfig, EvaluateConfig, AverageConfig, *BASELINE_OPTIONS.values()]


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_declaration_has_help_and_its_default_passes(cls):
    for f in fields(cls):
        assert len(f.metadata.get("help", "")) > 10, f"{cls.__name__}.{f.name} has no help"
        if f.metadata.get("choices"):
            assert f.default in f.metadata["choices"], f.name
    assert cls.errors(defaults(cls)) == []
    cls().validate()


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_declared_bound_is_refused_with_the_option_named(cls):
    checked = 0
    for f in fields(cls):
        for v in just_outside(f):
            errs = cls.errors({f.name: v})
            assert any(f"{f.name}={v!r}" in e for e in errs), (cls.__name__, f.name, v, errs)
            if not f.metadata.get("check"):
                assert any(bounds_text(f) in e for e in errs), (f.name, errs)
            checked += 1
    assert checked or cls is PriorConfig or all(not just_outside(f) for f in fields(cls))


def _differences():
    """Every option of every ``scnet`` command that is not its declaration (scnet.cli.options.differences)."""
    return [d for command, p in _subparsers().items() for d in differences(p, f"scnet {command}")]


def test_every_cli_option_is_its_declaration():
    assert _differences() == []


def test_unset_cli_options_resolve_to_the_declared_defaults(tmp_path):
    """`scnet train` with no option gives TrainConfig(); `scnet baseline NAME` runs each method with its
    declared options."""
    from scnet.cli.engine import config_from_args
    from scnet.device import device_name
    args = build_parser().parse_args(["train", "--noisy", "n.mrc", "--output-dir", str(tmp_path)])
    cfg = config_from_args(args)
    assert cfg.to_dict() == dict(TrainConfig().to_dict(), device=device_name("auto"))


def test_run_baseline_fills_in_the_declared_options(monkeypatch):
    import numpy as np
    from scnet import baselines
    seen = {}

    def spy(name):
        def run(volume, **options):
            seen[name] = options
            return volume
        return run
    for name, method in list(baselines.REGISTRY.items()):
        monkeypatch.setitem(baselines.REGISTRY, name,
                            method.__class__(name, spy(name), method.config, lambda: None, method.extra))
        baselines.run_baseline(name, np.zeros((8, 8, 8), np.float32))
        assert seen[name] == defaults(BASELINE_OPTIONS[name]), name


# --------------------------------------------------------------------------- the CLI refuses before reading
_MINIMAL = {  # the required arguments of each command (files that do not exist: options are checked first)
    "train": ["--noisy", "n.mrc", "--output-dir", "{d}/t"],
    "denoise": ["--noisy", "n.mrc", "--output", "{d}/o.mrc", "--output-dir", "{d}/t"],
    "predict": ["--model", "m.pt", "--input", "i.mrc", "--output", "{d}/o.mrc"],
    "filter": ["in.mrcs", "{d}/out.mrcs"],
    "phantom": ["--output-dir", "{d}/p"],
    "simulate": ["--output-dir", "{d}/s", "--phantom"],
    "fsc": ["a.mrc", "b.mrc"],
    "evaluate": ["--ground-truth", "gt.mrc", "v.mrc"],
    "baseline": ["gaussian", "in.mrc", "{d}/out.mrc"],
    "average": ["--volume", "v.mrc", "--particles", "p.txt"],
}


def _bound_cases():
    cases = []
    for command, p in _subparsers().items():
        if command not in _MINIMAL:
            continue
        for a in p._actions:
            for cls, name in getattr(a, "declared", None) or []:
                for v in just_outside(field_of(cls, name)):
                    cases.append((command, a.option_strings[0], name, v))
    return cases


@pytest.mark.parametrize("command,option,name,value", _bound_cases())
def test_cli_refuses_each_value_outside_its_declaration(tmp_path, capsys, command, option, name, value):
    argv = [command] + [s.format(d=tmp_path) for s in _MINIMAL[command]] + [f"{option}={value}"]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refuses a choice itself
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, (argv, err)
    assert name in err or option in err, err
    assert "not found" not in err and "No such file" not in err, err  # refused before any file is read
    assert not any(tmp_path.iterdir())


def test_seed_bound_is_shown_as_an_integer():
    assert bounds_text(field_of(PhantomConfig, "seed")).endswith(str(2 ** 32 - 2))
    assert not math.isnan(float(bounds_text(field_of(PhantomConfig, "seed")).split("..")[1]))
