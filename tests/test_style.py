"""A newcomer reads each function of the package once: none is longer than 50 lines (CONTRIBUTING.md)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reproduction"
MAX_LINES = 50


def test_no_function_in_the_package_is_longer_than_50_lines():
    long, paths = [], sorted(PACKAGE.rglob("*.py"))
    assert len(paths) > 20, f"no package found at {PACKAGE}"
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(
                        f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({lines} lines)"
                    )
    assert not long, "split into named steps: " + "; ".join(long)
