"""The allowed import directions (README "How it works"), checked on every module's AST.

``detectors`` imports neither ``streams`` nor ``producers`` and does no I/O; ``producers``
import from ``streams`` only its shared home ``streams.core``; ``streams.core`` imports
nothing else of ``streams`` (nor ``producers``); the engine imports neither the runner, the
metrics, the CLI, the stack nor ``producers``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: (package, modules it must not import: a name or a dotted prefix)
RULES: list[tuple[str, tuple[str, ...]]] = [
    (
        "detectors",
        # pure: no other layer, no service clients, no file formats
        ("streams", "producers", "redis", "confluent_kafka", "socket", "csv", "pyarrow", "urllib"),
    ),
    (
        "producers",
        (
            "streams.engine",
            "streams.runner",
            "streams.metrics",
            "streams.commands",
            "streams.demo",
            "streams.backtest",
            "streams.stack",
            "streams.checkpoint",
            "streams.cli",
        ),
    ),
    (
        "streams/core",
        (
            "producers",
            "streams.engine",
            "streams.runner",
            "streams.metrics",
            "streams.commands",
            "streams.demo",
            "streams.backtest",
            "streams.stack",
            "streams.checkpoint",
            "streams.cli",
        ),
    ),
    (
        "streams/engine",
        (
            "producers",
            "streams.runner",
            "streams.metrics",
            "streams.commands",
            "streams.demo",
            "streams.stack",
            "streams.checkpoint",
            "streams.cli",
            "redis",
            "confluent_kafka",
        ),
    ),
]


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _forbidden(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_import_directions(package: str, forbidden: tuple[str, ...]) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules under {package}"
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in files
        for line, name in _imports(path)
        if _forbidden(name, forbidden)
    ]
    assert broken == []


def test_the_rules_would_catch_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from streams.engine.engine import Engine\nimport redis\n")
    names = [name for _, name in _imports(module)]
    assert _forbidden(names[0], RULES[1][1])  # producers must not import the engine
    assert _forbidden(names[1], RULES[0][1])  # detectors must not import a service client
