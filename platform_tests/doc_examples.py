"""The code blocks of README.md and docs/*.md that the tests run, found by the comment before them.

A marker is an HTML comment alone on the line right before a fenced block (GitHub does not show it):

    <!-- readme-example: PATH -->   README: a file a user writes, at PATH from the repository root
                                    (`platform/ml_platform/declarations/...`, `data/landing/...`)
    <!-- readme-snippet: NAME -->   README: Python a user runs
    <!-- docs-example: NAME -->     docs/*.md: a ```python or ```bash block a user runs

`test_readme_source.py` writes README's examples where they say and runs its snippet;
`test_docs_examples.py` runs every docs example. A block that starts a server or takes minutes is
left unmarked, and the page says what it does instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"

_MARKED = re.compile(
    r"^<!-- (?P<marker>[a-z]+-[a-z]+): (?P<name>\S+) -->\n```(?P<lang>\w*)\n(?P<body>.*?)^```", re.S | re.M
)


@dataclass(frozen=True)
class Block:
    page: Path
    marker: str
    name: str  # the PATH or NAME after the marker
    lang: str  # the fence's language: python, bash, csv, ...
    body: str
    line: int  # the block's first line of code in the page, 1-based

    @property
    def where(self) -> str:
        """`page:line`, as a traceback shows it."""
        return f"{self.page.relative_to(REPO)}:{self.line}"


def marked_blocks(page: Path, marker: str) -> list[Block]:
    """The page's blocks marked `<!-- marker: NAME -->`, in page order."""
    text = page.read_text(encoding="utf-8")
    return [
        Block(page, marker, m["name"], m["lang"], m["body"], text.count("\n", 0, m.start("body")) + 1)
        for m in _MARKED.finditer(text)
        if m["marker"] == marker
    ]


def in_section(block: Block, heading: str) -> bool:
    """Whether the block is in the page's `## heading` section."""
    text = block.page.read_text(encoding="utf-8")
    lines = text.splitlines()[: block.line]
    headings = [line[3:].strip() for line in lines if line.startswith("## ")]
    return bool(headings) and headings[-1] == heading


def run_python(block: Block, namespace: dict) -> None:
    """Execute a Python block in `namespace` (blocks of one page share it), so that a traceback
    names the page and the line in it."""
    padded = "\n" * (block.line - 1) + block.body  # line numbers as in the page
    exec(compile(padded, str(block.page), "exec"), namespace)
