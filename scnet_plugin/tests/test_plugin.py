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

    def test_applied_to_pyworkflow_where_needed(self):
        """Active on Python >= 3.11; on older Pythons (e.g. a Python 3.8 Scipion) pyworkflow is left as is."""
        from pyworkflow.mapper import sqlite_db
        self.assertEqual(sqlite_fix.apply(), sqlite_fix.needed())
        if sqlite_fix.needed():
            self.assertIs(sqlite_db.sqlite.Connection, sqlite_fix.ClosingConnection)
        else:
            self.assertIs(sqlite_db.sqlite.Connection, sqlite3.dbapi2.Connection)
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

    def test_install_command_runs_the_engine_recipe(self):
        """installb runs scnet.engine_env (lock --no-deps, torch last, the engine from these files) with
        Scipion's Python and the plugin variables' choices; nothing from the registry under our name."""
        import shlex
        import sys
        from scnet_plugin.constants import SCNET_ENGINE_PYTHON, SCNET_TORCH, SCNET_TORCH_INDEX
        cmds = Plugin.engineInstallCommands("/opt/my env")
        self.assertEqual(len(cmds), 1)
        self.assertEqual(shlex.split(cmds[0]), [sys.executable, "-m", "scnet.engine_env", "/opt/my env",
                                                "--torch", "auto"])
        self.assertNotIn("scipion-em-scnet", cmds[0])
        saved = {k: Plugin.getVar(k) for k in (SCNET_TORCH, SCNET_TORCH_INDEX, SCNET_ENGINE_PYTHON)}
        try:
            Plugin._vars.update({SCNET_TORCH: " CUDA ", SCNET_TORCH_INDEX: "https://download.pytorch.org/whl/cu126",
                                 SCNET_ENGINE_PYTHON: "/usr/bin/python3.11"})
            args = shlex.split(Plugin.engineInstallCommands("/opt/env")[0])
            self.assertEqual(args[4:], ["--torch", "cuda", "--torch-index", "https://download.pytorch.org/whl/cu126",
                                        "--python", "/usr/bin/python3.11"])
        finally:
            Plugin._vars.update(saved)

    def test_install_variables_documented_defaults(self):
        from scnet_plugin.constants import SCNET_ENGINE_PYTHON, SCNET_TORCH, SCNET_TORCH_INDEX
        Plugin._defineVariables()
        self.assertEqual(Plugin.getVar(SCNET_TORCH), os.environ.get(SCNET_TORCH, "auto"))
        self.assertEqual(Plugin.getVar(SCNET_TORCH_INDEX), os.environ.get(SCNET_TORCH_INDEX, ""))
        self.assertEqual(Plugin.getVar(SCNET_ENGINE_PYTHON), os.environ.get(SCNET_ENGINE_PYTHON, ""))

    def test_define_binaries_registers_package(self):
        """`scipion3 installb scnet` makes software/em/scnet-<version> (the default SCNET_ENGINE_HOME),
        downloads nothing from the Scipion site, and counts it done only once bin/scnet exists."""
        import pwem
        from scnet import __version__
        calls = []

        class FakeEnv:
            def addPackage(self, name, **kw):
                calls.append((name, kw))

        Plugin.defineBinaries(FakeEnv())
        (name, kw), = calls
        self.assertEqual(name, "scnet")
        self.assertEqual(kw["version"], __version__)
        self.assertEqual((kw["tar"], kw["url"]), ("void.tgz", "file:/dev/null"))
        self.assertTrue(kw["default"])
        (cmd, targets), = kw["commands"]
        prefix = os.path.join(pwem.Config.EM_ROOT, f"scnet-{__version__}")
        self.assertEqual(cmd, Plugin.engineInstallCommands(prefix)[0])
        self.assertEqual(targets, [os.path.join(prefix, "bin", "scnet")])
        if "SCNET_ENGINE_HOME" not in os.environ:
            self.assertEqual(Plugin.getEngineHome(), prefix)
