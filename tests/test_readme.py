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


@pytest.mark.parametrize(
    "workload, report", [("mnist", "docs/report"), ("fashion-mnist", "docs/report-fashion-mnist")]
)
def test_the_headline_numbers_are_the_committed_reports(workload, report):
    """Every number in the README's headline block comes from the committed report's results.json: the block
    is what `reproduction report --from DIR --readme README.md` writes, and a stale or hand-edited block is
    red."""
    from reproduction.report import load_results, readme_block

    root = README.parent
    plan, runs, verdicts = load_results(root / report)
    expected = readme_block(plan, runs, verdicts, report)
    assert expected in README.read_text(), (
        f"README's headline block for {workload} is stale: run 'reproduction report --from {report} --readme "
        "README.md'"
    )


def test_no_result_is_typed_outside_the_generated_blocks():
    """The README's prose quotes no percentage or ratio of its own: those live in the generated blocks."""
    text = README.read_text()
    prose = re.sub(r"<!-- headline:.*?<!-- /headline:[a-z-]+ -->", "", text, flags=re.S)
    prose = re.sub(r"```.*?```", "", prose, flags=re.S)
    assert not re.findall(r"\d+\.\d+ ?%|\d+\.\d+x\b", prose)
