"""scnet.choices is the one list of the choices the CLI and the plugin share: the CLI's argparse
choices and the engine modules that accept those values must agree with it."""
import argparse
import subprocess
import sys

import pytest

from scnet import choices
from scnet.cli import build_parser


def _choices(command, option):
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.choices[command]
    for action in p._actions:
        if option in action.option_strings:
            return action.choices
    raise AssertionError(f"scnet {command} has no option {option}")


@pytest.mark.parametrize("command, option, expected", [
    ("reconstruct", "--backend", choices.BACKENDS),
    ("simulate", "--backend", choices.BACKENDS),
    ("reconstruct", "--method", choices.RECON_METHODS),
    ("reconstruct", "--subset", choices.TILT_SUBSETS),
    ("filter", "--method", choices.PRIOR_FILTERS),
    ("filter", "--topaz-model", choices.TOPAZ_2D_MODELS),
    ("baseline", "--stages", choices.BM4D_STAGES),
    ("predict", "--tta", choices.TTA_CHOICES),
    ("denoise", "--tta", choices.TTA_CHOICES),
])
def test_cli_choices_come_from_scnet_choices(command, option, expected):
    assert tuple(_choices(command, option)) == tuple(expected)


def test_engine_modules_accept_exactly_the_shared_choices():
    from scnet import baselines, blindspot, filters
    assert tuple(baselines.REGISTRY) == choices.BASELINES
    assert set(filters.TOPAZ_MODELS_2D) == set(choices.TOPAZ_2D_MODELS)
    assert set(filters.TOPAZ_MODELS_3D) == set(choices.TOPAZ_3D_MODELS)
    assert tuple(blindspot.RATIO_OF) == choices.BLINDSPOT_RATIO_OF
    for name in choices.BASELINES_WITH_DEVICE:
        assert "device" in baselines.REGISTRY[name].options, name
    for name in set(choices.BASELINES) - set(choices.BASELINES_WITH_DEVICE):
        assert "device" not in baselines.REGISTRY[name].options, name


def test_recon_rejects_a_backend_outside_the_list():
    from scnet.errors import SCNetInputError
    from scnet.recon import pick_backend
    assert pick_backend("builtin") == "builtin"
    with pytest.raises(SCNetInputError, match="auto, builtin or imod"):
        pick_backend("gpu")


def test_shared_modules_import_without_numpy_or_torch():
    """The plugin imports these in the Scipion environment: they must stay dependency-free."""
    code = ("import sys, scnet, scnet.choices, scnet.deps; "
            "bad = sorted(m for m in ('numpy', 'torch', 'scipy', 'mrcfile') if m in sys.modules); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
