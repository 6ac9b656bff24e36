"""Every ``docs/spec.md#<anchor>`` that the code, tests and docs cite exists in docs/spec.md."""

from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = ROOT / "docs" / "spec.md"
# A check of the source tree's text: it skips where tests/ runs without it (.ci/wheel).
pytestmark = pytest.mark.skipif(not SPEC.is_file(), reason="docs/ not next to the tests")
CITED = re.compile(r"(?:docs/)?spec\.md#([A-Za-z0-9_-]+)")
SOURCES = ("python", "csrc", "tests", "docs", "tools", "bench", "examples")


def spec_anchors() -> set[str]:
    return set(re.findall(r'<a id="([\w-]+)"></a>', SPEC.read_text()))


def cited_anchors() -> dict[str, list[str]]:
    cited: dict[str, list[str]] = {}
    files = [ROOT / "README.md"] + [p for d in SOURCES for p in (ROOT / d).rglob("*")
                                     if p.suffix in {".py", ".pyi", ".md", ".cpp", ".h", ".cu", ".cuh", ".inc"}]
    for path in files:
        if "_generated" in path.parts:
            continue
        for anchor in CITED.findall(path.read_text(errors="replace")):
            cited.setdefault(anchor, []).append(str(path.relative_to(ROOT)))
    return cited


def test_cited_spec_anchors_exist():
    anchors = spec_anchors()
    missing = {a: sorted(set(files)) for a, files in cited_anchors().items() if a not in anchors}
    assert not missing, f"docs/spec.md has no anchor for: {missing}; add <a id=\"...\"></a> or fix the citation"


def test_spec_cross_links_resolve():
    anchors = spec_anchors()
    local = set(re.findall(r"\]\(#([\w-]+)\)", SPEC.read_text()))
    assert local, "docs/spec.md should link its own sections"
    assert local <= anchors, f"links to missing anchors in docs/spec.md: {sorted(local - anchors)}"


def test_anchor_reader_sees_citations():
    assert CITED.findall("see docs/spec.md#rule-krum and spec.md#attacks.") == ["rule-krum", "attacks"]
