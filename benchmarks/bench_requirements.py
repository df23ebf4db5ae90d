"""Requirement lists for `.venv-bench` (the Makefile's `$(BENCH_VENV)/.installed`), from pyproject.toml.

Feast 0.67 caps pandas, prometheus_client and redis below the versions the platform pins, so pip cannot
install `.[bench]` in one resolve. The Makefile installs Feast first, then the platform's other
dependencies, then the platform without dependencies; this prints, one a line, what each step needs:

    python benchmarks/bench_requirements.py bench                              # the bench extra (Feast)
    python benchmarks/bench_requirements.py platform --except pandas redis     # the platform's, less those
    python benchmarks/bench_requirements.py constraints --except pandas redis  # constraints.txt, less those

Only the standard library: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """The distribution name of a requirement line, normalized (PEP 503)."""
    return re.sub(r"[-_.]+", "-", re.split(r"[\s\[=<>!~;]", requirement.strip(), maxsplit=1)[0]).lower()


def requirements(kind: str, excluded: list[str]) -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    if kind == "bench":
        lines = project["optional-dependencies"]["bench"]
    elif kind == "platform":
        lines = project["dependencies"]
    else:
        lines = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line.strip()]
    skip = {_name(name) for name in excluded}
    return [line for line in lines if line.lstrip().startswith("#") or _name(line) not in skip]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["bench", "platform", "constraints"])
    parser.add_argument("--except", dest="excluded", nargs="*", default=[], help="distribution names to leave out")
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.kind, args.excluded)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
