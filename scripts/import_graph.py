"""Count the imports between the project's apps, and fail when the layering slips.

    python scripts/import_graph.py            # the edges, the mutual pairs, the verdict
    python scripts/import_graph.py --max-mutual 3

An edge A -> B means a module of app A imports a module of app B. Tests
and migrations may reach anywhere, and `tutor_platform/urls.py` is the top
that wires every app together: they are not counted. A "mutual pair" is two apps
with edges both ways. The rules checked:

- `aicore` (the AI-Core client) imports no domain app;
- at most `--max-mutual` pairs of apps import each other.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = (
    "accounts",
    "tutoring",
    "chats",
    "feedback",
    "progress",
    "usage",
    "privacy",
    "safety",
    "attachments",
    "aicore",
)
BASE = ("tutor_platform",)
DOMAIN = set(APPS) - {"aicore"}


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if "tests" in parts or "migrations" in parts or parts == ("tutor_platform", "urls.py"):
            continue
        yield path


def _imported(path: Path) -> set[str]:
    """Top-level packages `path` imports, absolute or relative."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(ROOT).parts[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    return found


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for app in (*APPS, *BASE):
        if not (ROOT / app).is_dir():
            continue
        for path in _modules(app):
            graph[app].update(target for target in _imported(path) if target in APPS and target != app)
    return graph


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-mutual", type=int, default=3)
    args = parser.parse_args()
    graph = edges()
    count = sum(len(targets) for app, targets in graph.items() if app in APPS)
    mutual = sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, set()))
    print(f"{count} app-to-app import edges")
    for app in sorted(graph):
        if graph[app]:
            print(f"  {app:15} -> {', '.join(sorted(graph[app]))}")
    print(
        f"{len(mutual)} pairs of apps import each other: {', '.join(f'{a}<->{b}' for a, b in mutual) or '-'}"
    )
    failures = []
    if graph.get("aicore", set()) & DOMAIN:
        failures.append(f"aicore imports domain apps: {', '.join(sorted(graph['aicore'] & DOMAIN))}")
    if graph.get("tutor_platform", set()) & DOMAIN:
        failures.append(
            f"tutor_platform imports domain apps: {', '.join(sorted(graph['tutor_platform'] & DOMAIN))}"
        )
    if len(mutual) > args.max_mutual:
        failures.append(f"{len(mutual)} mutual pairs, at most {args.max_mutual} allowed")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
