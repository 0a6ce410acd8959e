"""One declaration per option: scnet.config drives the CLI's defaults and help, and is torch-free."""
import argparse
import os
import subprocess
import sys
from dataclasses import fields

from scnet import choices
from scnet.cli import build_parser
from scnet.config import PredictConfig, TrainConfig, defaults, help_of

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sub(name):
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _action(parser, dest):
    return next(a for a in parser._actions if a.dest == dest)


def test_every_field_declares_a_help_text_and_valid_defaults():
    for cls in (TrainConfig, PredictConfig):
        for f in fields(cls):
            assert len(f.metadata.get("help", "")) > 10, f"{cls.__name__}.{f.name} has no help"
    TrainConfig().validate()
    PredictConfig().validate()


def test_cli_predict_and_denoise_defaults_are_the_config():
    d = defaults(PredictConfig)
    for command in ("predict", "denoise"):
        p = _sub(command)
        for name in ("tile_size", "overlap", "tta", "precision"):
            a = _action(p, name)
            assert a.default == d[name], (command, name)
            assert help_of(PredictConfig, name) in a.help and f"[{d[name]}]" in a.help, (command, name)
    assert d["tta"] == choices.DEFAULT_TTA


def test_cli_train_options_show_the_config_default_and_help():
    d = TrainConfig()
    for command in ("train", "denoise"):
        p = _sub(command)
        for f in fields(TrainConfig):
            a = _action(p, "cfg_" + f.name)
            assert a.default is None  # unset: the config's (or --config's) value stands
            assert a.help.startswith(help_of(TrainConfig, f.name).replace("%", "%%")), (command, f.name)
            assert a.help.endswith(f"[{getattr(d, f.name)}]"), (command, f.name)


def test_reconstruction_radial_default_is_declared_once():
    from scnet.recon import ReconConfig
    from scnet.simulate import SimulationConfig
    assert ReconConfig().radial == choices.RADIAL
    assert SimulationConfig().radial == choices.RADIAL
    assert _action(_sub("reconstruct"), "radial").default == choices.RADIAL_TEXT


def test_config_imports_without_torch_or_numpy():
    """The Scipion environment has neither: the plugin's forms import scnet.config there."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'numpy'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import scnet.config as c\n"
            "print(c.TrainConfig().patch_size, c.PredictConfig().tile_size)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(TrainConfig().patch_size), str(PredictConfig().tile_size)]


def test_every_declared_bound_is_enforced_and_named():
    """One loop over the metadata: a value just outside each declared bound (or choice) is refused with
    the field's name and the accepted range; the defaults pass."""
    from dataclasses import fields
    from scnet.config import TrainConfig, bounds_text, train_option_errors
    assert train_option_errors(TrainConfig().to_dict()) == []
    checked = 0
    for f in fields(TrainConfig):
        m = f.metadata
        outside = []
        if m.get("choices"):
            outside.append("no-such-choice")
        if m.get("lo") is not None:
            outside.append(m["lo"] if m["lo_open"] else m["lo"] - 1)
        if m.get("hi") is not None:
            outside.append(m["hi"] if m["hi_open"] else m["hi"] + 1)
        for v in outside:
            errs = train_option_errors({f.name: v})
            assert any(f"{f.name}={v!r}" in e and bounds_text(f) in e for e in errs), (f.name, v, errs)
            checked += 1
    assert checked >= 25
