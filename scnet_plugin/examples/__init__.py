"""Scripted examples (each is run by a test in scnet_plugin/tests)."""
