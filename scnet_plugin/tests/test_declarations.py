"""Every protocol form is walked: each parameter that is an engine option is built from its declaration
(scnet.declare) -- same default, choices and help, and the engine's check refuses a value outside its
bounds -- and each other parameter is one of the plugin's own choices, listed with its reason.
No Scipion project needed."""
import unittest

import pyworkflow.protocol.params as params

import scnet_plugin.protocols as sp
from scnet.config import TrainConfig
from scnet.declare import describe, field_of, form_unset, just_outside, kind
from scnet_plugin.protocols.declared import declaredParams, engineValue, formDefault

PROTOCOLS = [getattr(sp, n) for n in dir(sp) if n.startswith("ProtSCNet") and n != "ProtSCNetBase"]

# the plugin's own choices (not engine options), and why
PLUGIN_ONLY = {
    "ProtSCNetDenoise.denoiseHalves": "which files the protocol denoises",
    "ProtSCNetEvaluate.labels": "names of the input sets in the table",
    "ProtSCNetEvaluate.groundTruthFile": "an input file",
    "ProtSCNetEvaluate.baselines": "which engine baselines the protocol runs",
    "ProtSCNetFscEo.measure": "which FSC the protocol computes (given halves or independent networks)",
    "ProtSCNetFscEo.label1": "a curve's name", "ProtSCNetFscEo.label2": "a curve's name",
    "ProtSCNetImportAlignment.filesPath": "an input folder",
    "ProtSCNetImportAlignment.filesPattern": "which files of it the protocol imports",
    "ProtSCNetLoadModel.modelFile": "an input file",
    "ProtSCNetPrepareTomograms.rotateImages": "how the protocol converts tilt images before the engine",
    "ProtSCNetPrepareTomograms.doEvenOdd": "which reconstructions the protocol runs",
    "ProtSCNetSimulate.source": "which input the protocol reads",
    "ProtSCNetTrain.trainMode": "how many engine runs (one model per tomogram or one for all)",
    "ProtSCNetTrain.trainTsId": "which tomogram the protocol trains on",
}
GENERAL = {params.USE_GPU, params.GPU_LIST, "numberOfThreads", "numberOfMpi", "hostName", "runName", "runMode",
           "comment", "queueParams", "_useQueue", "_queueParams", "_prerequisites"}


def _outside(f):
    """Form values just outside each declared bound (the form's 'unset' value is no such value)."""
    return [v if v != form_unset(f) else v - 1 for v in just_outside(f, choices=False)]


def differences():
    diffs = []
    for cls in PROTOCOLS:
        prot = cls()
        declared = {n: (c, f) for n, (_, c, f) in declaredParams(prot).items()}
        for name, param in prot._definition.iterAllParams():
            where = f"{cls.__name__}.{name}"
            if isinstance(param, (params.PointerParam, params.MultiPointerParam, params.Line, params.Group,
                                  params.LabelParam)) or name in GENERAL:
                continue
            if name not in declared:
                if where not in PLUGIN_ONLY:
                    diffs.append(f"{where}: not declared (default {param.default.get()!r})")
                continue
            config, fieldName = declared[name]
            f = field_of(config, fieldName)
            value = prot.getAttributeValue(name)  # the default, as the form's type holds it
            if value != formDefault(f):
                diffs.append(f"{where}: default {value!r} != declared {formDefault(f)!r}")
            choices = f.metadata.get("choices")
            if choices and list(param.choices) != [str(c) for c in choices]:
                diffs.append(f"{where}: choices {param.choices} != declared {choices}")
            if isinstance(param, params.EnumParam) != bool(choices):
                diffs.append(f"{where}: {type(param).__name__} for {'choices' if choices else kind(f)}")
            if describe(f)[1:] not in param.help.get():
                diffs.append(f"{where}: help is not the declared one")
            if param.validate(formDefault(f)):
                diffs.append(f"{where}: the default is refused: {param.validate(formDefault(f))}")
            for v in _outside(f):
                if not any(f"{fieldName}=" in e for e in param.validate(v)):
                    diffs.append(f"{where}: {v!r} outside the declared bounds is accepted")
    return diffs


class TestFormsAreTheDeclarations(unittest.TestCase):
    def test_every_form_parameter_is_its_declaration_or_the_plugins_own(self):
        self.assertEqual(differences(), [])

    def test_a_fresh_train_form_is_the_engines_training_config(self):
        """A fresh train form gives the engine's defaults for every option it shows (the device is the run's
        own choice; the others keep the engine's defaults)."""
        from scnet_plugin.protocols.protocol_train import FORM_FIELDS
        cfg = sp.ProtSCNetTrain().trainConfig()
        cfg.pop("device")
        self.assertEqual(set(cfg), set(FORM_FIELDS.values()))
        self.assertEqual(cfg, {k: v for k, v in TrainConfig().to_dict().items() if k in cfg})

    def test_the_demo_options_are_their_declarations(self):
        from scnet.cli.options import differences as cliDifferences
        from scnet_plugin import demo
        self.assertEqual(cliDifferences(demo.build_parser(), "demo", own=("--fsc", "--output", "--project")), [])

    def test_form_values_become_the_engines(self):
        from scnet.config_tomo import SimulationConfig
        f = field_of(SimulationConfig, "thickness")
        self.assertIsNone(engineValue(f, 0))  # the form's 0 = unset
        self.assertEqual(engineValue(f, 12), 12)
        prot = sp.ProtSCNetSimulate()
        self.assertEqual(prot._declaredArgs("sigma", "thickness", "gaussianSigma", "backend"),
                         ["--sigma", 15.0, "--backend", "builtin"])
        prot.thickness.set(40)
        prot.gaussianSigma.set(0.5)
        self.assertEqual(prot._declaredArgs("thickness", "gaussianSigma"), ["--thickness", 40, "--gaussian-sigma", 0.5])
        self.assertEqual(sp.ProtSCNetDenoise()._declaredArgs("tta"), ["--tta", 8])

    def test_bad_values_are_refused_by_validate_without_inputs(self):
        prot = sp.ProtSCNetSimulate()
        prot.tiltRange.set(100.0)
        prot.sigma.set(-1.0)
        errors = "\n".join(prot.validate())
        self.assertIn("tilt_range=100.0: must be in (0, 90] deg", errors)
        self.assertIn("sigma=-1.0: must be >= 0", errors)

    def test_a_fresh_prepare_form_runs_the_engines_defaults(self):
        """The prepare steps' filter and reconstruct commands, from a fresh form, parse into the declared
        configs (device and the step's own subset/voxel size aside); a set value reaches its flag."""
        from scnet.cli import build_parser
        from scnet.config_tomo import FilterConfig, ReconstructConfig
        prot = sp.ProtSCNetPrepareTomograms()
        parser = build_parser()
        filt = prot._declaredArgs("priorFilter", "topazModel", "gaussianSigma", "lowpassCutoff")
        args = parser.parse_args(["filter", "in.mrcs", "out.mrcs"] + [str(a) for a in filt])
        self.assertEqual(FilterConfig.from_args(args), FilterConfig())
        rec = prot._declaredArgs("backend", "radial", "thickness")
        args = parser.parse_args(["reconstruct", "in.mrcs", "out.mrc", "--angles", "a.tlt"] + [str(a) for a in rec])
        self.assertEqual(ReconstructConfig.from_args(args), ReconstructConfig())
        prot.thickness.set(40)
        self.assertEqual(prot._declaredArgs("thickness"), ["--thickness", 40])
        self.assertTrue(any("bin=0" in e for e in prot._definition.getParam("binning").validate(0)))
