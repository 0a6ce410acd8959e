"""What the benchmark scripts share: number lists on the command line and the user-default
training config (``TrainConfig()``) with the patch clipped to the volume."""
from __future__ import annotations


def ints(text) -> list:
    """``"64,128,128"`` (or ``"64x128x128"``) -> ``[64, 128, 128]``."""
    return [int(x) for x in str(text).replace("x", ",").split(",") if x.strip()]


def user_config(shape, epochs: int = 0, iterations: int = 0, patch: int = 0, base=None, **overrides):
    """The training config a user gets (or ``base``, a TrainConfig read from a JSON file), with
    ``overrides`` (e.g. a network), a fixed budget only when ``epochs`` is set (to smoke-test a
    script), and the patch edge capped by the volume and rounded to the network's multiple."""
    from scnet.config import TrainConfig
    cfg = TrainConfig(**dict(base.to_dict() if base is not None else {}, **overrides))
    if epochs:
        cfg.epochs = epochs
    if iterations:
        cfg.iterations_per_epoch = iterations
    m = cfg.model_config().multiple()
    cfg.patch_size = max(m, min(patch or cfg.patch_size, min(shape)) // m * m)
    return cfg


def add_smoke_args(parser):
    """``--epochs`` / ``--iterations``: 0 = the user default (automatic stop); a fixed count only to
    smoke-test a script at a tiny size."""
    parser.add_argument("--epochs", type=int, default=0, help="0 = the user default (automatic stop); N = fixed "
                                                              "(only to smoke-test this script)")
    parser.add_argument("--iterations", type=int, default=0, help="iterations per epoch (0 = default)")


def parse(parser, argv):
    """Parse, and turn ``--shape Z,Y,X`` into a tuple of 3 ints."""
    args = parser.parse_args(argv)
    args.shape = tuple(ints(args.shape))
    if len(args.shape) != 3:
        parser.error("--shape needs Z,Y,X")
    return args
