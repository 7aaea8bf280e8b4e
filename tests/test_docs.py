"""The repository stands alone: its docs link only to files it holds, and docs/SPEC.md keeps up with DECISIONS.md.

A clone has nothing beside it, so a link or a path that climbs out of the checkout (as the README's links to the
project's shared SPEC once did) is a dead end for every reader but the original authors.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The shared folder beside the checkout where the project's notes first lived. Only .ci/run may name it (to run
# the held-out conformance vectors when they are there); the needle is built here so this file does not name it.
OUTSIDE = b"/".join((b"..", b"shared"))
MAY_NAME_OUTSIDE = {Path(".ci/run")}
SKIP_DIRS = {".git", ".venv", "var", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def repository_files() -> Iterator[Path]:
    """Every file of the checkout (relative to its root), less caches, the venv and run output."""
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        generated = any(part.endswith(".egg-info") or part == "node_modules" for part in rel.parts)
        if path.is_file() and not SKIP_DIRS.intersection(rel.parts) and not generated:
            yield rel


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> Iterator[str]:
    """The lines of a markdown text outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def anchor_of(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation (`§`, `(`, `,`, backticks) dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors_of(markdown: Path) -> set[str]:
    """Every heading anchor of a markdown file; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    anchors: set[str] = set()
    for line in prose_lines(markdown.read_text()):
        if not (match := re.match(r"#{1,6} (.+)", line)):
            continue
        slug = anchor_of(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def local_links(markdown: Path) -> Iterator[str]:
    for line in prose_lines(markdown.read_text()):
        for target in LINK.findall(line):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: leave the repository on purpose
                yield target


def test_no_file_of_the_repository_points_at_the_shared_folder_beside_it() -> None:
    offenders = [
        str(rel) for rel in repository_files() if rel not in MAY_NAME_OUTSIDE and OUTSIDE in (ROOT / rel).read_bytes()
    ]
    assert offenders == [], f"these files point outside the repository ({OUTSIDE.decode()}): {offenders}"


@pytest.mark.parametrize("markdown", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_of_a_doc_resolves_to_a_file_and_heading_in_the_repository(markdown: Path) -> None:
    problems = []
    for target in local_links(markdown):
        file_part, _, anchor = target.partition("#")
        path = (markdown.parent / file_part).resolve() if file_part else markdown
        if not path.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors_of(path):
            problems.append(f"{target}: no heading with anchor #{anchor} in {path.relative_to(ROOT)}")
    assert problems == [], f"{markdown.relative_to(ROOT)}: {problems}"


def test_every_decision_section_is_linked_from_the_spec_section_it_refines() -> None:
    spec = (DOCS / "SPEC.md").read_text()
    sections = [line[3:] for line in prose_lines((DOCS / "DECISIONS.md").read_text()) if line.startswith("## ")]
    assert sections, "DECISIONS.md has no sections"
    unlinked = [title for title in sections if f"DECISIONS.md#{anchor_of(title)}" not in spec]
    assert unlinked == [], f"fold these DECISIONS.md sections into docs/SPEC.md and link them: {unlinked}"


def test_the_docs_index_lists_every_doc() -> None:
    index = DOCS / "README.md"
    listed = {(DOCS / target.partition("#")[0]).resolve() for target in local_links(index)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if p != index and p.resolve() not in listed]
    assert missing == [], f"docs/README.md does not list {missing}"
