"""The README's tree is true: every path it names exists, and every top-level folder is named."""

from __future__ import annotations

import re
import subprocess

from conftest import REPO


def tree_paths(readme: str) -> list[str]:
    """The paths of the "What is where" block: two spaces of indent per level under the last folder (`x/`)."""
    section = readme.split("## What is where", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S).group(1)
    parents: list[str] = []
    paths = []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        del parents[depth:]
        path = "".join(parents) + name
        paths.append(path)
        if name.endswith("/"):
            parents.append(name)
    return paths


def test_tree_paths_nest_by_indent():
    readme = "## What is where\n```text\na/   x\n  b.py  y\n  c/  z\n    d  w\ne  v\n```\n"
    assert tree_paths(readme) == ["a/", "a/b.py", "a/c/", "a/c/d", "e"]


def test_every_path_the_readme_names_exists():
    named = tree_paths((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(named) > 30
    missing = [p for p in named if not (REPO / p).exists() or p.endswith("/") != (REPO / p).is_dir()]
    assert not missing, missing


def test_every_top_level_folder_is_named():
    named = set(tree_paths((REPO / "README.md").read_text(encoding="utf-8")))
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    folders = {f.split("/", 1)[0] + "/" for f in tracked.splitlines() if "/" in f}
    assert folders and folders <= named, folders - named
