"""Work-around for a pyworkflow database lock on Python >= 3.11.

Since CPython 3.11, ``sqlite3.Connection.close()`` no longer resets
statements that were only partly read.  pyworkflow's ``Set.getFirstItem`` /
``selectFirst`` leave such a SELECT open, so the database stays locked and the
next write waits for sqlite's timeout (1000 s in pyworkflow): tomo's tilt-series
import hangs in ``importStep``.

The fix: pyworkflow's ``SqliteDb`` creates connections through the
``sqlite.Connection`` attribute of ``pyworkflow.mapper.sqlite_db``; we replace
it by :class:`ClosingConnection`, whose ``cursor()``/``execute()`` remember the
cursors they hand out and whose ``close()`` closes them first, and which also
so a closed connection never keeps a read lock.  It is applied when
the plugin is imported, which happens in the GUI, in scripts and in every
protocol-run subprocess (pyworkflow imports the plugins there too).
"""
from __future__ import annotations

import sqlite3
import sys
import weakref

_APPLIED = False


class ClosingConnection(sqlite3.Connection):
    """``sqlite3.Connection`` that closes the cursors it created before closing/writing."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scnet_cursors = weakref.WeakSet()

    def cursor(self, *args, **kwargs):
        cur = super().cursor(*args, **kwargs)
        self._scnet_cursors.add(cur)
        return cur

    def execute(self, *args, **kwargs):
        cur = self.cursor()
        return cur.execute(*args, **kwargs)

    def close_cursors(self) -> None:
        for cur in list(self._scnet_cursors):
            try:
                cur.close()
            except sqlite3.ProgrammingError:
                pass
        self._scnet_cursors = weakref.WeakSet()

    def close(self):
        self.close_cursors()
        super().close()


def needed() -> bool:
    return sys.version_info >= (3, 11)


def apply() -> bool:
    """Install :class:`ClosingConnection` into pyworkflow's sqlite layer (idempotent).

    Returns True when the patch is (now) active.
    """
    global _APPLIED
    if _APPLIED:
        return True
    if not needed():
        return False
    import types
    from pyworkflow.mapper import sqlite_db
    # pyworkflow does `from sqlite3 import dbapi2 as sqlite`; give that module name a copy of
    # dbapi2 whose Connection is ours, so nothing else using sqlite3 is touched.
    shim = types.ModuleType("scnet_sqlite_dbapi2")
    shim.__dict__.update({k: v for k, v in vars(sqlite_db.sqlite).items() if not k.startswith("__")})
    shim.Connection = ClosingConnection
    sqlite_db.sqlite = shim
    _APPLIED = True
    return True
