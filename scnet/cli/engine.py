"""``scnet train``, ``scnet predict``, ``scnet denoise`` (the SC-Net engine commands).

Every :class:`scnet.config.TrainConfig` field is an option (``--patch-size``,
``--lambda-rec`` ...), generated from the dataclass.  Precedence: defaults <
``--config FILE.json`` < explicit options.  ``--save-config FILE.json``
writes the resulting configuration.  Bad input raises
:class:`scnet.errors.SCNetInputError` (exit status 2) before any output.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields

from ..device import device_name
from ..errors import SCNetInputError
from .options import add_declared

def add_train_options(p: argparse.ArgumentParser) -> None:
    """Every TrainConfig field as an option, unset by default: defaults < --config JSON < explicit options."""
    from ..config import TrainConfig
    g = p.add_argument_group("training options (also settable in --config JSON; defaults shown)")
    add_declared(g, TrainConfig, unset=True, dest_prefix="cfg_")
    g.add_argument("--config", metavar="CFG.json", help="training options from a JSON file")
    g.add_argument("--save-config", metavar="CFG.json", help="write the resulting options as JSON and go on")


def config_from_args(args):
    from ..config import TrainConfig
    cfg = TrainConfig.from_json(args.config) if getattr(args, "config", None) else TrainConfig()
    for f in fields(TrainConfig):
        v = getattr(args, "cfg_" + f.name, None)
        if v is not None:
            setattr(cfg, f.name, v)
    cfg.device = device_name(cfg.device)  # 'auto' -> the concrete choice, recorded in train_config.json
    cfg.validate()
    return cfg


def _save_config(args, cfg) -> None:
    if getattr(args, "save_config", None):
        import json
        from ..outputs import write_text
        write_text(args.save_config, json.dumps(cfg.to_dict(), indent=2) + "\n")


def _guard_training(args, extra_outputs=(), extra_inputs=()) -> None:
    """Before any work: the training folder's files and the other outputs must not be inputs."""
    from ..outputs import guard
    from ..rules import TRAIN_OUTPUTS
    files = [os.path.join(args.output_dir, n) for n in TRAIN_OUTPUTS]
    guard(outputs=list(extra_outputs) + [getattr(args, "save_config", None)] + files,
          inputs=[args.noisy, args.prior, getattr(args, "config", None), getattr(args, "even", None),
                  getattr(args, "odd", None), getattr(args, "init_model", None), *extra_inputs],
          dirs=[args.output_dir])


def _read_inputs(args, cfg):
    """The noisy tomogram, its prior (given, or made from the tomogram by --prior-from when absent),
    its info, its halves (or None), a sentence on where the prior came from and the resolved mode
    (:func:`scnet.rows.resolve_mode`).  Each file is read and every voxel checked once, here."""
    from ..data import check_same_shape
    from ..io import distinct_halves, read_volume, same_grid
    from ..selfprior import check_method, describe_source, make_prior, prior_needed, STAND_IN
    if bool(getattr(args, "even", None)) != bool(getattr(args, "odd", None)):
        raise SCNetInputError("Give both --even and --odd (the half tomograms), or neither.")
    check_method(args.prior_from)
    noisy, info = read_volume(args.noisy)
    halves = None
    if getattr(args, "even", None):
        halves = []
        distinct_halves(args.even, args.odd)  # one file twice: refused before reading it
        for path in (args.even, args.odd):
            h, hinfo = read_volume(path)
            check_same_shape(noisy, h, args.noisy, path)  # voxels checked by read_volume
            same_grid(args.noisy, info, path, hinfo, "Half tomogram")
            halves.append(h)
        distinct_halves(args.even, args.odd, *halves)  # a copy of one half as the other learns the identity
    from ..rows import resolve_mode
    resolved = resolve_mode(cfg, noisy, halves is not None)
    if args.prior:
        prior, pinfo = read_volume(args.prior)
        check_same_shape(noisy, prior, args.noisy, args.prior)
        same_grid(args.noisy, info, args.prior, pinfo, "Prior")
        return noisy, prior, info, halves, f"given ({args.prior})", resolved
    used = prior_needed(cfg.weights(resolved[0]))
    method = args.prior_from if used else STAND_IN
    source = describe_source(method, used)
    if not args.quiet:
        print(f"[scnet {args.command}] no --prior: prior {source}", file=sys.stderr, flush=True)
    return noisy, make_prior(noisy, method, cfg.device), info, halves, source, resolved


