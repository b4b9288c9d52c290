"""The report's figures (PNG, matplotlib), from runs only: one function per figure, each returns its path."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from reproduction.atomic import atomic_write_bytes  # noqa: E402
from reproduction.config import RunConfig  # noqa: E402
from reproduction.results import RunResult  # noqa: E402
from reproduction.schedules import MAIN_SCHEDULES  # noqa: E402

COLORS = {"decay": "tab:blue", "hybrid": "tab:orange", "increase": "tab:green"}
# The three schedules often coincide (that is the claim): wide solid, dashed and dotted lines keep each
# visible.
STYLES = {
    "decay": dict(linestyle="-", linewidth=4.0, alpha=0.55, marker="o", markersize=7),
    "hybrid": dict(linestyle="--", linewidth=2.4, marker="s", markersize=5),
    "increase": dict(linestyle=":", linewidth=2.2, marker="^", markersize=5),
}
Runs = Mapping[RunConfig, RunResult]


def _save(fig, path: Path) -> Path:
    """Written whole or not at all, as every other file of a report (atomic.py)."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=110, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _curves(plan, runs: Runs, optimizer: str, schedule: str, seeds, field: str, x_field: str = "epoch"):
    """(x, mean, low, high) over seeds of a per-epoch field; x_field 'epoch' (1-based) or 'updates'."""
    results = [runs[plan.config(optimizer, schedule, k)] for k in seeds]
    ys = np.array([[getattr(e, field) for e in r.epochs] for r in results], dtype=float)
    if x_field == "updates":
        x = np.cumsum([e.steps for e in results[0].epochs])
    else:
        x = np.arange(1, ys.shape[1] + 1)
    return x, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def schedules_figure(plan, out: Path) -> Path:
    """Paper Fig. 1: learning rate, batch size and noise scale per epoch (the first optimizer's base rate)."""
    from reproduction.claims.updates import workload_schedules

    w = plan.workload
    sched = workload_schedules(w, w.learning_rate(plan.optimizers[0]))
    n_examples = w.n_train
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, s in sched.items():
        epochs = np.arange(1, s.epochs + 1)
        style = {k: v for k, v in STYLES[name].items() if not k.startswith("marker")}
        kw = dict(where="mid", color=COLORS[name], label=name, **style)
        axes[0].step(epochs, [s.learning_rate(e) for e in range(s.epochs)], **kw)
        axes[1].step(epochs, [s.batch_size(e) for e in range(s.epochs)], **kw)
        axes[2].step(epochs, s.noise_scale(n_examples), **kw)
    for ax, title in zip(
        axes, ("learning rate eps", "batch size B", "noise scale g = eps N / B"), strict=True
    ):
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    return _save(fig, out / "fig1_schedules.png")


def _per_optimizer(
    plan,
    runs: Runs,
    seeds,
    out: Path,
    name: str,
    field: str,
    ylabel: str,
    x_field="epoch",
    log_y=False,
    percent=False,
) -> Path:
    optimizers = plan.optimizers
    fig, axes = plt.subplots(1, len(optimizers), figsize=(4 * len(optimizers), 3.6), sharey=True)
    for ax, optimizer in zip(np.atleast_1d(axes), optimizers, strict=True):
        for schedule in MAIN_SCHEDULES:
            x, mean, low, high = _curves(plan, runs, optimizer, schedule, seeds, field, x_field)
            scale = 100.0 if percent else 1.0
            ax.plot(x, scale * mean, color=COLORS[schedule], label=schedule, **STYLES[schedule])
            ax.fill_between(x, scale * low, scale * high, color=COLORS[schedule], alpha=0.12)
        ax.set_title(f"{optimizer} (base lr {plan.workload.learning_rate(optimizer):g})")
        ax.set_xlabel("parameter updates" if x_field == "updates" else "epoch")
        if log_y:
            ax.set_yscale("log")
        if x_field == "updates":
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel(ylabel)
    np.atleast_1d(axes)[0].legend()
    fig.suptitle(f"{ylabel}: mean over {len(seeds)} seed(s), band = min..max", fontsize=10)
    return _save(fig, out / name)


def accuracy_vs_epoch(plan, runs, out):
    """Paper Fig. 2a, the report's plots: test accuracy per epoch, three schedules overlaid."""
    return _per_optimizer(
        plan,
        runs,
        plan.seeds,
        out,
        "fig2a_test_accuracy_vs_epoch.png",
        "test_accuracy",
        "test accuracy (%)",
        percent=True,
    )


def accuracy_vs_updates(plan, runs, out):
    """Paper Fig. 2b: test accuracy against parameter updates."""
    return _per_optimizer(
        plan,
        runs,
        plan.seeds,
        out,
        "fig2b_test_accuracy_vs_updates.png",
        "test_accuracy",
        "test accuracy (%)",
        x_field="updates",
        percent=True,
    )


def train_loss_vs_epoch(plan, runs, out):
    """Paper Fig. 3: training loss per epoch."""
    return _per_optimizer(
        plan, runs, plan.seeds, out, "fig3_train_loss_vs_epoch.png", "train_loss", "training loss", log_y=True
    )


