"""scnet - train: train SC-Net on a noisy tomogram guided by its smoothed prior
(paper §4: volumetric blind spot eq. 2-3, losses eq. 2, 4-8; §5.1 training details).

Long (~500 lines) because the form declares every paper option with its help; the defaults and
help texts come from scnet.config, the rules from scnet.rules.
"""
import os
from enum import Enum

import pyworkflow.protocol.params as params
from pyworkflow.utils import makePath

from ..constants import (BLINDSPOT_RATIO_OF, CHECKPOINT_FILE, LOSS_LOG, MODEL_FILE, TRAIN_CONFIG, TRAIN_MODES,
                         TRAIN_SUMMARY)
from scnet.choices import NETWORK_DEFAULTS
from scnet.config import PriorConfig, TrainConfig
from scnet.config_eval import GaussianConfig, LowpassConfig
from scnet.manifest import TomogramEntry, write_manifest
from scnet.rules import sampling_differs
from scnet.modelscan import init_model_errors, model_file_errors, model_file_network
from ..objects import SCNetModel, SetOfSCNetModels
from .declared import addDeclared
from .protocol_base import ProtSCNetBase

MODE_PER_TOMO, MODE_ONE = 0, 1
JOINT = "joint_model"  # extra/ folder of the model trained on several tomograms (a tsId folder is model_<tsId>)
# The optional prior is NOT filled in from the selected run when the form opens: pyworkflow's form puts
# the selected run's first output of a pointer's class into EVERY empty pointer (optional ones too)
# by the class NAME as written, so the noisy set landed in both fields and the single mode trained
# against the noisy volume itself. The name with a trailing space matches no output by name, while
# the object browser strips it (SetOfTomograms) and lists the same sets. _validate refuses a prior
# that is the noisy set whatever way it was chosen.
PRIOR_POINTER_CLASS = "SetOfTomograms "
# form parameter -> TrainConfig field: the names projects store; each parameter's class, default, choices, help
# and bounds are the field's declaration (scnet.config, added by declared.addDeclared)
FORM_FIELDS = {"trainingMode": "mode", "wedge": "wedge", "tiltRange": "tilt_range", "maxMinutes": "max_minutes",
               "patchSize": "patch_size", "batchSize": "batch_size", "epochs": "epochs",
               "iterationsPerEpoch": "iterations_per_epoch", "minIterations": "min_iterations",
               "maxIterations": "max_iterations", "patience": "patience", "learningRate": "lr",
               "blindspotSize": "blindspot_size", "blindspotRatio": "blindspot_ratio",
               "blindspotRatioOf": "blindspot_ratio_of", "useExpectancy": "use_expectancy", "lambdaRec": "lambda_rec",
               "lambdaSmooth": "lambda_smooth", "lambdaExp": "lambda_exp", "lambdaReg": "lambda_reg",
               "baseWidth": "base_width", "networkDepth": "depth", "seed": "seed"}


class TrainOutputs(Enum):
    Model = SCNetModel
    Models = SetOfSCNetModels