def _train(args) -> int:
    from ..train import train_model
    if bool(args.noisy) == bool(args.tomograms):
        raise SCNetInputError("Give the tomogram to train on with --noisy N.mrc, or the tomograms of a data set with "
                              "--tomograms LIST.tsv (one model for all of them); not both.")
    if args.tomograms:
        return _train_dataset(args)
    cfg = config_from_args(args)
    _guard_training(args)
    noisy, prior, info, halves, source, resolved = _read_inputs(args, cfg)
    _save_config(args, cfg)
    path = train_model(noisy, prior, cfg, args.output_dir, resume=args.resume, progress=not args.quiet,
                       halves=halves, voxel_size=info.voxel_size, init_model=args.init_model, prior_source=source,
                       checked=True, resolved=resolved)
    print(path)
    return 0


def _train_dataset(args) -> int:
    """``scnet train --tomograms LIST.tsv``: one model on every tomogram of the list (:mod:`scnet.dataset`)."""
    from ..dataset import check_dataset
    from ..manifest import read_manifest
    from ..selfprior import check_method
    from ..train import train_dataset
    given = [f for f in ("prior", "even", "odd") if getattr(args, f, None)]
    if given:
        raise SCNetInputError(f"--tomograms: give each tomogram's files as columns of {args.tomograms} (name, noisy, "
                              f"prior, even, odd), not --{', --'.join(given)}.")
    cfg = config_from_args(args)
    check_method(args.prior_from)
    entries = read_manifest(args.tomograms)
    _guard_training(args, extra_inputs=[args.tomograms] + [f for e in entries for f in e.files()])
    say = None if args.quiet else (lambda m: print(f"[scnet train] {m}", file=sys.stderr, flush=True))
    plan = check_dataset(entries, cfg, say)  # every tomogram, by name, before any output
    _save_config(args, cfg)
    path = train_dataset(entries, cfg, args.output_dir, resume=args.resume, progress=not args.quiet,
                         prior_from=args.prior_from, plan=plan, init_model=args.init_model)
    print(path)
    return 0


def _predict_cfg(args, device):
    from ..device import resolve_precision
    from ..config import PredictConfig
    cfg = PredictConfig.from_args(args, device=device_name(device), progress=not args.quiet)
    resolve_precision(cfg.device.split(",")[0], cfg.precision)  # fp16 without CUDA: an error before any work
    return cfg


def _predict(args) -> int:
    from ..io import distinct_halves, read_info, same_grid
    from ..outputs import guard
    from ..predict import predict_file
    cfg = _predict_cfg(args, args.device)  # a clear error on a bad or absent device before any work
    halves = list(args.halves) if args.halves else None
    guard(outputs=[args.output], inputs=[args.model, args.input, args.stats_from] + (halves or []))
    info = read_info(args.input)
    if halves:
        distinct_halves(*halves, what="--halves")
    for h in halves or []:
        same_grid(args.input, info, h, read_info(h), "--halves")
    if args.stats_from:
        same_grid(args.input, info, args.stats_from, read_info(args.stats_from), "--stats-from")
    # the model is loaded and its voxel size checked once, in predict_file, before any output
    predict_file(args.model, args.input, args.output, cfg, force=args.force, halves=halves,
                 stats_from=args.stats_from)
    print(args.output)
    return 0


def _denoise(args) -> int:
    """``scnet denoise`` = :func:`scnet.denoise.denoise` on the inputs read (and checked) once here."""
    from ..denoise import denoise
    cfg = config_from_args(args)
    pcfg = _predict_cfg(args, cfg.device)  # tiling options checked before the training, not after
    _guard_training(args, extra_outputs=[args.output])
    noisy, prior, info, halves, source, resolved = _read_inputs(args, cfg)
    _save_config(args, cfg)
    denoise(noisy, prior, cfg, pcfg, args.output_dir, progress=not args.quiet, halves=halves,
            init_model=args.init_model, resume=args.resume, output=args.output, voxel_size=info.voxel_size,
            origin=info.origin, prior_source=source, checked=True, resolved=resolved)
    print(args.output)
    return 0


def _predict_options(p, device=True):
    from ..config import PredictConfig
    add_declared(p, PredictConfig, names=("tile_size", "overlap", "tta", "precision") + (("device",) if device else ()))


def _init_option(p) -> None:
    p.add_argument("--init-model", metavar="M.pt",
                   help="start from the weights of a trained model.pt (e.g. trained on another tomogram of the "
                        "same data set) instead of random ones, then train as usual (fine-tuning); the network "
                        "options must be the model's; ignored by --resume")


def _prior_options(p) -> None:
    p.add_argument("--prior", metavar="P.mrc",
                   help="smoothed prior tomogram (MRC, same shape), e.g. the reconstruction of Topaz-filtered tilts "
                        "(`scnet filter` + `scnet reconstruct`); absent = made from NOISY by --prior-from")
    from ..config import PriorConfig
    add_declared(p, PriorConfig)


