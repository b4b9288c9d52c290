"""The documentation holds together: every relative link resolves, and the index lists every page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "CHANGELOG.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)  # code, not links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = [t for t in _relative_links(page) if not (page.parent / t.split("#")[0]).exists()]
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_the_index_lists_every_page():
    listed = set(_relative_links(ROOT / "docs" / "README.md"))
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"README.md"}
    assert not pages - listed, f"docs/README.md does not list {sorted(pages - listed)}"


def test_documented_non_reproductions_quote_the_committed_reports_intervals():
    """A documented non-reproduction's reason quotes its 90% interval by hand ("[-0.72, -0.55]"): it must be
    the committed report's, at the digits quoted (they drifted once when the reports were rebuilt)."""
    from reproduction import claims
    from reproduction.report import load_results

    report = "report-full"  # MNIST's full profile: the reports whose reasons quote intervals
    plan, _, verdicts = load_results(ROOT / "docs" / report)
    judged = {(v.claim, v.params): v for v in verdicts}
    quoted = 0
    for claim in claims.claims_in(plan):
        for params, known in claim.known_failures_in(plan).items():
            v = judged[(claim.id, params)]
            for low, high in re.findall(r"\[([-+]?\d+\.\d+), ([-+]?\d+\.\d+)\]", known.reason):
                digits = len(low.split(".")[1])
                assert (float(low), float(high)) == (round(v.low, digits), round(v.high, digits)), (
                    f"{claim.id}[{params}] quotes [{low}, {high}]; {report} has [{v.low:.4g}, {v.high:.4g}]"
                )
                quoted += 1
    assert quoted >= 6
