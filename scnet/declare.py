"""How a stage option is declared once: its default, bounds, unit, choices and help text.

Every stage has one config dataclass whose fields are declared with :func:`opt`:
:mod:`scnet.config` (training, prediction), :mod:`scnet.config_tomo` (filter, reconstruct, phantom,
simulate) and :mod:`scnet.config_eval` (fsc, evaluate, baselines, average).  The ``scnet`` command
line (:func:`scnet.cli.options.add_declared`) and the Scipion plugin's forms
(``ProtSCNetBase._addDeclared``) are built from these fields, and :meth:`Options.validate` checks
them with one loop (:func:`option_errors`) plus each stage's few rules across fields
(``cross_errors``).  ``tests/test_declarations.py`` and the plugin's form test walk every parser
and form and fail on any default, bound or choice that differs from its declaration.

Torch- and numpy-free on purpose: the Scipion environment imports it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import field, fields
from typing import Callable, Dict, List, Optional

from . import rules
from .device import AUTO, DEVICE_HELP
from .errors import SCNetInputError


def opt(default, help_text: str, *, lo=None, hi=None, lo_open: bool = False, hi_open: bool = False,
        choices=None, unit: str = "", hint: str = "", check: Optional[Callable] = None, unset=None):
    """A config field: its default, the one help text the CLI and the forms show, its bounds
    (``lo``/``hi``, open or closed) or ``choices``, its ``unit`` (shown after the help and in form
    labels), ``hint`` (ends the message of a value outside the bounds) and ``check(value) -> [reasons]``
    for a text value (``Z,Y,X``, ``R1,R2`` ...).  ``unset``: what a form shows for None (an
    Optional field): -1 for numbers unless given, the empty text for text."""
    return field(default=default, metadata={"help": help_text, "lo": lo, "hi": hi, "lo_open": lo_open,
                                            "hi_open": hi_open, "choices": choices, "unit": unit, "hint": hint,
                                            "check": check, "unset": unset})


def device_opt():
    """The ``device`` field of every stage that runs torch, declared once: ``auto`` (the first GPU if
    any, else the CPU; the CLI records the concrete choice), ``cpu``, ``cuda:N`` or a list."""
    return opt(AUTO, DEVICE_HELP)


def seed_opt(default: int, help_text: str):
    """A random seed field: numpy and torch seeds are unsigned (``0..rules.SEED_MAX``)."""
    return opt(default, help_text, lo=0, hi=rules.SEED_MAX)


def field_of(cls, name: str):
    """The dataclass field ``name`` of a config class (KeyError names the class)."""
    by_name = {f.name: f for f in fields(cls)}
    if name not in by_name:
        raise KeyError(f"{cls.__name__} declares no option {name!r}")
    return by_name[name]


def type_name(f) -> str:
    """``'int'``, ``'Optional[float]'`` ... of a field (annotations are strings here)."""
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def kind(f) -> str:
    """The value kind of a field: ``bool``, ``int``, ``float`` or ``str``."""
    t = type_name(f)
    for k in ("bool", "float", "int"):
        if k in t:
            return k
    return "str"


def flag(name: str) -> str:
    """The command-line flag of a field: ``tile_size`` -> ``--tile-size`` (CLI and plugin alike)."""
    return "--" + name.replace("_", "-")


def bounds_text(f) -> str:
    """``in [0, 1)``, ``>= 1``, ``in 1..5``, ``one of a, b``: what a field accepts, from its metadata."""
    m = f.metadata
    if m.get("choices"):
        return "one of " + ", ".join(map(str, m["choices"]))
    lo, hi = m.get("lo"), m.get("hi")
    whole = kind(f) == "int"

    def num(x):
        return str(int(x)) if whole else f"{x:g}"
    if lo is not None and hi is not None:
        if whole and not m["lo_open"] and not m["hi_open"]:
            return f"in {num(lo)}..{num(hi)}"
        return f"in {'(' if m['lo_open'] else '['}{num(lo)}, {num(hi)}{')' if m['hi_open'] else ']'}"
    if lo is not None:
        return f"{'>' if m['lo_open'] else '>='} {num(lo)}"
    if hi is not None:
        return f"{'<' if m['hi_open'] else '<='} {num(hi)}"
    return ""


def just_outside(f, choices: bool = True) -> list:
    """Values just outside each declared bound (and, with ``choices``, outside the choices) of field ``f``,
    and a text its ``check`` refuses: what the declaration tests feed the CLI, the configs and the forms."""
    m, out = f.metadata, []
    if choices and m.get("choices"):
        out.append(99 if kind(f) == "int" else "no-such-choice")
    if m.get("lo") is not None:
        out.append(m["lo"] if m["lo_open"] else m["lo"] - 1)
    if m.get("hi") is not None:
        out.append(m["hi"] if m["hi_open"] else m["hi"] + 1)
    if m.get("check"):
        out.append("1,2")
    return out


def describe(f) -> str:
    """The help of a field as the CLI and the forms show it: text, then accepted values and unit
    (``...; in (0, 90] deg``)."""
    m = f.metadata
    accepted = " ".join(t for t in (bounds_text(f), m.get("unit")) if t)
    return m.get("help", f.name) + (f"; {accepted}" if accepted else "")


def help_of(cls, name: str) -> str:
    """The declared help text of field ``name`` of a config dataclass."""
    return field_of(cls, name).metadata.get("help", name)


def defaults(cls) -> dict:
    """Field name -> declared default of a config dataclass."""
    return {f.name: f.default for f in fields(cls)}


def form_unset(f):
    """What a form shows for None in an Optional field (see :func:`opt`)."""
    u = f.metadata.get("unset")
    if u is not None:
        return u
    return "" if kind(f) == "str" else -1


def option_errors(cls, opts: dict, label: str = "Option", flags: bool = False):
    """One loop over the fields' metadata: type, choices, bounds and ``check`` of each option in
    ``opts`` (absent or None = unset, not checked).  Messages name the field (``sigma=-1``), with
    ``flags`` also its command-line flag (``sigma=-1 (--sigma)``).  Returns (messages, names of the failed options)."""
    errors, failed = [], set()
    for f in fields(cls):
        if f.name not in opts or opts[f.name] is None:
            continue
        v, k, m = opts[f.name], kind(f), f.metadata

        def bad(why):
            errors.append(f"{label} {f.name}={v!r}{' (' + flag(f.name) + ')' if flags else ''}: {why}.")
            failed.add(f.name)
        if k == "bool":
            if not isinstance(v, bool):
                bad("must be true or false")
            continue
        if k == "float" and not rules.is_number(v):
            bad("must be a finite number")
            continue
        if k == "int" and not rules.is_int(v):
            bad("must be an integer")
            continue
        if k == "str" and not isinstance(v, str):
            bad("must be a text")
            continue
        if m.get("choices") and v not in m["choices"]:
            bad(f"must be {bounds_text(f)}")
            continue
        lo, hi = m.get("lo"), m.get("hi")
        if (lo is not None and (v < lo or (m["lo_open"] and v == lo))) or \
                (hi is not None and (v > hi or (m["hi_open"] and v == hi))):
            bad(f"must be {bounds_text(f)}" + (f" {m['unit']}" if m.get("unit") else "")
                + (f" ({m['hint']})" if m.get("hint") else ""))
            continue
        for why in (m["check"](v) if m.get("check") else []):
            bad(why)
    return errors, failed


def coerce(f, v, source: str):
    """A JSON value for field ``f`` as its declared type (``"1"`` -> 1, ``"true"`` -> True ...)."""
    t = type_name(f)
    try:
        if v is None:
            if "Optional" in t:
                return None
            raise TypeError
        if kind(f) == "bool":
            if isinstance(v, bool):
                return v
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0", "yes", "no"):
                return v.lower() in ("true", "1", "yes")
            raise TypeError
        if kind(f) == "int":
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise TypeError
            return int(v)
        if kind(f) == "float":
            return float(v)
        return str(v)
    except (TypeError, ValueError):
        raise SCNetInputError(f"{source}: option {f.name!r} has an invalid value {v!r} (expected {t}).") from None


class Options:
    """Methods every stage's config dataclass shares.  ``LABEL`` starts each message ("Filter option
    sigma=-1: must be >= 0."); a stage with rules across fields overrides :meth:`cross_errors`."""

    LABEL = "Option"

    @classmethod
    def cross_errors(cls, opts: Dict[str, object]) -> List[str]:
        """Rules across fields, on options that passed their own checks (absent = not checked)."""
        return []

    @classmethod
    def errors(cls, opts: Dict[str, object], flags: bool = False) -> List[str]:
        """Every error of ``opts`` (keys = field names; absent or None = unset): the declared
        checks of each field, then the rules across fields on those that passed (``flags``: see
        :func:`option_errors`)."""
        errors, failed = option_errors(cls, opts, cls.LABEL, flags)
        return errors + cls.cross_errors({k: v for k, v in opts.items() if k not in failed})

    @classmethod
    def rule_errors(cls, opts: Dict[str, object]) -> List[str]:
        """The rules across fields only, on the options that pass their own checks (a form whose
        parameters check themselves: ``declared.addDeclared``)."""
        return cls.cross_errors({k: v for k, v in opts.items() if k not in option_errors(cls, opts)[1]})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, flags: bool = False):
        """Raise :class:`SCNetInputError` naming every bad option; returns self."""
        errors = self.errors(self.to_dict(), flags)
        if errors:
            raise SCNetInputError(" ".join(errors))
        return self

    @classmethod
    def from_args(cls, args, **override):
        """The config of the fields an argparse namespace holds (None or absent: the declared default),
        with ``override`` on top, validated; messages name the command-line flags."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if getattr(args, f.name, None) is not None}
        values.update(override)
        return cls(**values).validate(flags=True)
