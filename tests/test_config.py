"""The config modules are torch- and numpy-free (the Scipion environment imports them), and facts
shared by several stages are declared once.  The walk over every parser and bound: test_declarations."""
import os
import subprocess
import sys

from scnet import choices
from scnet.config import PredictConfig, TrainConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_reconstruction_radial_default_is_declared_once():
    from scnet.config_tomo import SimulationConfig
    from scnet.recon import ReconConfig
    assert ReconConfig().radial == choices.RADIAL
    assert SimulationConfig().radial_pair() == choices.RADIAL


def test_device_is_declared_once_as_auto():
    """Every stage that runs torch declares the same device option; the CLI records the concrete choice."""
    from dataclasses import fields
    from scnet.config_eval import N2vConfig, Topaz3dConfig
    from scnet.config_tomo import FilterConfig
    from scnet.device import AUTO, DEVICE_HELP
    for cls in (TrainConfig, PredictConfig, FilterConfig, N2vConfig, Topaz3dConfig):
        f = {f.name: f for f in fields(cls)}["device"]
        assert (f.default, f.metadata["help"]) == (AUTO, DEVICE_HELP), cls


def test_config_modules_import_without_torch_or_numpy():
    """The Scipion environment has neither: the plugin's forms import the config modules there."""
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'numpy'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import scnet.config as c, scnet.config_tomo as t, scnet.config_eval as e\n"
            "print(c.TrainConfig().patch_size, c.PredictConfig().tile_size, t.PhantomConfig().shape, "
            "e.FscConfig().threshold)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(TrainConfig().patch_size), str(PredictConfig().tile_size), "64,128,128", "0.5"]


def test_a_train_config_file_is_read_with_the_declared_types(tmp_path):
    import json
    import pytest
    from scnet.errors import SCNetInputError
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"patch_size": "32", "use_expectancy": "false", "lambda_rec": None}))
    cfg = TrainConfig.from_json(str(p))
    assert (cfg.patch_size, cfg.use_expectancy, cfg.lambda_rec) == (32, False, None)
    p.write_text(json.dumps({"patch_sise": 32}))
    with pytest.raises(SCNetInputError, match="unknown training option 'patch_sise'"):
        TrainConfig.from_json(str(p))
