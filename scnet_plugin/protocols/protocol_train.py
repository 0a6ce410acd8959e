"""scnet - train: train SC-Net on a noisy tomogram guided by its smoothed prior
(paper §4: volumetric blind spot eq. 2-3, losses eq. 2, 4-8; §5.1 training details).

Long (~410 lines) because the form declares every paper option with its help; the defaults and
help texts come from scnet.config, the rules from scnet.rules.
"""
import os
from dataclasses import fields
from enum import Enum

import pyworkflow.protocol.params as params
from pyworkflow.utils import makePath

from ..constants import (BLINDSPOT_RATIO_OF, CHECKPOINT_FILE, LOSS_LOG, MODEL_FILE, TRAIN_CONFIG, TRAIN_MODES,
                         TRAIN_SUMMARY)
from scnet.choices import DEFAULT_SELF_PRIOR, NETWORK_DEFAULTS, SELF_PRIORS
from scnet.config import TrainConfig, bounds_text, help_of, train_option_errors
from scnet.modelscan import init_model_errors, model_file_errors, model_file_network
from ..objects import SCNetModel, SetOfSCNetModels
from .protocol_base import ProtSCNetBase

MODE_PER_TOMO, MODE_ONE = 0, 1
_D = TrainConfig()  # every default of the form is the engine's (scnet.config), declared once
# form parameter -> TrainConfig field, for the plain-valued options (enums and loss weights: trainConfig)
FORM_FIELDS = {"maxMinutes": "max_minutes", "patchSize": "patch_size", "batchSize": "batch_size",
               "epochs": "epochs", "iterationsPerEpoch": "iterations_per_epoch", "minIterations": "min_iterations",
               "maxIterations": "max_iterations", "patience": "patience", "learningRate": "lr",
               "blindspotSize": "blindspot_size", "blindspotRatio": "blindspot_ratio",
               "useExpectancy": "use_expectancy", "baseWidth": "base_width", "networkDepth": "depth", "seed": "seed",
               "wedge": "wedge", "tiltRange": "tilt_range"}
ENUM_FIELDS = {"trainingMode": ("mode", TRAIN_MODES), "blindspotRatioOf": ("blindspot_ratio_of", BLINDSPOT_RATIO_OF)}
LAMBDA_FIELDS = {"lambdaRec": "lambda_rec", "lambdaSmooth": "lambda_smooth", "lambdaExp": "lambda_exp",
                 "lambdaReg": "lambda_reg"}


def _help(name):
    text = help_of(TrainConfig, name)
    accepted = bounds_text({f.name: f for f in fields(TrainConfig)}[name])
    return text[0].upper() + text[1:] + (f" Accepted: {accepted}." if accepted else ".")


class TrainOutputs(Enum):
    Model = SCNetModel
    Models = SetOfSCNetModels


