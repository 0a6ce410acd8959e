"""Plugin-level tests that need no project: discovery, engine command, install commands, sqlite fix."""
import os
import sqlite3
import tempfile
import unittest

from scnet_plugin import Plugin, sqlite_fix


def _half_read_then_write(connection_class):
    """Leave a SELECT half-read, close, then write from another connection (timeout 0.3 s)."""
    db = os.path.join(tempfile.mkdtemp(), "t.sqlite")
    a = connection_class(db, 0.3)
    a.execute("create table t(i)")
    a.executemany("insert into t values(?)", [(i,) for i in range(50)])
    a.commit()
    cur = a.cursor()
    cur.execute("select * from t")
    cur.fetchone()
    a.close()
    b = sqlite3.connect(db, timeout=0.3)
    try:
        b.execute("insert into t values(1)")
        b.commit()
        return "ok"
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        b.close()


class TestSqliteFix(unittest.TestCase):
    def test_plain_connection_keeps_lock_on_py311(self):
        if not sqlite_fix.needed():
            self.skipTest("the lock only happens on Python >= 3.11")
        self.assertIn("locked", _half_read_then_write(sqlite3.Connection))

    def test_closing_connection_releases_lock(self):
        self.assertEqual(_half_read_then_write(sqlite_fix.ClosingConnection), "ok")

    def test_applied_to_pyworkflow(self):
        from pyworkflow.mapper import sqlite_db
        self.assertTrue(sqlite_fix.apply())
        self.assertIs(sqlite_db.sqlite.Connection, sqlite_fix.ClosingConnection)
        self.assertIsNot(sqlite3.dbapi2.Connection, sqlite_fix.ClosingConnection)  # stdlib untouched


class TestPluginClass(unittest.TestCase):
    def test_protocols_discovered(self):
        from pyworkflow.plugin import Domain
        names = set(Domain.getProtocols())
        for n in ("ProtSCNetPrepareTomograms", "ProtSCNetTrain", "ProtSCNetLoadModel", "ProtSCNetDenoise",
                  "ProtSCNetFscEo", "ProtSCNetEvaluate"):
            self.assertIn(n, names)

    def test_engine_command_runs(self):
        import subprocess
        cmd = Plugin.getScnetCommand()
        self.assertEqual(Plugin.engineErrors(), [], cmd)
        out = subprocess.run([cmd, "--version"], capture_output=True, text=True, env=Plugin.getEnviron())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("scnet", out.stdout)

    def test_missing_engine_is_reported(self):
        from scnet_plugin.constants import SCNET_ENGINE_HOME
        old = Plugin.getVar(SCNET_ENGINE_HOME)
        try:
            Plugin._vars[SCNET_ENGINE_HOME] = "/nonexistent/engine"
            errs = Plugin.engineErrors()
            self.assertEqual(len(errs), 1)
            self.assertIn("/nonexistent/engine/bin/scnet", errs[0])
            self.assertIn("installb scnet", errs[0])
        finally:
            Plugin._vars[SCNET_ENGINE_HOME] = old

    def test_install_commands(self):
        cmds = Plugin.engineInstallCommands("/opt/env")
        self.assertEqual(cmds[0], "python3 -m venv /opt/env")
        self.assertIn("torch==2.13.0", cmds[1])  # torch first, before anything can pull another build
        self.assertIn("topaz-em==0.3.20", cmds[2])
        self.assertIn("--no-deps", cmds[3])
        self.assertIn("careamics==", cmds[3])  # the N2V baseline the evaluate form offers can run
        self.assertIn("--no-deps", cmds[4])
        self.assertTrue(cmds[-1].endswith("/opt/env/bin/scnet --version"))

    def test_install_commands_follow_scnet_deps(self):
        """What `scipion3 installb scnet` installs is scnet/deps.py, torch alone first, nothing re-typed."""
        from scnet import __version__, deps
        import scnet_plugin
        cmds = Plugin.engineInstallCommands("/opt/env")
        self.assertTrue(cmds[1].endswith(deps.TORCH))
        for req in deps.ENGINE + deps.CAREAMICS_RUNTIME:
            self.assertIn(req, cmds[2].split())
        self.assertNotIn("careamics==", cmds[2])  # its torchvision pin would downgrade torch
        self.assertIn(deps.CAREAMICS, cmds[3])
        self.assertIn(f"scipion-em-scnet[engine]=={__version__}", cmds[4])
        self.assertEqual(scnet_plugin.__version__, __version__)
        self.assertEqual(Plugin._supportedVersions, [__version__])

    def test_define_binaries_registers_package(self):
        calls = []

        class FakeEnv:
            def addPackage(self, name, **kw):
                calls.append((name, kw))

        Plugin.defineBinaries(FakeEnv())
        self.assertEqual(calls[0][0], "scnet")
        (cmd, targets), = calls[0][1]["commands"]
        self.assertIn("torch==2.13.0", cmd)
        self.assertTrue(targets[0].endswith("bin/scnet"))
