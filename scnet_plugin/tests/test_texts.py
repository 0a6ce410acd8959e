"""What a user reads without running anything: labels, development status, help texts and link,
summaries' plurals, the protocol tree file, `make gui` without a display (no GUI needed)."""
import configparser
import json
import os
import re
import subprocess
import unittest

import pyworkflow
import pyworkflow.protocol.params as params
from pyworkflow.protocol import Protocol

import scnet_plugin
from scnet_plugin import Plugin
from scnet_plugin.protocols import protocol_base
import scnet_plugin.protocols as sp

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTOCOLS = [getattr(sp, n) for n in dir(sp) if n.startswith("ProtSCNet") and n != "ProtSCNetBase"]


class TestTexts(unittest.TestCase):
    """Labels, help, link, plurals, the tree file and the make targets a user reads."""

    def test_every_protocol_is_beta_and_labelled_with_the_method(self):
        self.assertEqual(len(PROTOCOLS), 9)
        for cls in PROTOCOLS:
            self.assertTrue(cls.isBeta(), cls)
            self.assertEqual(cls._devStatus, pyworkflow.BETA)
            label = cls.getClassLabel()
            self.assertTrue(label.startswith("SC-Net "), label)
            self.assertEqual(label, cls._label)
            self.assertLessEqual(len(label), 15, f"{label!r}: longer labels are cut in the tree at its default width")

    def test_every_form_parameter_has_help(self):
        missing = []
        for cls in PROTOCOLS:
            prot = cls()
            for name, param in prot._definition.iterAllParams():
                if isinstance(param, (params.Line, params.Group, params.LabelParam)) or not param.label.get():
                    continue
                if name in (params.USE_GPU, params.GPU_LIST, "numberOfThreads", "numberOfMpi", "hostName",
                            "runName", "runMode", "comment", "queueParams") or name.startswith("lambda"):
                    # (lambda*: the four loss weights of one form line; the line has the help)
                    continue
                if not param.help.get():
                    missing.append(f"{cls.__name__}.{name} ({param.label.get()!r})")
        self.assertFalse(missing, "no help: " + ", ".join(missing))

    def test_help_link_is_the_papers_doi(self):
        url = Plugin.getUrl()
        with open(os.path.join(os.path.dirname(scnet_plugin.__file__), "bibtex.py")) as fh:
            dois = re.findall(r"doi = \{([^}]+)\}", fh.read())
        self.assertEqual(url, f"https://doi.org/{dois[0]}")

    def test_summaries_count_in_singular_and_plural(self):
        self.assertEqual(protocol_base.ProtSCNetBase._count(1, "tomogram"), "1 tomogram")
        self.assertEqual(protocol_base.ProtSCNetBase._count(2, "tomogram"), "2 tomograms")
        self.assertEqual(protocol_base.ProtSCNetBase._count(0, "noisy tomogram"), "0 noisy tomograms")

    def test_protocols_conf_places_every_protocol_in_tomos_groups(self):
        cp = configparser.ConfigParser()
        cp.optionxform = str
        cp.read(os.path.join(os.path.dirname(scnet_plugin.__file__), "protocols.conf"))
        tree = json.loads(cp.get("PROTOCOLS", "Tomography"))
        found = set()

        def walk(nodes, path):
            for n in nodes:
                if n["tag"] == "protocol":
                    found.add(n["value"])
                else:
                    walk(n.get("children", []), path + [n["text"]])
        walk(tree, [])
        self.assertEqual(found, {c.__name__ for c in PROTOCOLS})
        self.assertLessEqual({n["text"] for n in tree}, {"Imports", "Tomograms"})  # tomo's own sections, no new one

    def test_make_gui_without_display_says_so(self):
        env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
        r = subprocess.run(["make", "-s", "-o", "envs", "gui"], cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no display", r.stdout)
        self.assertNotIn("Traceback", r.stdout + r.stderr)

    def test_make_demo_runs_the_honest_fsc_only_when_asked(self):
        for extra, fsc in (([], "halves"), (["FSC=independent"], "independent")):
            r = subprocess.run(["make", "-n", "-o", "envs", "demo", *extra], cwd=REPO, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"-m scnet_plugin.demo --output demo_output --fsc {fsc}", r.stdout)
        from scnet_plugin import demo
        self.assertEqual(demo.FSC_CHOICES[0], "halves")  # the demo's default

    def test_make_shell_runs_a_command_in_the_scipion_environment(self):
        r = subprocess.run(["make", "-s", "-o", "envs", "shell",
                            "CMD=python -c 'import os, pyworkflow; print(os.environ[\"SCIPION_DOMAIN\"], pyworkflow.__name__)'"],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip().splitlines()[-1], "pwem pyworkflow")


class TestOneDeclaration(unittest.TestCase):
    """Every form default is the engine's own (scnet.config), and the form builds exactly its options."""

    def _default(self, prot, name):
        return prot._definition.getParam(name).default.get()

    def test_train_form_defaults_are_the_engine_config(self):
        from scnet.config import TrainConfig
        from scnet_plugin.protocols.protocol_train import ENUM_FIELDS, FORM_FIELDS, LAMBDA_FIELDS
        d, prot = TrainConfig(), sp.ProtSCNetTrain()
        for attr, key in FORM_FIELDS.items():
            self.assertEqual(str(self._default(prot, attr)), str(getattr(d, key)), attr)
        for attr, (key, values) in ENUM_FIELDS.items():
            self.assertEqual(values[int(self._default(prot, attr))], getattr(d, key), attr)
        for attr, key in LAMBDA_FIELDS.items():
            self.assertIsNone(getattr(d, key))
            self.assertEqual(float(self._default(prot, attr)), -1.0, attr)  # -1 = the mode's default (None)
        # a fresh form gives the engine's config exactly (the device is the run's own choice)
        cfg = prot.trainConfig()
        cfg.pop("device")
        self.assertEqual({k: v for k, v in d.to_dict().items() if k in cfg}, cfg)
        covered = set(FORM_FIELDS.values()) | {k for k, _ in ENUM_FIELDS.values()} | set(LAMBDA_FIELDS.values())
        self.assertEqual(covered, set(cfg))

    def test_denoise_and_prepare_form_defaults_are_the_engine_config(self):
        from scnet.choices import RADIAL_TEXT, TTA_CHOICES
        from scnet.config import PredictConfig
        d, prot = PredictConfig(), sp.ProtSCNetDenoise()
        self.assertEqual(int(self._default(prot, "tileSize")), d.tile_size)
        self.assertEqual(int(self._default(prot, "overlap")), d.overlap)
        self.assertEqual(TTA_CHOICES[int(self._default(prot, "tta"))], d.tta)
        self.assertEqual(self._default(sp.ProtSCNetPrepareTomograms(), "radial"), RADIAL_TEXT)