class ProtSCNetTrain(ProtSCNetBase):
    """Trains SC-Net, self-supervised, on a single noisy tomogram: a 3D U-Net with an
    up-sampling block and the sparsity (Sobel gradient), expectancy and TV losses computed
    against the smoothed prior tomogram. No clean data needed. Modes: 'halves' (when the
    tomograms have even/odd half maps: the network maps one half to the other, whose noise is
    independent; the default when halves exist), 'slab' (one tomogram: each row along the
    tilt axis predicted from the rows beyond those that share its noise; the default
    without halves), 'single' (the paper: a volumetric blind spot) and 'split' (one
    tomogram's even rows mapped to its odd rows).
    Training stops by itself when the held-out validation loss stops improving.
    Continue (re-launch with 'Continue') resumes from the last checkpoint.
    """
    _label = "SC-Net train"
    _possibleOutputs = TrainOutputs

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputTomograms", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Noisy tomograms", help="Raw reconstructions (e.g. 'prepare tomograms' output Tomograms).")
        form.addParam("inputPriors", params.PointerParam, pointerClass="SetOfTomograms", allowsNull=True,
                      label="Prior (smoothed) tomograms (optional)",
                      help="Smoothed tomograms on the same grid, matched to the noisy ones by tsId ('SC-Net "
                           "prepare' output PriorTomograms: reconstructions of Topaz-filtered tilts, the paper's "
                           "prior). Empty, e.g. for tomograms imported with tomo's 'import tomograms': the "
                           "halves, slab and split modes need none, the single mode makes one from each tomogram ('Prior from').")
        form.addParam("priorFrom", params.EnumParam, choices=SELF_PRIORS, default=SELF_PRIORS.index(DEFAULT_SELF_PRIOR),
                      display=params.EnumParam.DISPLAY_HLIST, label="Prior from (without prior tomograms)",
                      help="Without prior tomograms, the 3D filter of each noisy tomogram that makes its prior: "
                           "topaz3d (the pretrained Topaz-Denoise 3D network), gaussian (1.5 voxels) or lowpass "
                           f"(0.3 x Nyquist). Default {DEFAULT_SELF_PRIOR}, by measurement (docs/benchmarks.md). "
                           "Not used with prior tomograms, nor in the halves mode with its default loss weights "
                           "(which use no prior).")
        form.addParam("trainMode", params.EnumParam, choices=["one model per tomogram", "one model for all"],
                      default=MODE_PER_TOMO, display=params.EnumParam.DISPLAY_HLIST, label="Models",
                      help="One model per tomogram (the paper: single-volume training), or one model trained "
                           "on one tomogram (below) and applied to the whole set by 'denoise'.")
        form.addParam("trainTsId", params.StringParam, default="", condition=f"trainMode=={MODE_ONE}",
                      label="Train on tsId", help="Tomogram to train on; empty = the first one.")
        form.addParam("initModel", params.PointerParam, pointerClass="SCNetModel", allowsNull=True,
                      label="Start from a trained model (optional)",
                      help="Start from the weights of this model (e.g. trained on another tomogram of the same "
                           "data set, or loaded with 'SC-Net model') instead of random ones, then train as "
                           "usual on these tomograms (fine-tuning). Its network must be this training's (same "
                           f"base width and depth; up-sampling block "
                           f"{'on' if NETWORK_DEFAULTS['upsampling_block'] else 'off'}). Empty = "
                           "train from scratch (the default). Ignored when 'Continue' resumes a checkpoint.")
        form.addSection(label="Training")
        form.addParam("trainingMode", params.EnumParam, choices=TRAIN_MODES, default=TRAIN_MODES.index(_D.mode),
                      display=params.EnumParam.DISPLAY_HLIST, label="Training mode",
                      help="auto: 'halves' when the noisy tomograms have even/odd half maps ('prepare tomograms' "
                           "with 'Reconstruct even/odd halves' = Yes), else 'slab'; the run log and the summary say "
                           "which. single: the paper's volumetric blind spot on one tomogram. halves: even->odd and "
                           "odd->even (Noise2Noise; the noise of the two halves is independent, while the noise of a "
                           "back-projection is correlated along the rays, which a voxel blind spot cannot hide). "
                           "split: the even and the odd rows along the tilt axis of ONE tomogram as the two halves "
                           "(only where the rows were never mixed by an interpolation; leaves a faint row texture). "
                           "slab: ONE tomogram, each row along the tilt axis predicted from the rows beyond a gap "
                           "(the rows that share its noise, measured on the tomogram: 0 for unmixed rows, 1 after "
                           "an interpolated alignment), so neither the rays' nor the interpolation's noise can be "
                           "copied; for tomograms without half maps.")
        form.addParam("wedge", params.BooleanParam, default=_D.wedge, label="Fill the missing wedge?",
                      condition=f"trainingMode!={TRAIN_MODES.index('single')} and "
                                f"trainingMode!={TRAIN_MODES.index('slab')}",
                      help=_help("wedge") + " Halves or split mode only.")
        form.addParam("tiltRange", params.StringParam, default=_D.tilt_range, label="Tilt range (min,max deg)",
                      condition="wedge", expertLevel=params.LEVEL_ADVANCED,
                      help="Empty: each tomogram's acquisition (angle min and max, as tomo's import and 'SC-Net "
                           "prepare' record them). Or MIN,MAX in degrees for all tomograms.")
        form.addParam("maxMinutes", params.FloatParam, default=_D.max_minutes, label="Time budget (minutes)",
                      help="Stop training after this many minutes per tomogram and keep the best model so far "
                           "(0 = no budget: stop when the validation loss has converged).")
        form.addParam("patchSize", params.IntParam, default=_D.patch_size, label="Patch size (voxels)",
                      help=_help("patch_size") + " Use the wizard for a memory estimate.")
        form.addParam("batchSize", params.IntParam, default=_D.batch_size, label="Batch size",
                      help=_help("batch_size"))
        form.addParam("epochs", params.IntParam, default=_D.epochs, label="Epochs (0 = until converged)",
                      help=_help("epochs"))
        form.addParam("iterationsPerEpoch", params.IntParam, default=_D.iterations_per_epoch,
                      label="Iterations per epoch", expertLevel=params.LEVEL_ADVANCED,
                      help=_help("iterations_per_epoch"))
        line = form.addLine("Automatic stop: iterations", expertLevel=params.LEVEL_ADVANCED,
                            help="Never before 'min', always at 'max'; stop after 'patience' validations without "
                                 "improvement of the smoothed validation loss.")
        line.addParam("minIterations", params.IntParam, default=_D.min_iterations, label="min",
                      help=_help("min_iterations"))
        line.addParam("maxIterations", params.IntParam, default=_D.max_iterations, label="max",
                      help=_help("max_iterations"))
        line.addParam("patience", params.IntParam, default=_D.patience, label="patience",
                      help=_help("patience"))
        form.addParam("learningRate", params.FloatParam, default=_D.lr, label="Learning rate",
                      expertLevel=params.LEVEL_ADVANCED, help=_help("lr"))
        form.addParam("blindspotSize", params.IntParam, default=_D.blindspot_size, label="Blind-spot block size n",
                      expertLevel=params.LEVEL_ADVANCED, help=_help("blindspot_size"))
        form.addParam("blindspotRatio", params.FloatParam, default=_D.blindspot_ratio, label="Blind-spot ratio",
                      expertLevel=params.LEVEL_ADVANCED, help=_help("blindspot_ratio"))
        form.addParam("blindspotRatioOf", params.EnumParam, choices=BLINDSPOT_RATIO_OF,
                      default=BLINDSPOT_RATIO_OF.index(_D.blindspot_ratio_of),
                      display=params.EnumParam.DISPLAY_HLIST, expertLevel=params.LEVEL_ADVANCED,
                      label="Blind-spot ratio counts",
                      help="replaced: the fraction of voxels replaced in a patch (paper §5.1). centres: the fraction "
                           "of voxels drawn as block centres (the authors' public code; with 3^3 blocks 10% centres "
                           "replace ~94% of the voxels).")
        form.addParam("useExpectancy", params.BooleanParam, default=_D.use_expectancy, label="Use expectancy loss (L_exp)?",
                      help="Yes: weights 0.6/0.1/0.2/0.01 (paper, with L_exp). No: 0.8/0.1/0/0.01.")
        line = form.addLine("Loss weights (-1 = the mode's default)", expertLevel=params.LEVEL_ADVANCED,
                            help="lambda1..lambda4 of eq. 8: L_rec, L_smooth, L_exp, L_reg. Defaults: single mode "
                                 "0.6/0.1/0.2/0.01 (the paper; 0.8/0.1/0/0.01 without L_exp); halves mode 0.6/0/0/0 "
                                 "(measured: the prior terms against the over-smoothed Topaz-2D prior cost about "
                                 "1.5 dB there). Set smooth/exp/reg to 0.1/0.2/0.01 for the paper's constraints.")
        for name, key in LAMBDA_FIELDS.items():  # -1 in the form = None in TrainConfig (the mode's default)
            line.addParam(name, params.FloatParam, default=-1.0 if getattr(_D, key) is None else getattr(_D, key),
                          label=key.split("_")[1], help=_help(key))
        form.addParam("baseWidth", params.IntParam, default=_D.base_width, label="Network base width",
                      expertLevel=params.LEVEL_ADVANCED, help=_help("base_width"))
        form.addParam("networkDepth", params.IntParam, default=_D.depth, label="Network depth",
                      expertLevel=params.LEVEL_ADVANCED,
                      help=_help("depth") + " A model trained with another depth can still denoise; to fine-tune "
                                            "it, set its depth here.")
        form.addParam("seed", params.IntParam, default=_D.seed, label="Random seed",
                      expertLevel=params.LEVEL_ADVANCED, help=_help("seed"))
        self._defineDeviceParams(form)
        form.addParallelSection(threads=1, mpi=0)

    # ------------------------------------------------------------------ helpers
    def _pairs(self):
        """(noisy tomogram, its prior or None) for each noisy tomogram."""
        priors = self._tomoByTsId(self.inputPriors.get()) if self.inputPriors.get() is not None else {}
        return [(t.clone(), priors.get(t.getTsId())) for t in self.inputTomograms.get().iterItems()]

    def _priorFor(self, tsId):
        priors = self.inputPriors.get()
        return priors.getItem("_tsId", tsId) if priors is not None else None

    def _trainIds(self):
        ids = self._tsIds(self.inputTomograms.get())
        if self.trainMode.get() == MODE_ONE:
            return [self.trainTsId.get() or ids[0]] if ids else []
        return ids

    @staticmethod
    def _halves(tomo):
        """(even, odd) half-map files of a tomogram, or None ('prepare tomograms' stores them odd, even)."""
        hm = tomo.getHalfMaps(asList=True) if tomo.hasHalfMaps() else []
        if len(hm) < 2 or not all(hm[:2]) or not all(os.path.exists(f) for f in hm[:2]):
            return None
        odd, even = hm[:2]
        return even, odd

    def _tiltRange(self, tomo):
        """'MIN,MAX' for the wedge: the form's, else the tomogram's (or its set's) acquisition, else ''."""
        if (self.tiltRange.get() or "").strip():
            return self.tiltRange.get().strip()
        for acq in (tomo.getAcquisition() if tomo is not None else None, self.inputTomograms.get().getAcquisition()):
            lo, hi = (acq.getAngleMin(), acq.getAngleMax()) if acq is not None else (None, None)
            if lo is not None and hi is not None and lo < hi:
                return f"{lo:g},{hi:g}"
        return ""

    def _priorFrom(self):
        return SELF_PRIORS[self.priorFrom.get()]

    def _modelDir(self, tsId):
        return self._getExtraPath(f"model_{tsId}")

    def trainConfig(self) -> dict:
        """TrainConfig of the engine (JSON keys = its dataclass fields)."""
        cfg = {key: getattr(self, attr).get() for attr, key in FORM_FIELDS.items()}
        cfg["max_minutes"] = float(cfg["max_minutes"] or 0)
        cfg["use_expectancy"] = bool(cfg["use_expectancy"])
        cfg["wedge"] = bool(cfg["wedge"])
        cfg["tilt_range"] = (cfg["tilt_range"] or "").strip()
        for attr, (key, values) in ENUM_FIELDS.items():
            cfg[key] = values[getattr(self, attr).get()]
        for attr, key in LAMBDA_FIELDS.items():
            v = getattr(self, attr).get()
            cfg[key] = None if v is None or v < 0 else v
        cfg["device"] = self.getDevice()
        return cfg

    # ------------------------------------------------------------------ steps
    def _insertAllSteps(self):
        deps = [self._insertFunctionStep(self.trainStep, tsId, needsGPU=self._gpuOn(),
                                         prerequisites=[]) for tsId in self._trainIds()]
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def trainStep(self, tsId):
        out = self._modelDir(tsId)
        makePath(out)
        noisy = self.inputTomograms.get().getItem("_tsId", tsId).getFileName()
        prior = self._priorFor(tsId)
        cfgPath = os.path.join(out, "scipion_train_config.json")
        cfg = self.trainConfig()
        if cfg["wedge"]:
            cfg["tilt_range"] = self._tiltRange(self.inputTomograms.get().getItem("_tsId", tsId))
            self.info(f"{tsId}: filling the missing wedge of the tilt range {cfg['tilt_range']} degrees")
        self._writeJson(cfgPath, cfg)
        args = ["train", "--noisy", noisy, "--output-dir", out, "--config", cfgPath]
        args += ["--prior", prior.getFileName()] if prior is not None else ["--prior-from", self._priorFrom()]
        halves = self._halves(self.inputTomograms.get().getItem("_tsId", tsId))
        if halves and TRAIN_MODES[self.trainingMode.get()] in ("auto", "halves"):
            args += ["--even", halves[0], "--odd", halves[1]]
        init = self.initModel.get()
        if os.path.exists(os.path.join(out, CHECKPOINT_FILE)):  # Scipion 'Continue': resume
            self.info(f"{tsId}: checkpoint found, resuming training")
            args.append("--resume")
        elif init is not None:  # a new training from the weights of a trained model (fine-tuning)
            args += ["--init-model", os.path.abspath(init.getPath())]
        self.runScnet(*args)

    def _newModel(self, tsId):
        d = self._modelDir(tsId)
        m = SCNetModel(path=os.path.join(d, MODEL_FILE), configPath=os.path.join(d, TRAIN_CONFIG),
                       lossLog=os.path.join(d, LOSS_LOG), tsId=tsId)
        m.setPatchSize(self.patchSize.get())
        m.setSamplingRate(self.inputTomograms.get().getSamplingRate())
        noisy = self.inputTomograms.get().getItem("_tsId", tsId)
        prior = self._priorFor(tsId)
        m.setTrainingInputs(noisy.getFileName() if noisy else None, prior.getFileName() if prior else None)
        return m

    def createOutputStep(self):
        for tsId in self._trainIds():
            if not os.path.exists(os.path.join(self._modelDir(tsId), MODEL_FILE)):
                raise RuntimeError(f"Training of {tsId} did not produce {MODEL_FILE}; see the run log.")
        if self.trainMode.get() == MODE_ONE:
            model = self._newModel(self._trainIds()[0])
            self._defineOutputs(**{TrainOutputs.Model.name: model})
            self._defineSourceRelation(self.inputTomograms, model)
        else:
            models = SetOfSCNetModels(filename=self._getPath("scnet_models.sqlite"))
            for tsId in self._trainIds():
                models.append(self._newModel(tsId))
            self._defineOutputs(**{TrainOutputs.Models.name: models})
            self._defineSourceRelation(self.inputTomograms, models)

    # ------------------------------------------------------------------ info
    def _validate(self):
        errors = self._validateEngine()
        noisy, prior = self.inputTomograms.get(), self.inputPriors.get()
        if noisy is None:
            return errors + ["Noisy tomograms are required."]
        nIds = self._tsIds(noisy)
        pIds = self._tsIds(prior) if prior is not None else []
        if not nIds:
            errors.append("The set of noisy tomograms is empty.")
        for label, ids in (("noisy", nIds), ("prior", pIds)):
            dup = self._duplicated(ids)
            if dup:
                errors.append(f"The {label} tomograms have repeated tsIds ({', '.join(map(str, dup))}); "
                              f"they cannot be matched.")
        missing = [i for i in nIds if i not in set(pIds)] if prior is not None else []
        if missing:
            errors.append(f"No prior tomogram for tsId {', '.join(map(str, missing))}: noisy and prior "
                          f"tomograms are matched by tsId (or leave the priors empty to make them from the "
                          f"tomograms).")
        if self.trainMode.get() == MODE_ONE and self.trainTsId.get() and self.trainTsId.get() not in nIds:
            errors.append(f"'Train on tsId' = {self.trainTsId.get()} is not among the noisy tomograms "
                          f"({', '.join(map(str, nIds))}).")
        srN, srP = noisy.getSamplingRate(), prior.getSamplingRate() if prior is not None else None
        if srN and srP and abs(srN - srP) > 1e-3 * srN:
            errors.append(f"Sampling rates differ: noisy {srN:.3f} A/px, prior {srP:.3f} A/px. "
                          f"Reconstruct both on the same grid.")
        for t, p in self._pairs():
            if p is None:
                continue
            if t.getDim() != p.getDim():
                errors.append(f"{t.getTsId()}: noisy {t.getDim()} and prior {p.getDim()} tomograms differ in "
                              f"size (x, y, z); reconstruct them with the same geometry.")
            elif min(t.getDim()) < 8:
                errors.append(f"{t.getTsId()}: tomogram {t.getDim()} is too small for SC-Net.")
        if TRAIN_MODES[self.trainingMode.get()] == "halves":
            lacking = [t.getTsId() for t, _ in self._pairs() if not self._halves(t)]
            if lacking:
                errors.append(f"Training mode 'halves' needs even/odd half maps, which tomograms "
                              f"{', '.join(map(str, lacking))} lack: run 'SC-Net prepare' with 'Reconstruct "
                              f"even/odd halves' = Yes, attach imported half tomograms with 'SC-Net halves', or "
                              f"choose mode 'auto' or 'single'.")
        cfg = self.trainConfig()
        cfg.pop("device", None)
        if cfg["wedge"]:
            mode = TRAIN_MODES[self.trainingMode.get()]
            noHalves = [t.getTsId() for t, _ in self._pairs() if not self._halves(t)]
            if mode in ("single", "slab") or (noHalves and mode != "split"):
                errors.append("'Fill the missing wedge' trains one half against the other: it needs the split "
                              "mode, or the halves mode and even/odd half maps" + (
                                  f" (tomograms {', '.join(map(str, noHalves))} have none)" if noHalves else "") + ".")
            noRange = [t.getTsId() for t, _ in self._pairs() if not self._tiltRange(t)]
            if noRange:
                errors.append(f"'Fill the missing wedge' needs the tilt range, which tomograms "
                              f"{', '.join(map(str, noRange))} do not record (acquisition angle min/max): give "
                              f"'Tilt range' as MIN,MAX degrees.")
            cfg["tilt_range"] = cfg["tilt_range"] or next((self._tiltRange(t) for t, _ in self._pairs()), "")
        errors += train_option_errors(cfg)  # the engine's declared bounds and rules (scnet.config), not re-typed
        init = self.initModel.get()
        if init is not None:
            path = init.getPath()
            errors += model_file_errors(path)  # checked without unpickling (scnet.modelscan)
            own = dict(NETWORK_DEFAULTS, base_width=self.baseWidth.get(), depth=self.networkDepth.get())
            errors += init_model_errors(model_file_network(path), own, path)  # read from model.pt, torch-free
        return errors

    def _summary(self):
        ep = self.epochs.get()
        lines = [f"Models: {['one model per tomogram', 'one model for all'][self.trainMode.get()]}; training mode "
                 f"{TRAIN_MODES[self.trainingMode.get()]}; patch {self.patchSize.get()}^3, batch {self.batchSize.get()}, "
                 f"{f'{ep} epochs' if ep else 'until converged'}, "
                 f"blind spot {self.blindspotSize.get()}^3 at {self.blindspotRatio.get():.0%} "
                 f"({BLINDSPOT_RATIO_OF[self.blindspotRatioOf.get()]}), "
                 f"{'with' if self.useExpectancy.get() else 'without'} L_exp, device {self.getDevice()}"
                 + (", filling the missing wedge." if self.wedge.get() else ".")]
        if self.inputPriors.get() is None and TRAIN_MODES[self.trainingMode.get()] == "single":
            lines.append(f"No prior tomograms: the single mode makes each prior from its tomogram "
                         f"({self._priorFrom()}).")
        if self.initModel.get() is not None:
            lines.append(f"Started from the weights of {self.initModel.get()} (fine-tuning).")
        for tsId in self._trainIds() if self.inputTomograms.get() is not None else []:
            last = self._lastLogRow(os.path.join(self._modelDir(tsId), LOSS_LOG))
            summ = os.path.join(self._modelDir(tsId), TRAIN_SUMMARY)
            if os.path.exists(summ):
                import json
                with open(summ) as fh:
                    s = json.load(fh)
                lines.append(f"{tsId}: {s.get('mode')} mode, {s.get('iterations')} iterations in "
                             f"{float(s.get('seconds') or 0) / 60:.1f} min; stopped because "
                             f"{s.get('stop_explanation')}.")
            elif last:
                lines.append(f"{tsId}: iteration {last.get('iteration')}, loss {float(last.get('loss') or 'nan'):.4g}, "
                             f"{float(last.get('seconds') or 0):.0f} s")
        return lines

    @staticmethod
    def _lastLogRow(path):
        import csv
        if not os.path.exists(path):
            return None
        with open(path) as fh:
            rows = list(csv.DictReader(fh))
        return rows[-1] if rows else None

    def _trainedMode(self):
        """The mode the engine trained in (auto resolved, from the first model's summary), else the form's."""
        for tsId in self._trainIds() if self.inputTomograms.get() is not None else []:
            summ = os.path.join(self._modelDir(tsId), TRAIN_SUMMARY)
            if os.path.exists(summ):
                return self._readJson(summ).get("mode") or TRAIN_MODES[self.trainingMode.get()]
        return TRAIN_MODES[self.trainingMode.get()]

    def _methods(self):
        ep, mode = self.epochs.get(), self._trainedMode()
        how = {"halves": "mapping each even/odd half tomogram to the other (Noise2Noise)",
               "split": "mapping the even rows along the tilt axis of each tomogram to its odd rows and back "
                        "(Noise2Noise within one tomogram)",
               "slab": "predicting each row along the tilt axis from the rows beyond those that share its noise "
                       "(a row-blind network; Noise2Self within one tomogram)"}.get(
            mode, f"a {self.blindspotSize.get()}^3 volumetric blind spot ({self.blindspotRatio.get():.0%} of the "
                  f"voxels {'replaced' if self.blindspotRatioOf.get() == 0 else 'as block centres'}) and the "
                  f"sparsity{', expectancy' if self.useExpectancy.get() else ''} and TV losses against the "
                  + ("smoothed prior tomogram" if self.inputPriors.get() is not None else
                     f"prior made from the tomogram by a 3D {self._priorFrom()} filter (no tilt series)"))
        return [f"SC-Net [Yang2021SCNet] was trained self-supervised on each noisy tomogram (mode {mode}) with "
                f"{self.patchSize.get()}^3 patches (batch {self.batchSize.get()}, "
                f"{f'{ep} epochs' if ep else 'until the validation loss converged'}, Adam lr {self.learningRate.get()}), "
                + how
                + (", starting from the weights of a previously trained SC-Net model" if self.initModel.get()
                   is not None else "")
                + ("; the missing wedge was filled by training on rotated sub-volumes with the wedge "
                   "re-applied to the input." if self.wedge.get() else ".")]

    def _citations(self):
        return ["Yang2021SCNet"]
