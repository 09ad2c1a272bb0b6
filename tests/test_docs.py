"""The README and the docs pages link only to files that exist (a moved page breaks this test, not a reader)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(page: Path) -> list[str]:
    """Targets of the page's Markdown links and images that are not URLs or in-page anchors (fenced code skipped)."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    broken = [t for t in relative_links(page) if not (page.parent / t.split("#", 1)[0]).exists()]
    assert not broken, f"{page.relative_to(REPO)} links to missing files: {broken}"


def test_the_readme_stays_short_and_links_every_docs_page() -> None:
    readme = REPO / "README.md"
    assert len(readme.read_text().splitlines()) <= 150
    linked = {(readme.parent / t).resolve() for t in relative_links(readme)}
    mine = {"crl-data.md", "crl-eval.md", "crl-train.md", "design.md", "environments.md"}
    assert {p.name for p in linked if p.parent == REPO / "docs"} >= mine
    assert (REPO / "datasets" / "FORMAT.md").resolve() in linked and (REPO / "bench" / "RESULTS.md").resolve() in linked


def test_the_checker_finds_a_broken_link(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("[ok](p.md) [gone](missing.md) ![img](x.png) [web](https://example.org) [a](#top)\n"
                    "```\n[in code](nowhere.md)\n```\n")
    assert relative_links(page) == ["p.md", "missing.md", "x.png"]
