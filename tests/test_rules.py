"""The option rules (scnet.rules): shared with the plugin, importable without torch or numpy."""
import subprocess
import sys


def test_rules_are_shared_and_torch_free():
    """The plugin imports scnet.config and scnet.rules in an environment without torch/numpy."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['numpy'] = None\n"
            "import scnet.config as c; assert c.train_option_errors({'seed': -1})")
    subprocess.run([sys.executable, "-c", code], check=True)
    from scnet.blindspot import RATIO_OF
    from scnet.choices import BLINDSPOT_RATIO_OF
    assert RATIO_OF == BLINDSPOT_RATIO_OF


def test_rules_of_the_automatic_stop_options():
    """Options of the automatic-stop trainer (when present): epochs 0 allowed, the stop bounds checked."""
    from scnet.config import train_option_errors
    ok = {"epochs": 0, "iterations_per_epoch": 25, "min_iterations": 300, "max_iterations": 1500, "patience": 4,
          "min_delta": 0.003, "max_minutes": 0.0, "mode": "auto"}
    assert train_option_errors(ok) == []
    for k, v in (("min_iterations", 2000), ("patience", 0), ("min_delta", 1.5), ("max_minutes", -1),
                 ("mode", "both"), ("iterations_per_epoch", 0), ("epochs", -1)):
        assert any(k in e for e in train_option_errors(dict(ok, **{k: v}))), k
    assert train_option_errors({"epochs": 0}) == []  # 0 = the automatic stop


def test_all_zero_loss_weights_rule():
    from scnet.config import train_option_errors
    zero = {"lambda_rec": 0, "lambda_smooth": 0, "lambda_exp": 0.0, "lambda_reg": 0}
    assert any("all 0" in e for e in train_option_errors(zero))
    assert train_option_errors(dict(zero, lambda_rec=0.6)) == []
    assert train_option_errors(dict(zero, lambda_exp=None)) == []  # unset = the mode's default
