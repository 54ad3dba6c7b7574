"""Every relative link of the documentation resolves: README.md, docs/**/*.md and
results/README.md link to files that exist, and a link's #anchor to a heading of the
page it names (GitHub's heading ids)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = sorted([ROOT / "README.md", ROOT / "results" / "README.md",
                *(ROOT / "docs").rglob("*.md")])
# [text](target) and ![alt](target); the target ends at whitespace or ")" (an optional
# "title" may follow). Text may hold one level of brackets ([`a[0]`](x)).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto:, ...
FENCE = re.compile(r"^(```|~~~)")


def prose(text: str, inline_code: bool = False) -> str:
    """The page without fenced code blocks, and without inline code unless asked: a
    bracket in code is code, not a link."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            kept.append(line if inline_code else re.sub(r"`[^`]*`", "``", line))
    return "\n".join(kept)


def links(page: Path) -> list[str]:
    return LINK.findall(prose(page.read_text(encoding="utf-8")))


def slug(heading: str) -> str:
    """GitHub's id for a heading: its text without markup, lower case, punctuation
    dropped (letters, digits, '_' and '-' stay), spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(page: Path) -> frozenset[str]:
    """The ids of a page's headings, with GitHub's -1, -2 for repeats, and explicit
    <a name=...>/id=... anchors."""
    seen: dict[str, int] = {}
    found = set()
    text = page.read_text(encoding="utf-8")
    for line in prose(text, inline_code=True).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        found.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    found |= set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    return frozenset(found)


def test_the_pages_exist():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    for page in ("README.md", "results/README.md", "docs/RESULTS.md", "docs/model.md",
                 "docs/training.md", "docs/robots.md", "docs/protocol.md"):
        assert page in names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if EXTERNAL.match(target) or target.startswith("#"):  # the web; this page
            continue
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve()
        if not resolved.exists():
            broken.append(f"{target}: no such file ({resolved.relative_to(ROOT)})"
                          if resolved.is_relative_to(ROOT) else f"{target}: outside the repo")
            continue
        if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading with the id #{fragment} in "
                          f"{resolved.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_slugs_are_githubs():
    assert slug("GPU figures (`benchmarks/gpu.sh`, one NVIDIA H200)") == \
        "gpu-figures-benchmarksgpush-one-nvidia-h200"
    assert slug("4. Record demonstrations") == "4-record-demonstrations"
    assert slug("`action_scale` for a position-target controller") == \
        "action_scale-for-a-position-target-controller"
    assert slug("Co-training: keeping the words grounded") == \
        "co-training-keeping-the-words-grounded"
