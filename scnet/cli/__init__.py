"""The ``scnet`` command line.

Each sub-module registers its sub-commands with ``register(subparsers)``:

* :mod:`scnet.cli.engine`   -- ``train``, ``predict``, ``denoise``
* :mod:`scnet.cli.tomo`     -- ``filter``, ``reconstruct``, ``simulate``, ``phantom``
* :mod:`scnet.cli.evaluate` -- ``fsc``, ``evaluate``, ``baseline``
* :mod:`scnet.cli.subtomo`  -- ``average`` (subtomogram averaging, the downstream measure)

Bad input (:class:`scnet.errors.SCNetInputError`) prints one clear line
on stderr and exits with status 2; nothing is written.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys

from ..errors import SCNetInputError

_MODULES = ("engine", "tomo", "evaluate", "subtomo")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = argparse.ArgumentParser(
        prog="scnet",
        description="SC-Net: self-supervised denoising of a single cryo-ET tomogram "
                    "(Yang, Zhang, Han, ICCV 2021). Run `scnet COMMAND --help` for each command.")
    parser.add_argument("--version", action="version", version=f"scnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _MODULES:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a sub-module not written yet
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        mod.register(sub)
    return parser


_NEGATIVE_LIST = re.compile(r"^-\d[\d.,eE+-]*$")


def join_negative_values(argv):
    """``--tilt-range -60,60`` -> ``--tilt-range=-60,60``: argparse takes a value that starts with '-'
    and is not a plain number for an option; a list of numbers after a long option is its value."""
    out = []
    for tok in argv:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE_LIST.match(tok) and "," in tok:
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


# options that bound a command's memory, in the order they are advised; each command is advised only those it has
MEMORY_OPTIONS = ("--tile-size", "--patch-size", "--batch-size", "--subvolume", "--thickness", "--box")


def memory_advice(parser: argparse.ArgumentParser, command: str) -> str:
    """The out-of-memory line of ``command``: the memory-bounding options it really has (from its parser)."""
    sub = parser._subparsers._group_actions[0].choices[command]
    has = {o for a in sub._actions for o in a.option_strings}
    opts = [o for o in MEMORY_OPTIONS if o in has]
    lower = f"smaller values of {', '.join(opts)} or " if opts else ""
    return f"not enough memory for these options and data; use {lower}a machine with more memory."


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(join_negative_values(sys.argv[1:] if argv is None else list(argv)))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        rc = args.func(args)
    except SCNetInputError as exc:
        print(f"scnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, permission changed during the run...: a clear line, not a traceback
        import errno
        import os
        if exc.errno == errno.ENOSPC and getattr(exc, "filename", None):  # name the folder that is full
            exc = OSError(errno.ENOSPC, f"No space left on {os.path.dirname(os.path.abspath(str(exc.filename)))}")
        print(f"scnet {args.command}: error: {exc.strerror or exc}"
              f"{' (' + str(exc.filename) + ')' if getattr(exc, 'filename', None) else ''}; nothing valid was "
              f"written there.", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"scnet {args.command}: error: {memory_advice(parser, args.command)} Nothing valid was written.",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"scnet {args.command}: interrupted; partial outputs were removed.", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
