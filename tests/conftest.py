"""The unit tests' own rule: under pytest-xdist (tox's unit env) a timed run trains only in a test marked
``alone``. Other test processes share the machine then, so its host-load record would call it not alone and
the runner would train it again; tox runs the ``alone`` tests by themselves, after the others."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _timed_runs_only_in_alone_tests(request, monkeypatch):
    if "PYTEST_XDIST_WORKER" not in os.environ or request.node.get_closest_marker("alone"):
        return
    from reproduction.training import Trainer

    def refuse(self, block, on_epoch=None):
        raise AssertionError(
            f"{request.node.nodeid} trains {block[0].key()} timed beside other test processes: mark the "
            "test alone (CONTRIBUTING.md)"
        )

    monkeypatch.setattr(Trainer, "train_timed", refuse)
