"""The README and the pages under docs/ link only to what exists: every relative link
names a file or folder of the repository, and every `#anchor` a heading of its page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) with no spaces in the target; images too (the leading ! is ignored).
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def _prose(text: str) -> str:
    """`text` without fenced blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """The anchors of `page`'s headings (duplicates get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text(encoding="utf-8"))):
        slug = _slug(heading)
        count = seen.get(slug, 0)
        anchors.add(slug if count == 0 else f"{slug}-{count}")
        seen[slug] = count + 1
    return anchors


def _links(page: Path) -> list[str]:
    return [
        target
        for target in LINK.findall(_prose(page.read_text(encoding="utf-8")))
        if not target.startswith(EXTERNAL)
    ]


def test_the_pages_exist_and_link_each_other() -> None:
    # given the README and the docs pages
    names = {page.relative_to(REPO).as_posix() for page in PAGES}
    # then the per-job reference and the CLI page are there, and the README links each
    assert {"docs/deploy-cert.md", "docs/enforce-https.md", "docs/check-expiry.md"} <= names
    assert "docs/cli.md" in names
    readme_links = {target.split("#")[0] for target in _links(REPO / "README.md")}
    assert {name for name in names if name.startswith("docs/")} <= readme_links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_points_at_an_existing_file_and_heading(page: Path) -> None:
    # given every relative link of the page
    links = _links(page)
    assert links, "a page without links is cut off from the others"
    broken = []
    for target in links:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        # then it names a file or folder inside the repository...
        exists = resolved.exists() and REPO in (resolved, *resolved.parents)
        # ...and an anchor names a heading of that page
        heading = not (exists and anchor and resolved.suffix == ".md") or (
            anchor in _anchors(resolved)
        )
        if not (exists and heading):
            broken.append(target)
    assert broken == []


def test_the_slug_rule_matches_githubs_for_the_headings_we_use() -> None:
    # given headings with punctuation, numbers and code
    # then the anchors are those GitHub renders
    assert _slug("6. Publish the certificate-issued event") == (
        "6-publish-the-certificate-issued-event"
    )
    assert _slug("Try it by hand: the sandbox") == "try-it-by-hand-the-sandbox"
    assert _slug("Chosen behaviours (UNCONFIRMED cloud facts)") == (
        "chosen-behaviours-unconfirmed-cloud-facts"
    )
    assert _slug("From a shell: `certpilot sweep`") == "from-a-shell-certpilot-sweep"
