"""Runs that begin alike train their common first epochs once (reproduction/sharing.py): the plan, and that
a run trained from a shared prefix is bit for bit the run trained whole, here and on Dask workers."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import synthetic_digits

from reproduction.cluster import train_on_cluster
from reproduction.config import RunConfig
from reproduction.errors import UsageError
from reproduction.runner import run_all
from reproduction.sharing import Prefixes, epoch_plan, share, shares_start
from reproduction.store import RunStore

DATA = synthetic_digits()
SMALL = dict(base_batch=20, factor=2, steps=3, epochs_per_step=1)  # B 20, 40, 80 on 600 examples
FAMILY = ("decay", "hybrid", "increase", "constant")


def family(optimizer="momentum", seed=0, **overrides):
    return [RunConfig(optimizer, s, seed=seed, **{**SMALL, **overrides}) for s in FAMILY]


def test_the_main_schedules_and_the_control_share_two_epochs_and_hybrid_and_increase_four():
    decay, hybrid, increase, constant = configs = family(epochs_per_step=2)
    plan = share(configs)
    assert [(p.epochs, p.parent, p.runs) for p in plan.prefixes] == [(2, None, 4), (4, 0, 2)]
    assert [plan.shared_epochs(c) for c in configs] == [2, 4, 4, 2]
    assert plan.epochs_trained() == 16 < plan.epochs_whole() == 4 * 6


BASE = RunConfig("momentum", "increase", seed=0, **SMALL)
OTHER_LINEAGES = {
    "seed": dataclasses.replace(BASE, seed=1),
    "optimizer": dataclasses.replace(BASE, optimizer="nesterov"),
    "data": dataclasses.replace(BASE, train_examples=500),
    "model": dataclasses.replace(BASE, model=dataclasses.replace(BASE.model, filters=4)),
    # the same rates and batches (4 x 5 = 20, 40, 80) at momentum 0.98
    "momentum": dataclasses.replace(BASE, schedule="increase-momentum", base_batch=4),
}


@pytest.mark.parametrize("other", OTHER_LINEAGES.values(), ids=OTHER_LINEAGES)
def test_runs_of_another_lineage_share_nothing(other):
    assert share([BASE, dataclasses.replace(BASE, schedule="hybrid")]).prefixes != ()
    plan = share([BASE, other])
    assert plan.prefixes == () and plan.epochs_trained() == plan.epochs_whole() == 2 * len(epoch_plan(BASE))
    if other.schedule == "increase-momentum":
        assert epoch_plan(other) == epoch_plan(BASE) and other.momentum != BASE.momentum


SCHEDULES = st.sampled_from(FAMILY + ("increase-initial-lr",))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(SCHEDULES, st.integers(0, 1), st.sampled_from([1, 2]), st.sampled_from([0.1, 0.05])),
        min_size=1,
        max_size=12,
    )
)
def test_every_run_starts_from_a_prefix_of_its_own_epochs(specs):
    configs = [
        RunConfig("sgd", s, seed=k, base_lr=lr, base_batch=20, factor=2, steps=3, epochs_per_step=e)
        for s, k, e, lr in specs
    ]
    plan = share(configs)
    for c in configs:
        i = plan.start(c)
        if i is not None:
            assert shares_start(c, plan.prefixes[i].config, plan.prefixes[i].epochs)
    for i, p in enumerate(plan.prefixes):
        assert p.runs >= 2 and sum(1 for c in set(configs) if _passes(plan, c, i)) == p.runs
        if p.parent is not None:
            parent = plan.prefixes[p.parent]
            assert (
                p.parent < i
                and parent.epochs < p.epochs
                and shares_start(p.config, parent.config, parent.epochs)
            )
    assert plan.epochs_trained() <= plan.epochs_whole() == sum(len(epoch_plan(c)) for c in set(configs))


def _passes(plan, config, i) -> bool:
    """Whether ``config`` starts from prefix ``i`` or from a descendant of it."""
    j = plan.start(config)
    while j is not None and j != i:
        j = plan.prefixes[j].parent
    return j == i


def test_each_prefix_is_trained_once_and_dropped_when_no_run_needs_it():
    configs = family(epochs_per_step=2)
    plan = share(configs)
    trained = []

    def train(prefix, parent):
        trained.append((prefix.epochs, parent))
        return f"after {prefix.epochs}"

    prefixes = Prefixes(plan, train)
    assert [prefixes.start(c) for c in configs] == ["after 2", "after 4", "after 4", "after 2"]
    assert trained == [(2, None), (4, "after 2")] and prefixes._held == {}


def _without_seconds(result):
    epochs = [
        {k: v for k, v in dataclasses.asdict(e).items() if not k.endswith("_seconds")} for e in result.epochs
    ]
    return result.config, epochs


@pytest.fixture(scope="module")
def whole():
    """Each run of two families (momentum and Adam, whose bias correction reads the restored iteration
    count) trained whole, one after another."""
    from reproduction.training import Trainer

    trainer = Trainer(DATA)
    return {c: trainer.train(c) for c in family() + family("adam", seed=1)}


def test_a_run_from_a_shared_prefix_is_the_run_trained_whole(whole, tmp_path):
    messages = []
    outcome = run_all(list(whole), DATA, RunStore(tmp_path), quiet=True, say=messages.append, timed=[])
    assert [_without_seconds(outcome.runs[c]) for c in whole] == [_without_seconds(r) for r in whole.values()]
    shared = {c.schedule: outcome.runs[c].metadata["shared_epochs"] for c in whole if c.optimizer == "adam"}
    assert shared == {"decay": 1, "hybrid": 2, "increase": 2, "constant": 1}
    assert sum("epochs of" in m and "runs, once" in m for m in messages) == 4  # two prefixes per family


@pytest.mark.alone  # trains timed runs
def test_timed_runs_train_whole(whole, tmp_path):
    configs = list(whole)[:4]
    outcome = run_all(configs, DATA, RunStore(tmp_path), quiet=True, say=lambda text: None, timed=configs[:2])
    assert [("shared_epochs" in outcome.runs[c].metadata) for c in configs] == [False, False, True, True]
    assert [_without_seconds(outcome.runs[c]) for c in configs] == [
        _without_seconds(whole[c]) for c in configs
    ]


@pytest.mark.alone  # trains timed runs
def test_a_timed_block_interleaves_its_epochs_and_keeps_every_bit(whole):
    """Round e trains epoch e of each run in the block's order, so a drift of the host's speed falls on every
    schedule alike; each run is still the run trained whole, with its own host-load record."""
    from reproduction.training import Trainer

    block = [c for c in whole if c.optimizer == "adam"][:3]  # Adam: bias correction reads the iterations
    order = []
    results = Trainer(DATA).train_timed(block, on_epoch=lambda e: order.append(e.epoch))
    assert order == [e for e in range(3) for _ in block]
    assert [_without_seconds(r) for r in results] == [_without_seconds(whole[c]) for c in block]
    for r in results:
        assert r.metadata["timed_block"] == [c.key() for c in block] and "shared_epochs" not in r.metadata
        assert r.metadata["host_load"]["other_cores"] is not None
        assert r.metadata["host_load"]["wall_seconds"] >= r.train_seconds


def test_a_snapshot_of_another_run_is_refused():
    from reproduction.training import Trainer

    trainer = Trainer(DATA)
    decay, hybrid, _, _ = family()
    start = trainer.train_prefix(hybrid, 2)
    with pytest.raises(UsageError, match=r"start: a snapshot of .* first 2 epochs is not the start of"):
        trainer.train(decay, start=start)  # decay's second epoch runs at half the rate


@pytest.mark.slow
def test_dask_workers_hand_each_run_its_prefix(whole):
    results = {r.config: r for r in train_on_cluster(list(whole), DATA, workers=2)}
    assert {c: _without_seconds(r) for c, r in results.items()} == {
        c: _without_seconds(r) for c, r in whole.items()
    }
    assert [results[c].metadata.get("shared_epochs") for c in family()] == [1, 2, 2, 1]


def test_a_models_random_state_is_part_of_the_snapshot():
    """A user's model with Dropout: its seed generator's state moves with every update, and is no weight
    (``get_weights`` leaves it out). Shared or whole, each run on a fresh Trainer, the runs agree."""
    import my_model_variants as variants

    from reproduction.training import Trainer
    from reproduction.workloads import get_workload, register

    base = get_workload("tests.my_model:workload")
    workload = register(dataclasses.replace(base, name="my-model-dropout", build_model=variants.with_dropout))
    data = workload.source().load()
    configs = [workload.config("momentum", s, 0) for s in FAMILY]
    whole = [Trainer(data).train(c) for c in configs]
    trainer = Trainer(data)
    prefixes = Prefixes(share(configs), lambda p, parent: trainer.train_prefix(p.config, p.epochs, parent))
    shared = [trainer.train(c, start=prefixes.start(c)) for c in configs]
    assert [_without_seconds(r) for r in shared] == [_without_seconds(r) for r in whole]
    reused = trainer.train(configs[0])  # the engine reused from the runs before: its state reset too
    assert _without_seconds(reused) == _without_seconds(whole[0])
