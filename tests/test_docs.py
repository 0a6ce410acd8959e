"""Documentation rules: the README stays short and no document points outside the
repository (machine-specific paths, notes beside the repository, locks in /tmp)."""
import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
OUTSIDE = re.compile(r"(/work/|/tmp/|/root/|/home/|\.\./shared|shared/notes|flock )")


def test_readme_is_short_and_starts_with_the_two_commands():
    with open(README, "rb") as fh:
        text = fh.read()
    assert len(text) <= 10 * 1024, f"README.md is {len(text)} bytes (at most 10 KB)"
    head = text.decode("utf-8").splitlines()[:5]
    assert any("make demo" in line for line in head) and any("make test" in line for line in head)


def test_benchmarks_doc_keeps_the_latest_runs_only():
    """docs/benchmarks.md carries the latest run of each benchmark (history: git, CHANGES.txt): at most 15 KB."""
    size = os.path.getsize(os.path.join(REPO, "docs", "benchmarks.md"))
    assert size <= 15 * 1024, f"docs/benchmarks.md is {size} bytes (at most 15 KB: latest runs only)"


def test_docs_point_only_inside_the_repository():
    for path in glob.glob(os.path.join(REPO, "docs", "*.md")) + [README]:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                assert not OUTSIDE.search(line), f"{os.path.relpath(path, REPO)}:{i}: {line.strip()}"


def test_docs_links_exist():
    for path in glob.glob(os.path.join(REPO, "docs", "*.md")) + [README]:
        base = os.path.dirname(path)
        with open(path, encoding="utf-8") as fh:
            for target in re.findall(r"\]\(([^)#:]+)\)", fh.read()):
                assert os.path.exists(os.path.join(base, target)), f"{os.path.relpath(path, REPO)} -> {target}"


def test_no_issue_numbers_in_code_or_docs():
    """Code and docs hold the present: no "issue #N" (the tracker and git keep the history)."""
    pattern = re.compile(r"issue #\d+", re.IGNORECASE)
    paths = [README, os.path.join(REPO, "Makefile"), os.path.join(REPO, "setup.py")]
    for sub in ("docs", "scnet", "scnet_plugin", "tests", "benchmarks"):
        for ext in ("py", "md", "conf"):
            paths += glob.glob(os.path.join(REPO, sub, "**", f"*.{ext}"), recursive=True)
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                assert not pattern.search(line), f"{os.path.relpath(path, REPO)}:{i}: {line.strip()}"
