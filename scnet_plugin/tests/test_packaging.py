"""Plugin conventions: tests discoverable by `scipion3 tests scnet_plugin` (unittest classes only),
the files a Scipion plugin ships (LICENSE matching pyproject.toml, CHANGES.txt, MANIFEST.in, the logo)."""
import ast
import os
import re
import unittest

import scnet_plugin

PLUGIN_DIR = os.path.dirname(os.path.abspath(scnet_plugin.__file__))
REPO = os.path.dirname(PLUGIN_DIR)
TESTS = os.path.join(PLUGIN_DIR, "tests")


class TestPluginTestsAreDiscoverable(unittest.TestCase):
    def test_no_bare_test_functions(self):
        """pyworkflow's runner (unittest discovery) skips module-level test_ functions: none allowed."""
        for f in sorted(os.listdir(TESTS)):
            if f.startswith("test") and f.endswith(".py"):
                with open(os.path.join(TESTS, f)) as fh:
                    tree = ast.parse(fh.read())
                bare = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test")]
                self.assertEqual(bare, [], f"{f}: bare test functions (put them in a unittest/BaseTest class)")

    def test_unittest_discovery_finds_every_test_module(self):
        suite = unittest.defaultTestLoader.discover(TESTS, pattern="test*.py", top_level_dir=REPO)
        found = {}

        def walk(s):
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    walk(t)
                else:
                    self.assertNotIn("_FailedTest", type(t).__name__, str(t))
                    found.setdefault(type(t).__module__.rsplit(".", 1)[-1], 0)
                    found[type(t).__module__.rsplit(".", 1)[-1]] += 1

        walk(suite)
        modules = {f[:-3] for f in os.listdir(TESTS) if f.startswith("test") and f.endswith(".py")}
        self.assertEqual(set(found), modules)


class TestPluginFiles(unittest.TestCase):
    def test_logo_exists(self):
        path = os.path.join(PLUGIN_DIR, scnet_plugin._logo)
        self.assertTrue(os.path.isfile(path), path)
        with open(path, "rb") as fh:
            self.assertEqual(fh.read(8), b"\x89PNG\r\n\x1a\n")

    def test_licence_matches_pyproject(self):
        with open(os.path.join(REPO, "pyproject.toml")) as fh:
            self.assertRegex(fh.read(), r'license = \{text = "GPLv3"\}')
        with open(os.path.join(REPO, "LICENSE")) as fh:
            head = fh.read(300)
        self.assertIn("GNU GENERAL PUBLIC LICENSE", head)
        self.assertIn("Version 3", head)

    def test_changes_and_manifest(self):
        with open(os.path.join(REPO, "CHANGES.txt")) as fh:
            self.assertTrue(fh.read().startswith(scnet_plugin.__version__))  # newest entry = this version
        with open(os.path.join(REPO, "MANIFEST.in")) as fh:
            manifest = fh.read()
        for name in ("LICENSE", "CHANGES.txt", "README.md", "scnet_plugin/*.png"):
            self.assertIn(name, manifest)

    def test_shared_facts_are_imported_not_retyped(self):
        """The plugin's choices and versions are the engine's (scnet.choices, scnet.deps)."""
        from scnet import __version__, choices, deps
        from scnet_plugin import constants
        self.assertEqual(constants.SCNET_VERSION, __version__)
        for name in ("BACKENDS", "PRIOR_FILTERS", "TOPAZ_2D_MODELS", "BASELINES", "BLINDSPOT_RATIO_OF", "TTA_CHOICES"):
            self.assertIs(getattr(constants, name), getattr(choices, name), name)
        from scnet import engine_env
        self.assertIs(engine_env.deps, deps)  # installb's recipe reads the same pins
        with open(os.path.join(PLUGIN_DIR, "constants.py")) as fh:
            self.assertIsNone(re.search(r'==\d', fh.read()), "constants.py re-types a pinned version")
