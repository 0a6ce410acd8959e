"""The list of tomograms of a data set (``scnet train --tomograms LIST.tsv``): read and written here only.

A tab-separated text file, one tomogram per line, with a header naming the columns (any order)::

    name    noisy           prior           even            odd
    TS_01   TS_01.mrc       TS_01_prior.mrc TS_01_even.mrc  TS_01_odd.mrc
    TS_02   TS_02.mrc       -               TS_02_even.mrc  TS_02_odd.mrc

``name`` and ``noisy`` are required; ``prior``, ``even`` and ``odd`` are optional columns, and an
empty cell or ``-`` means "none" (a missing prior is made from the tomogram by ``--prior-from``).
Relative paths are relative to the list's own folder; ``#`` starts a comment line.  Every error names
the line and the tomogram.  Standard library only: the Scipion plugin writes the list with
:func:`write_manifest` in an environment without numpy or torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence

from .errors import SCNetInputError

COLUMNS = ("name", "noisy", "prior", "even", "odd")
REQUIRED = ("name", "noisy")
NONE_CELLS = ("", "-")


@dataclass
class TomogramEntry:
    """One tomogram of a data set: its name (the tsId in Scipion) and its files (None = not given)."""

    name: str
    noisy: str
    prior: Optional[str] = None
    even: Optional[str] = None
    odd: Optional[str] = None

    def files(self) -> List[str]:
        """Every file given for this tomogram (what the training reads)."""
        return [p for p in (self.noisy, self.prior, self.even, self.odd) if p]


def read_manifest(path: str) -> List[TomogramEntry]:
    """The tomograms listed in ``path`` (TSV, see the module docstring), or a clear error naming the line."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise SCNetInputError(f"List of tomograms {path} not found.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SCNetInputError(f"List of tomograms {path} cannot be read ({exc}).") from None
    rows = [(i + 1, line) for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise SCNetInputError(f"List of tomograms {path} is empty: give a header line ({chr(9).join(COLUMNS)}) and "
                              f"one line per tomogram.")
    head = [c.strip().lower() for c in rows[0][1].split("\t")]
    unknown = [c for c in head if c not in COLUMNS]
    missing = [c for c in REQUIRED if c not in head]
    if unknown or missing or len(set(head)) != len(head):
        raise SCNetInputError(f"{path} line {rows[0][0]}: the header must name tab-separated columns from "
                              f"{', '.join(COLUMNS)} ({' and '.join(REQUIRED)} required, each once); got "
                              f"{rows[0][1]!r}.")
    base = os.path.dirname(os.path.abspath(path))
    entries, seen = [], {}
    for n, line in rows[1:]:
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) > len(head):
            raise SCNetInputError(f"{path} line {n}: {len(cells)} tab-separated cells for {len(head)} columns "
                                  f"({', '.join(head)}).")
        cells += [""] * (len(head) - len(cells))
        row = {c: (None if v in NONE_CELLS else v) for c, v in zip(head, cells)}
        name = row.get("name")
        if not name or not row.get("noisy"):
            raise SCNetInputError(f"{path} line {n}: every tomogram needs a name and a noisy file "
                                  f"(got name {name!r}, noisy {row.get('noisy')!r}).")
        if name in seen:
            raise SCNetInputError(f"{path} line {n}: tomogram name {name!r} is also on line {seen[name]}; names "
                                  f"must be unique.")
        seen[name] = n
        entries.append(TomogramEntry(name=name, **{c: (v if v is None or os.path.isabs(v) else os.path.join(base, v))
                                                   for c, v in row.items() if c != "name"}))
    if not entries:
        raise SCNetInputError(f"List of tomograms {path} has a header but no tomogram.")
    return entries


def write_manifest(path: str, entries: Sequence[TomogramEntry]) -> None:
    """Write ``entries`` as the TSV :func:`read_manifest` reads (absolute paths; ``-`` for none)."""
    for e in entries:
        for v in (e.name,) + tuple(e.files()):
            if "\t" in v or "\n" in v:
                raise SCNetInputError(f"Tomogram {e.name!r}: a name or file name holds a tab or a line break "
                                      f"({v!r}); it cannot be listed.")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\t".join(COLUMNS) + "\n")
        for e in entries:
            cells = [e.name] + [os.path.abspath(v) if v else "-" for v in (e.noisy, e.prior, e.even, e.odd)]
            fh.write("\t".join(cells) + "\n")