def train_time(plan, runs: Runs, out: Path) -> Path:
    """The report's time plots: training seconds per schedule and optimizer (median bar, timed seeds as
    dots)."""
    optimizers = plan.optimizers
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.26
    for j, schedule in enumerate(MAIN_SCHEDULES):
        for i, optimizer in enumerate(optimizers):
            t = [runs[plan.config(optimizer, schedule, k)].train_seconds for k in plan.timed_seeds]
            x = i + (j - 1) * width
            ax.bar(x, np.median(t), width, color=COLORS[schedule], label=schedule if i == 0 else None)
            ax.scatter([x] * len(t), t, color="black", s=8, zorder=3)
    ax.set_xticks(range(len(optimizers)), list(optimizers))
    ax.set_ylabel(f"training seconds ({plan.workload.steps * plan.workload.epochs_per_step} epochs)")
    ax.set_title("training wall clock per schedule (timed runs, alone; evaluation excluded)", pad=24)
    ax.legend(
        ncol=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False
    )  # above: never hides a dot
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out / "fig5_train_time.png")


def epoch_seconds_vs_batch(plan, runs: Runs, out: Path) -> Path:
    """Seconds per training epoch against batch size, from every epoch after the first of the timed runs."""
    by_batch: dict[int, list[float]] = {}
    for optimizer in plan.optimizers:
        for schedule in MAIN_SCHEDULES:
            for k in plan.timed_seeds:
                for e in runs[plan.config(optimizer, schedule, k)].epochs[1:]:
                    by_batch.setdefault(e.batch_size, []).append(e.train_seconds)
    batches = sorted(by_batch)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    ax.boxplot([by_batch[b] for b in batches], positions=range(len(batches)), widths=0.5)
    ax.set_xticks(range(len(batches)), [str(b) for b in batches])
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"seconds per {plan.workload.n_train}-image epoch")
    ax.set_title("training seconds per epoch vs batch size")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out / "fig6_epoch_seconds_vs_batch.png")


def gradient_noise_scale(plan, runs: Runs, out: Path) -> Path:
    """B_simple per epoch pooled over seeds (mean tr(Sigma) / mean |G|^2), per schedule, with the schedule's
    batch size as thin steps; an unresolved epoch (|G|^2 within two standard errors of 0) at its lower bound,
    open; log scale."""
    optimizers, seeds = plan.optimizers, plan.seeds
    fig, axes = plt.subplots(1, len(optimizers), figsize=(4 * len(optimizers), 3.8), sharey=True)
    for ax, optimizer in zip(np.atleast_1d(axes), optimizers, strict=True):
        for schedule in MAIN_SCHEDULES:
            _noise_curve(ax, schedule, [runs[plan.config(optimizer, schedule, k)] for k in seeds])
        ax.set_yscale("log")
        ax.set_title(f"{optimizer}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("examples")
    np.atleast_1d(axes)[0].legend(fontsize=7, ncol=2)
    fig.suptitle(
        f"gradient noise scale B_simple (thick; open: lower bound) and batch size B (thin), {len(seeds)} "
        "seed(s)",
        fontsize=10,
    )
    return _save(fig, out / "fig7_gradient_noise_scale.png")


def _noise_curve(ax, schedule: str, results) -> None:
    """One schedule's pooled B_simple per epoch (filled markers resolved, open ones lower bounds) and B."""
    from reproduction.noise_scale import pooled

    points = [pooled([r.epochs[i].noise for r in results]) for i in range(len(results[0].epochs))]
    x = np.arange(1, len(points) + 1)
    y = [p.b_simple if p.resolved else p.lower_bound for p in points]
    y = [v if math.isfinite(v) and v > 0 else np.nan for v in y]  # 0: nothing ruled in
    line_style = {k: v for k, v in STYLES[schedule].items() if k != "marker"}
    ax.plot(x, y, color=COLORS[schedule], label=f"B_simple, {schedule}", **line_style, marker=None)
    for flag, face in ((True, COLORS[schedule]), (False, "none")):
        chosen = [(xi, yi) for xi, yi, p in zip(x, y, points, strict=True) if p.resolved == flag]
        ax.scatter(
            [c[0] for c in chosen],
            [c[1] for c in chosen],
            marker=STYLES[schedule]["marker"],
            facecolors=face,
            edgecolors=COLORS[schedule],
            s=30,
            zorder=3,
        )
    batches = [e.batch_size for e in results[0].epochs]
    ax.step(x, batches, where="mid", color=COLORS[schedule], linewidth=1.0, alpha=0.7, label=f"B, {schedule}")


FROM_RUNS = (
    accuracy_vs_epoch,
    accuracy_vs_updates,
    train_loss_vs_epoch,
    train_time,
    epoch_seconds_vs_batch,
    gradient_noise_scale,
)


def all_figures(plan, runs: Runs, out: Path) -> list[Path]:
    """Every figure of the report, from the plan's runs."""
    out.mkdir(parents=True, exist_ok=True)
    return [schedules_figure(plan, out)] + [figure(plan, runs, out) for figure in FROM_RUNS]