def _halves_options(p) -> None:
    p.add_argument("--even", metavar="E.mrc", help="even-tilt half tomogram (same shape): enables the halves mode")
    p.add_argument("--odd", metavar="O.mrc", help="odd-tilt half tomogram (same shape)")


def register(sub) -> None:
    t = sub.add_parser(
        "train", help="train SC-Net on one noisy tomogram (and its smoothed prior or even/odd halves), or one "
                      "model on the tomograms of a data set (--tomograms)",
        description="Train SC-Net (ICCV 2021) on ONE tomogram. NOISY is the reconstruction from the raw tilts, "
                    "PRIOR the reconstruction from filtered (e.g. Topaz-denoised) tilts, same shape; without "
                    "--prior one is made from NOISY (--prior-from). --even/--odd: its half tomograms. Or ONE model "
                    "on several tomograms: --tomograms LIST.tsv (a header line 'name<TAB>noisy<TAB>prior<TAB>even"
                    "<TAB>odd', then one tomogram per line; '-' = none): patches from all, each normalised on its "
                    "own, a validation region in each, every tomogram checked by name before any work; halves for "
                    "every tomogram or none. Writes OUTPUT_DIR/model.pt, checkpoint.pt (every epoch, for --resume), "
                    "loss_log.csv and train_config.json. Progress and ETA go to stderr.",
        epilog="examples: scnet train --noisy rec.mrc --prior rec_topaz.mrc --output-dir run1 --epochs 15;  "
               "scnet train --tomograms tomograms.tsv --output-dir joint")
    t.add_argument("--noisy", metavar="N.mrc", help="noisy tomogram (MRC)")
    t.add_argument("--tomograms", metavar="LIST.tsv",
                   help="instead of --noisy: the tomograms of a data set, one model for all (columns name, noisy "
                        "and optionally prior, even, odd; paths relative to the list); --prior-from makes the "
                        "missing priors")
    _prior_options(t)
    t.add_argument("--output-dir", required=True, metavar="DIR", help="folder for model.pt and logs")
    _halves_options(t)
    t.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    _init_option(t)
    t.add_argument("--quiet", action="store_true", help="no progress lines")
    add_train_options(t)
    t.set_defaults(func=_train)

    p = sub.add_parser(
        "predict", help="denoise a tomogram with a trained SC-Net model",
        description="Denoise IN.mrc with DIR/model.pt by overlapping tiles (cosine-blended, bounded memory). "
                    "OUT.mrc is float32 in the input's intensity scale with its voxel size and origin.",
        epilog="example: scnet predict --model run1/model.pt --input rec.mrc --output rec_scnet.mrc")
    p.add_argument("--model", required=True, metavar="DIR/model.pt")
    p.add_argument("--input", required=True, metavar="IN.mrc")
    p.add_argument("--output", required=True, metavar="OUT.mrc")
    p.add_argument("--halves", nargs=2, metavar=("E.mrc", "O.mrc"),
                   help="the even/odd half tomograms of IN: a model trained in the halves mode then writes the "
                        "mean of its predictions of the two halves (it was trained at their noise level); other "
                        "models ignore them")
    p.add_argument("--stats-from", metavar="FULL.mrc",
                   help="a model trained on a data set normalises IN by its own statistics; when IN is a half map, "
                        "give its full tomogram here (the statistics the training used); other models ignore it")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--force", action="store_true",
                   help="apply the model even if it was trained at another voxel size (warning instead of error)")
    _predict_options(p)
    p.set_defaults(func=_predict)

    d = sub.add_parser(
        "denoise", help="train on NOISY (+ PRIOR, halves), then denoise NOISY (train + predict)",
        description="Train SC-Net on NOISY (with PRIOR, or one made from NOISY; as `scnet train`, files in "
                    "--output-dir), then write "
                    "the denoised NOISY to --output (as `scnet predict`).",
        epilog="example: scnet denoise --noisy rec.mrc --prior rec_topaz.mrc --output den.mrc --output-dir run1")
    d.add_argument("--noisy", required=True, metavar="N.mrc")
    _prior_options(d)
    d.add_argument("--output", required=True, metavar="OUT.mrc")
    d.add_argument("--output-dir", required=True, metavar="DIR")
    _halves_options(d)
    d.add_argument("--resume", action="store_true", help="continue training from DIR/checkpoint.pt")
    _init_option(d)
    d.add_argument("--quiet", action="store_true", help="no progress lines")
    _predict_options(d, device=False)
    add_train_options(d)
    d.set_defaults(func=_denoise)
