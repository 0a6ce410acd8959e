"""The ``scnet`` options built from their declarations (:mod:`scnet.declare`), and the parsing they share.

:func:`add_declared` gives each declared field of a stage's config one option with the declared
flag, type, default, choices and help (``[default]`` at its end); each argparse action records its
declaration in ``action.declared`` (and ``action.unset`` when it defaults to None so that the declared
default applies later) so ``tests/test_declarations.py`` can walk every parser.
"""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..declare import describe, field_of, flag, kind, type_name
from ..errors import SCNetInputError


def parse_bool(s: str) -> bool:
    v = str(s).strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def _optional(typ):
    """A number, or None for ``none``/``null``/``default``/an empty text (an Optional field unset)."""
    def parse(s):
        if str(s).strip().lower() in ("none", "null", "default", ""):
            return None
        return typ(s)
    parse.__name__ = typ.__name__
    return parse


_METAVAR = {"int": "N", "float": "X"}


def declared_help(f, with_default: bool = True) -> str:
    """The declared help of field ``f`` as an argparse help text, ending with ``[default]``."""
    text = describe(f).replace("%", "%%")
    return text + (f" [{f.default}]" if with_default and f.default is not None else "")


def _plain_flag(f, unset: bool) -> bool:
    """A boolean field that defaults to False becomes a plain ``--flag`` (its help shows no default)."""
    return kind(f) == "bool" and f.default is False and not unset


def add_declared(p, cls, names=None, *, exclude=(), unset=False, dest_prefix=""):
    """An option for each declared field of ``cls`` (``names``: only these, in this order; ``exclude``:
    not these).  ``unset``: the options default to None (a value from elsewhere -- a JSON config --
    or the declared one stands; the help still shows the declared default).  Returns the actions."""
    actions = []
    for name in names or [f.name for f in fields(cls)]:
        if name in exclude:
            continue
        f = field_of(cls, name)
        k, optional = kind(f), "Optional" in type_name(f)
        kw = {"dest": dest_prefix + name, "default": None if unset else f.default,
              "help": declared_help(f, with_default=not _plain_flag(f, unset))}
        if k == "bool":
            if f.default is False and not unset:
                kw["action"] = "store_true"
            else:  # --wedge alone = --wedge true; --use-expectancy false
                kw.update(type=parse_bool, nargs="?", const=True, metavar="true|false")
        else:
            typ = {"int": int, "float": float, "str": str}[k]
            kw["type"] = _optional(typ) if optional and k != "str" else typ
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
                if k != "str":
                    kw["metavar"] = "N"
            else:
                kw["metavar"] = _METAVAR.get(k, name.upper())
        action = p.add_argument(flag(name), **kw)
        action.declared, action.unset = [(cls, name)], unset
        actions.append(action)
    return actions


def add_declared_shared(p, classes, name):
    """One option ``name`` that several configs declare (``scnet baseline --sigma``: bm4d's noise std and
    gaussian's filter width).  Unset (None): each config's declared default; the help names them all."""
    decl = [(cls, name) for cls in classes if name in {f.name for f in fields(cls)}]
    first = field_of(*decl[0])
    k = kind(first)
    typ = {"int": int, "float": float, "str": str}[k]
    choices = first.metadata.get("choices")
    action = p.add_argument(flag(name), dest=name, default=None, type=_optional(typ) if k != "str" else typ,
                            choices=choices, metavar=None if choices else _METAVAR.get(k, "S"),
                            help="; ".join(dict.fromkeys(declared_help(field_of(c, n)) for c, n in decl)))
    action.declared, action.unset = decl, True
    return action


def differences(parser, where: str, own=()) -> list:
    """Each option of ``parser`` whose default, choices or help is not its declaration's, and each option
    with a default, choices or a numeric type that has no declaration (``own``: flags that are the
    parser's own choices, not stage options).  The declaration tests walk every parser with it."""
    diffs = []
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction) or not a.option_strings or a.option_strings[0] in own:
            continue
        at = f"{where} {a.option_strings[0]}"
        decl = getattr(a, "declared", None)
        if not decl:
            plain_flag = isinstance(a, (argparse._StoreTrueAction, argparse._StoreConstAction)) and not a.default
            path_like = a.default is None and a.choices is None and a.type in (None, str)
            if not (plain_flag or path_like):
                diffs.append(f"{at}: not declared (default {a.default!r}, choices {a.choices})")
            continue
        for cls, name in decl:
            f = field_of(cls, name)
            if a.option_strings[0] != flag(name):
                diffs.append(f"{at}: not the declared flag {flag(name)}")
            if a.unset:  # None: the declared default (or a --config value) stands
                if a.default is not None:
                    diffs.append(f"{at}: default {a.default!r}, expected unset")
            elif a.default != f.default:
                diffs.append(f"{at}: default {a.default!r} != declared {f.default!r}")
            if tuple(a.choices or ()) != tuple(f.metadata.get("choices") or ()):
                diffs.append(f"{at}: choices {a.choices} != declared {f.metadata.get('choices')}")
            if declared_help(f, with_default=not _plain_flag(f, a.unset)) not in a.help:
                diffs.append(f"{at}: help is not the declared one")
    return diffs


def parse_zyx(text, name: str):
    """``"Z,Y,X"`` (or ``ZxYxX``) -> three ints (validated by the declaration); ``None`` stays None."""
    if text is None:
        return None
    try:
        return tuple(int(v) for v in str(text).replace("x", ",").split(","))
    except ValueError:
        raise SCNetInputError(f"{name} must be three integers Z,Y,X (got {text!r}).") from None