class ProtSCNetTrain(ProtSCNetBase):
    """Trains SC-Net, self-supervised, on a single noisy tomogram: a 3D U-Net with an
    up-sampling block and the sparsity (Sobel gradient), expectancy and TV losses computed
    against the smoothed prior tomogram. No clean data needed. Modes: 'halves' (when the
    tomograms have even/odd half maps: the network maps one half to the other, whose noise is
    independent; the default when halves exist), 'split' (one tomogram's even rows mapped to
    its odd rows: the default without halves where the rows' noise is unshared), 'slab' (one
    tomogram: each row along the tilt axis predicted from the rows beyond those that share
    its noise: the default without halves where rows share noise, e.g. after an interpolated
    alignment) and 'single' (the paper: a volumetric blind spot).
    One model per tomogram, or one model for the data set: trained on patches of all its
    tomograms (each normalised on its own), applied to every one by 'denoise'.
    Training stops by itself when the held-out validation loss stops improving.
    Continue (re-launch with 'Continue') resumes from the last checkpoint.
    """
    _label = "SC-Net train"
    _possibleOutputs = TrainOutputs

    def _defineParams(self, form):
        form.addSection(label="Input")
        form.addParam("inputTomograms", params.PointerParam, pointerClass="SetOfTomograms", important=True,
                      label="Noisy tomograms", help="Raw reconstructions (e.g. 'prepare tomograms' output Tomograms).")
        form.addParam("inputPriors", params.PointerParam, pointerClass=PRIOR_POINTER_CLASS, allowsNull=True,
                      label="Prior (smoothed) tomograms (optional)",
                      help="Smoothed tomograms on the same grid, matched to the noisy ones by tsId ('SC-Net "
                           "prepare' output PriorTomograms: reconstructions of Topaz-filtered tilts, the paper's "
                           "prior). Empty, e.g. for tomograms imported with tomo's 'import tomograms': the "
                           "halves, slab and split modes need none, the single mode makes one from each tomogram ('Prior from').")
        addDeclared(form, "priorFrom", PriorConfig, "prior_from", "Prior from (without prior tomograms)",
                    help=f"topaz3d: the pretrained Topaz-Denoise 3D network; gaussian: a 3D Gaussian of "
                         f"{GaussianConfig.sigma} voxels; lowpass: a low-pass at {LowpassConfig.cutoff} x "
                         f"Nyquist. Not used with prior tomograms, nor in the halves mode with its default "
                         f"loss weights.")
        form.addParam("trainMode", params.EnumParam, choices=["one model per tomogram", "one model for all"],
                      default=MODE_PER_TOMO, display=params.EnumParam.DISPLAY_HLIST, label="Models",
                      help="One model per tomogram (the paper: single-volume training), or ONE model trained "
                           "on the tomograms of the set (all, or the tsIds below) and applied to the whole set by "
                           "'denoise': one training for the data set instead of one per tomogram.")
        form.addParam("trainTsId", params.StringParam, default="", condition=f"trainMode=={MODE_ONE}",
                      label="Train on tsIds",
                      help="Empty = every tomogram of the set: patches drawn from all of them, each tomogram "
                           "normalised on its own, a validation region held out in each, the automatic stop on "
                           "their mean; every tomogram is checked (by tsId) before the training starts. Or the "
                           "tsIds to train on, separated by spaces or commas (one tsId: that tomogram alone). "
                           "Halves mode: every chosen tomogram needs its half maps (or none has).")
        form.addParam("initModel", params.PointerParam, pointerClass="SCNetModel", allowsNull=True,
                      label="Start from a trained model (optional)",
                      help="Start from the weights of this model (e.g. trained on another tomogram of the same "
                           "data set, or loaded with 'SC-Net model') instead of random ones, then train as "
                           "usual on these tomograms (fine-tuning). Its network must be this training's (same "
                           f"base width and depth; up-sampling block "
                           f"{'on' if NETWORK_DEFAULTS['upsampling_block'] else 'off'}). Empty = "
                           "train from scratch (the default). Ignored when 'Continue' resumes a checkpoint.")
        form.addSection(label="Training")

        def add(group, name, label, **kwargs):
            return addDeclared(group, name, TrainConfig, FORM_FIELDS[name], label, **kwargs)
        add(form, "trainingMode", "Training mode",
            help="With half maps from 'prepare tomograms' ('Reconstruct even/odd halves' = Yes) or 'SC-Net halves', "
                 "auto trains halves; the run log and the summary say which mode ran.")
        add(form, "wedge", "Fill the missing wedge?",
            condition=f"trainingMode!={TRAIN_MODES.index('single')} and trainingMode!={TRAIN_MODES.index('slab')}",
            help="Halves or split mode only.")
        add(form, "tiltRange", "Tilt range (min,max deg)", condition="wedge", expertLevel=params.LEVEL_ADVANCED,
            help="Empty: each tomogram's acquisition (angle min and max, as tomo's import and 'SC-Net prepare' "
                 "record them).")
        add(form, "maxMinutes", "Time budget (minutes)",
            help="Per training: each tomogram's, or the one training of 'one model for all'.")
        add(form, "patchSize", "Patch size (voxels)", help="Use the wizard for a memory estimate.")
        add(form, "batchSize", "Batch size")
        add(form, "epochs", "Epochs (0 = until converged)")
        add(form, "iterationsPerEpoch", "Iterations per epoch", expertLevel=params.LEVEL_ADVANCED)
        line = form.addLine("Automatic stop: iterations", expertLevel=params.LEVEL_ADVANCED,
                            help="Never before 'min', always at 'max'; stop after 'patience' validations without "
                                 "improvement of the smoothed validation loss.")
        for name, label in (("minIterations", "min"), ("maxIterations", "max"), ("patience", "patience")):
            add(line, name, label)
        add(form, "learningRate", "Learning rate", expertLevel=params.LEVEL_ADVANCED)
        add(form, "blindspotSize", "Blind-spot block size n", expertLevel=params.LEVEL_ADVANCED)
        add(form, "blindspotRatio", "Blind-spot ratio", expertLevel=params.LEVEL_ADVANCED)
        add(form, "blindspotRatioOf", "Blind-spot ratio counts", expertLevel=params.LEVEL_ADVANCED)
        add(form, "useExpectancy", "Use expectancy loss (L_exp)?")
        line = form.addLine("Loss weights (-1 = the mode's default)", expertLevel=params.LEVEL_ADVANCED,
                            help="lambda1..lambda4 of eq. 8: L_rec, L_smooth, L_exp, L_reg; -1 = the training "
                                 "mode's default (measured for halves: the prior terms against the over-smoothed "
                                 "Topaz-2D prior cost about 1.5 dB there).")
        for name in ("lambdaRec", "lambdaSmooth", "lambdaExp", "lambdaReg"):
            add(line, name, FORM_FIELDS[name].split("_")[1])
        add(form, "baseWidth", "Network base width", expertLevel=params.LEVEL_ADVANCED)
        add(form, "networkDepth", "Network depth", expertLevel=params.LEVEL_ADVANCED,
            help="A model trained with another depth can still denoise; to fine-tune it, set its depth here.")
        add(form, "seed", "Random seed", expertLevel=params.LEVEL_ADVANCED)
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

    def _chosenIds(self):
        """The tsIds typed in 'Train on tsIds' (separated by spaces or commas), in the order typed."""
        return [t for t in (self.trainTsId.get() or "").replace(",", " ").split() if t]

    def _trainIds(self):
        ids = self._tsIds(self.inputTomograms.get())
        if self.trainMode.get() == MODE_ONE:
            return self._chosenIds() or ids
        return ids

    def _joint(self):
        """One model trained on several tomograms (the engine's --tomograms)."""
        return self.trainMode.get() == MODE_ONE and len(self._trainIds()) > 1

    def _runKeys(self):
        """The trainings: one per tsId, or the joint one."""
        return [JOINT] if self._joint() else self._trainIds()

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
        return self._declared("priorFrom")

    def _modelDir(self, tsId):
        return self._getExtraPath(JOINT if tsId == JOINT else f"model_{tsId}")

    def trainConfig(self) -> dict:
        """TrainConfig of the engine (JSON keys = its dataclass fields), from the form's declared options."""
        cfg = {key: self._declared(name) for name, key in FORM_FIELDS.items()}
        cfg["device"] = self.getDevice()
        return cfg

    # ------------------------------------------------------------------ steps
    def _insertAllSteps(self):
        if self._joint():
            deps = [self._insertFunctionStep(self.trainJointStep, needsGPU=self._gpuOn(), prerequisites=[])]
        else:
            deps = [self._insertFunctionStep(self.trainStep, tsId, needsGPU=self._gpuOn(),
                                             prerequisites=[]) for tsId in self._trainIds()]
        self._insertFunctionStep(self.createOutputStep, needsGPU=False, prerequisites=deps)

    def _useHalves(self):
        return TRAIN_MODES[self.trainingMode.get()] in ("auto", "halves")

    def _resumeOrInit(self, out, name):
        """--resume when a checkpoint is there (Scipion 'Continue'), else --init-model when one is given."""
        if os.path.exists(os.path.join(out, CHECKPOINT_FILE)):
            self.info(f"{name}: checkpoint found, resuming training")
            return ["--resume"]
        init = self.initModel.get()
        return ["--init-model", os.path.abspath(init.getPath())] if init is not None else []

    def trainJointStep(self):
        """ONE model on the chosen tomograms: the engine's list of tomograms (name = tsId), checked by tsId."""
        out = self._modelDir(JOINT)
        makePath(out)
        tomos = self._tomoByTsId(self.inputTomograms.get())
        entries = []
        for tsId in self._trainIds():
            prior = self._priorFor(tsId)
            halves = self._halves(tomos[tsId]) if self._useHalves() else None
            entries.append(TomogramEntry(name=tsId, noisy=os.path.abspath(tomos[tsId].getFileName()),
                                         prior=os.path.abspath(prior.getFileName()) if prior is not None else None,
                                         even=halves[0] if halves else None, odd=halves[1] if halves else None))
        listPath = os.path.join(out, "tomograms.tsv")
        write_manifest(listPath, entries)
        cfg = self.trainConfig()
        if cfg["wedge"]:
            cfg["tilt_range"] = self._tiltRange(tomos[self._trainIds()[0]])
            self.info(f"filling the missing wedge of the tilt range {cfg['tilt_range']} degrees")
        cfgPath = os.path.join(out, "scipion_train_config.json")
        self._writeJson(cfgPath, cfg)
        self.info(f"one model on {self._count(len(entries), 'tomogram')}: {', '.join(e.name for e in entries)}")
        self.runScnet("train", "--tomograms", listPath, "--output-dir", out, "--config", cfgPath,
                      "--prior-from", self._priorFrom(), *self._resumeOrInit(out, "data set"))

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
        if halves and self._useHalves():
            args += ["--even", halves[0], "--odd", halves[1]]
        # Scipion 'Continue': resume; else a new training, from a trained model's weights when given (fine-tuning)
        self.runScnet(*(args + self._resumeOrInit(out, tsId)))

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

    def _newJointModel(self):
        """The model trained on several tomograms: no tsId of its own, the tsIds it was trained on."""
        d = self._modelDir(JOINT)
        m = SCNetModel(path=os.path.join(d, MODEL_FILE), configPath=os.path.join(d, TRAIN_CONFIG),
                       lossLog=os.path.join(d, LOSS_LOG))
        m.setPatchSize(self.patchSize.get())
        m.setSamplingRate(self.inputTomograms.get().getSamplingRate())
        m.setTrainedOn(self._trainIds())
        priors = {t: self._priorFor(t) for t in self._trainIds()}
        m.setPriorFiles({t: p.getFileName() for t, p in priors.items() if p is not None})
        return m

    def createOutputStep(self):
        for key in self._runKeys():
            if not os.path.exists(os.path.join(self._modelDir(key), MODEL_FILE)):
                what = "the data set" if key == JOINT else key
                raise RuntimeError(f"Training of {what} did not produce {MODEL_FILE}; see the run log.")
        if self.trainMode.get() == MODE_ONE:
            model = self._newJointModel() if self._joint() else self._newModel(self._trainIds()[0])
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
        same = self._priorIsNoisy(noisy, prior)
        if same:
            errors.append(f"The prior tomograms are the noisy tomograms themselves ({same}): choose the smoothed "
                          f"tomograms (e.g. 'SC-Net prepare' output PriorTomograms) or leave 'Prior (smoothed) "
                          f"tomograms' empty to make the prior from each tomogram.")
        missing = [i for i in nIds if i not in set(pIds)] if prior is not None else []
        if missing:
            errors.append(f"No prior tomogram for tsId {', '.join(map(str, missing))}: noisy and prior "
                          f"tomograms are matched by tsId (or leave the priors empty to make them from the "
                          f"tomograms).")
        unknown = [t for t in self._chosenIds() if t not in nIds] if self.trainMode.get() == MODE_ONE else []
        if unknown:
            errors.append(f"'Train on tsIds': {', '.join(unknown)} not among the noisy tomograms "
                          f"({', '.join(map(str, nIds))}).")
        errors += self._validateJoint() if not unknown and nIds else []
        srN, srP = noisy.getSamplingRate(), prior.getSamplingRate() if prior is not None else None
        if sampling_differs(srN, srP):
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
        errors += TrainConfig.rule_errors(cfg)  # the engine's rules across options (each one's: its validator)
        init = self.initModel.get()
        if init is not None:
            path = init.getPath()
            errors += model_file_errors(path)  # checked without unpickling (scnet.modelscan)
            own = dict(NETWORK_DEFAULTS, base_width=self.baseWidth.get(), depth=self.networkDepth.get())
            errors += init_model_errors(model_file_network(path), own, path)  # read from model.pt, torch-free
        return errors

    def _validateJoint(self):
        """One model on several tomograms: every chosen one with half maps or none (halves mode), one tilt range."""
        if not self._joint():
            return []
        errors, tomos = [], self._tomoByTsId(self.inputTomograms.get())
        ids = self._trainIds()
        lacking = [t for t in ids if not self._halves(tomos[t])]
        if self._useHalves() and lacking and len(lacking) < len(ids):
            errors.append(f"One model for all: tomograms {', '.join(lacking)} have no even/odd half maps while the "
                          f"others have; a data set trains in one mode. Give half maps to all (or to none), leave "
                          f"them out of 'Train on tsIds', or choose training mode 'single' or 'split'.")
        if self.wedge.get() and not (self.tiltRange.get() or "").strip():
            ranges = {t: self._tiltRange(tomos[t]) for t in ids}
            if len(set(ranges.values())) > 1:
                errors.append("One model for all fills one missing wedge, but the tomograms' tilt ranges differ ("
                              + ", ".join(f"{t}: {r or 'none'}" for t, r in ranges.items())
                              + "); give 'Tilt range' as MIN,MAX degrees.")
        return errors

    @staticmethod
    def _priorIsNoisy(noisy, prior):
        """'' when the prior set is not the noisy one; else which way it is (the same set, or the
        same files for some tsIds)."""
        if prior is None:
            return ""
        if prior is noisy or (noisy.getFileName() and prior.getFileName() == noisy.getFileName()):
            return "the same set"
        files = {t.getTsId(): os.path.realpath(t.getFileName()) for t in noisy.iterItems() if t.getFileName()}
        same = [p.getTsId() for p in prior.iterItems()
                if p.getFileName() and files.get(p.getTsId()) == os.path.realpath(p.getFileName())]
        return f"the same files for tsId {', '.join(map(str, same))}" if same else ""

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
        for tsId in self._runKeys() if self.inputTomograms.get() is not None else []:
            last = self._lastLogRow(os.path.join(self._modelDir(tsId), LOSS_LOG))
            summ = os.path.join(self._modelDir(tsId), TRAIN_SUMMARY)
            if tsId == JOINT:  # the tomograms the engine trained on, from its summary (else the chosen ones)
                s = self._readJson(summ) if os.path.exists(summ) else {}
                names = [t["name"] for t in s.get("tomograms", [])] or self._trainIds()
                tsId = f"One model trained on {self._count(len(names), 'tomogram')} ({', '.join(names)})"
            if os.path.exists(summ):
                s = self._readJson(summ)
                rows = (s.get("row_check") or {}).get("rho")
                lines.append(f"{tsId}: {s.get('mode')} mode"
                             + (f" (rows' noise correlation at lag 1: {rows[0]:.3f})" if rows else "")
                             + f", {s.get('iterations')} iterations in {float(s.get('seconds') or 0) / 60:.1f} min; "
                               f"stopped because {s.get('stop_explanation')}.")
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
        for tsId in self._runKeys() if self.inputTomograms.get() is not None else []:
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
        which = (f"as one model on {self._count(len(self._trainIds()), 'noisy tomogram')} together (patches from "
                 f"all, each tomogram normalised on its own)" if self._joint() else "on each noisy tomogram")
        return [f"SC-Net [Yang2021SCNet] was trained self-supervised {which} (mode {mode}) with "
                f"{self.patchSize.get()}^3 patches (batch {self.batchSize.get()}, "
                f"{f'{ep} epochs' if ep else 'until the validation loss converged'}, Adam lr {self.learningRate.get()}), "
                + how
                + (", starting from the weights of a previously trained SC-Net model" if self.initModel.get()
                   is not None else "")
                + ("; the missing wedge was filled by training on rotated sub-volumes with the wedge "
                   "re-applied to the input." if self.wedge.get() else ".")]

    def _citations(self):
        return ["Yang2021SCNet"]
