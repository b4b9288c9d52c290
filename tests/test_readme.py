"""The README's example of the Keras recipe runs as written, on real MNIST (from the verified cache)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def example(heading: str) -> str:
    section = README.read_text().split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_use_it_in_your_own_model_runs_as_written():
    namespace = {}
    exec(compile(example("Use it in your own model"), "README.md", "exec"), namespace)
    assert int(namespace["model"].optimizer.iterations.numpy()) == 1488
    assert namespace["accuracy"] > 0.9
