"""What the documentation names exists: links and their anchors, module paths, test files, and the
package's docstrings and comments naming modules. Pages move and modules are renamed; a name left
behind is found here, not by a reader.

Also: README's short table of guarantees says what docs/guarantees.md says, and
docs/dependencies.md gives a reason for every package pyproject.toml pins.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import tomllib
from pathlib import Path

import pytest

from doc_examples import DOCS, README, REPO

PAGES = [README, *sorted(DOCS.glob("*.md")), REPO / "benchmarks" / "README.md"]
PACKAGE = REPO / "platform" / "ml_platform"

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PY_PATH = re.compile(r"[\w./-]*\w\.py(?:::\w+)?")
FILE_PATH = re.compile(r"[\w-]+(?:/[\w.-]+)+\.(?:md|json|yaml|toml|png|txt)")
DOTTED = re.compile(r"\bml_platform(?:\.\w+)+")
FOLDER = re.compile(r"(?:platform/)?ml_platform/[\w/]*")


def _repo_files() -> list[str]:
    skip = {".git", "node_modules", "__pycache__", "test-artifacts", "data"}
    return [
        p.relative_to(REPO).as_posix()
        for p in REPO.rglob("*")
        if p.is_file() and not any(part in skip or part.startswith(".venv") for part in p.relative_to(REPO).parts)
    ]


FILES = _repo_files()


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    in_fence = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and (m := re.match(r"#+ (.*)", line)):
            slug = _slug(m.group(1))
            anchors.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return anchors


def _prose(page: Path) -> str:
    """The page without its fenced blocks (code a user writes is not a reference)."""
    return re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def _py_file_exists(token: str) -> bool:
    name, _, test = token.partition("::")
    found = [f for f in FILES if f == name or f.endswith("/" + name)]
    if not found or not test:
        return bool(found)
    return any(re.search(rf"^def {test}\b", (REPO / f).read_text(), re.M) for f in found)


def _module_exists(dotted: str) -> bool:
    """`ml_platform.a.b` is a module or package, or an attribute of one (`ml_platform.results.publish`)."""
    parts = dotted.split(".")
    for n in (len(parts), len(parts) - 1):
        path = PACKAGE.parent.joinpath(*parts[:n])
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return n == len(parts) or hasattr(__import__(".".join(parts[:n]), fromlist=["_"]), parts[-1])
    return False


def _missing_names(text: str, relative_to: Path) -> list[str]:
    missing = []
    for span in CODE_SPAN.findall(text):
        if "<" in span or "*" in span or "://" in span:
            continue
        for token in PY_PATH.findall(span):
            if not _py_file_exists(token):
                missing.append(token)
        for token in FILE_PATH.findall(span):
            if not ((REPO / token).exists() or (relative_to / token).exists()):
                missing.append(token)
        for token in DOTTED.findall(span):
            if not _module_exists(token):
                missing.append(token)
        for token in FOLDER.findall(span):
            if token.endswith("/") and not (REPO / token).is_dir() and not (REPO / "platform" / token).is_dir():
                missing.append(token)
    return missing


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_links_and_anchors_resolve(page: Path):
    broken = []
    for target in LINK.findall(_prose(page)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        name = resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else str(resolved)
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target}: no heading #{anchor} in {name}")
    assert broken == []


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_named_modules_and_tests_exist(page: Path):
    assert _missing_names(_prose(page), page.parent) == []


def _docstrings_and_comments(path: Path) -> str:
    source = path.read_text(encoding="utf-8")
    texts = [
        ast.get_docstring(node, clean=False) or ""
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    texts += [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT]
    return "\n".join(texts)


# `ingestion.partition_files`, `training.frontier`: a module named from the package's top.
ROOMS = sorted(p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file())
ROOM_DOTTED = re.compile(rf"(?<![\w./])(?:{'|'.join(ROOMS)})(?:\.[a-z_]\w*)+(?![\w/])")
FILE_SUFFIXES = {"md", "py", "json", "csv", "duckdb", "parquet", "yaml"}


def test_package_docstrings_and_comments_name_modules_that_exist():
    missing = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        text = _docstrings_and_comments(path)
        names = [t for t in DOTTED.findall(text) if not _module_exists(t)]
        names += [
            t
            for t in ROOM_DOTTED.findall(text)
            if t.rsplit(".", 1)[1] not in FILE_SUFFIXES and not _module_exists(f"ml_platform.{t}")
        ]
        names += [t for t in PY_PATH.findall(text) if not _py_file_exists(t)]
        names = sorted(set(names))
        if names:
            missing[path.relative_to(REPO).as_posix()] = names
    assert missing == {}


def _guarantees(page: Path) -> dict[str, str]:
    rows = re.findall(r"^\| \*\*(.+?)\*\*.*\| (`test_[^|]+) \|$", page.read_text(encoding="utf-8"), re.M)
    return dict(rows)


def test_readme_guarantees_are_the_full_tables():
    short, full = _guarantees(README), _guarantees(DOCS / "guarantees.md")
    assert short and short == full


def test_every_pinned_dependency_is_explained():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *(s for extra in project["optional-dependencies"].values() for s in extra)]
    names = [re.match(r"[A-Za-z0-9_.-]+", spec).group(0) for spec in specs]
    explained = (DOCS / "dependencies.md").read_text(encoding="utf-8")
    assert [n for n in names if not re.search(rf"^\|.*`{re.escape(n)}[`\[]", explained, re.M)] == []
