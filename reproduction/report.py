"""REPORT.md, results.json and the README's headline block, from runs: the same claims, evaluations and
outcome rules as the claims tests (``claims.evaluate``, ``claims.status``).

``build_report`` writes results.json (every run, the verdicts), the figures and REPORT.md;
``rebuild_report`` reads results.json back (every field checked, errors naming the file and the field) and
writes the same REPORT.md and figures without training; ``headline`` is the README's generated block.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from reproduction import calibration, claims, figures, noise_scale, stats
from reproduction.atomic import atomic_write_bytes, atomic_write_json, check_directory, ensure_directory
from reproduction.claims import Plan, Status, gradient_noise
from reproduction.config import RunConfig
from reproduction.errors import UsageError
from reproduction.results import RunResult
from reproduction.schedules import MAIN_SCHEDULES, Schedule
from reproduction.stats import HOLDS, Verdict

Runs = Mapping[RunConfig, RunResult]
MARK = {"holds": "holds", "refuted": "**refuted**", "undecided": "*undecided*"}


# ------------------------------------------------------------------------------------------------ verdicts
def evaluate_all(
    plan: Plan, runs: Runs, known: Mapping[tuple[str, str], Verdict] | None = None
) -> list[Verdict]:
    """Every verdict of the plan's claims. ``known``: verdicts already computed for claims that read no run
    (checks of the layer and the schedules), reused by ``report --from`` so rebuilding needs no TensorFlow."""
    out = []
    for claim in claims.claims_in(plan):
        params = claim.params_for(plan)
        if not params:
            continue
        stored = [(known or {}).get((claim.id, p)) for p in params]
        if not claim.reads_runs and all(stored):
            out += stored
        else:
            out += list(claims.evaluate(claim.id, plan, runs).values())
    return out


def tally(verdicts: Sequence[Verdict], plan: Plan) -> str:
    """'54 hold, 4 refuted (4 documented), 5 undecided (3 declared, 2 documented)'."""
    parts = []
    for outcome, word in ((stats.HOLDS, "hold"), (stats.REFUTED, "refuted"), (stats.UNDECIDED, "undecided")):
        these = [v for v in verdicts if v.verdict == outcome]
        kinds = [_kind(v, plan) for v in these]
        shown = (UNPOWERED, Status.DECLARED, Status.DOCUMENTED)
        notes = [f"{kinds.count(s)} {s}" for s in shown if kinds.count(s)]
        failing = sum(k == Status.FAIL for k in kinds) if outcome != stats.REFUTED else 0
        if failing:
            notes.append(f"{failing} NOT declared")
        parts.append(f"{len(these)} {word}" + (f" ({', '.join(notes)})" if notes else ""))
    red = sum(claims.status(v, plan)[0] in (Status.FAIL, Status.REPRODUCES) for v in verdicts)
    return ", ".join(parts) + f"; {red} red"


UNPOWERED = "unpowered, as pre-registered"  # an xfail for want of power, named apart from other declarations


def _kind(v: Verdict, plan: Plan) -> str:
    """A verdict's outcome, UNPOWERED where it is an xfail for want of power as pre-registered."""
    kind = claims.status(v, plan)[0]
    return UNPOWERED if kind == Status.DECLARED and v.no_power else kind


def _fmt(v: Verdict) -> str:
    if v.low == v.high:
        return f"{v.effect:.4g}{v.unit}"
    return f"{v.effect:.4g}{v.unit} [{v.low:.4g}, {v.high:.4g}]"


def verdict_table(verdicts: Sequence[Verdict], plan: Plan) -> list[str]:
    lines = [
        "| claim | source | params | measured effect [90% interval] | bound | verdict | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        kind, why = claims.status(v, plan)
        verdict = MARK[v.verdict] + ("" if kind == Status.PASS else f" ({why})")
        if v.n_to_decide:
            verdict += f" (~{v.n_to_decide} {v.n_unit} would decide)"
        source = claims.get_claim(v.claim).source
        lines.append(
            f"| {v.claim} | {source} | {v.params} | {_fmt(v)} | {v.bound} | {verdict} | "
            f"{v.detail.replace('|', '/')} |"
        )
    return lines


def _fixed(v: Verdict, digits: int) -> str:
    return f"{v.effect:+.{digits}f}{v.unit} [{v.low:+.{digits}f}, {v.high:+.{digits}f}]"


def controls_table(plan: Plan, verdicts: Sequence[Verdict]) -> list[str]:
    """Beside each equivalence verdict, its pre-registered negative controls, judged by the same test at
    the same refutation level: refuted controls are the demonstration that the claim could have failed."""
    by_key = {(v.claim, v.params): v for v in verdicts}
    lines = [
        "| optimizer | equivalence claim | hybrid - decay | increase - decay | negative controls - decay "
        "(must be refuted at the claim's level) |",
        "|---|---|---|---|---|",
    ]
    for o in plan.optimizers:
        for claim_id in claims.GUARDED_CLAIMS:
            eq = [by_key.get((claim_id, f"{o}-{s}")) for s in ("hybrid", "increase")]
            controls = [
                (c, by_key.get(("negative-control", f"{o}-{c.name}")))
                for c in plan.controls(o)
                if c.claim == claim_id
            ]
            if any(v is None for v in eq) or any(v is None for _, v in controls):
                continue  # a claim or control this profile does not judge
            digits = 4 if claim_id == "train-loss-equivalent" else 2
            shown = "; ".join(f"{c.name}: {_fixed(v, digits)} {_control_mark(v, plan)}" for c, v in controls)
            lines.append(
                f"| {o} | {claim_id} | {_fixed(eq[0], digits)} {MARK[eq[0].verdict]} | "
                f"{_fixed(eq[1], digits)} {MARK[eq[1].verdict]} | {shown or 'none judged in this profile'} |"
            )
    return lines


def _control_mark(v: Verdict, plan: Plan) -> str:
    if v.verdict == HOLDS:
        return "(refuted: discriminates)"
    documented = claims.status(v, plan)[0] == Status.DOCUMENTED
    return "(**not refuted**: no demonstrated power, documented)" if documented else "(**not refuted**)"


def annealing_table(plan: Plan, runs: Runs, verdicts: Sequence[Verdict]) -> list[str]:
    """Does lowering the noise scale matter at all here? constant (none) against decay, paired by seed: the
    train loss from the constant control's own verdict, the test accuracy beside it."""
    w = plan.workload
    by_key = {(v.claim, v.params): v for v in verdicts}
    rows = []
    if any(c.name == "constant" for c in w.controls):
        constant = w.control("constant")
        for o in plan.optimizers:
            if constant not in plan.controls(o):
                continue
            pairs = [(constant.config(w, o, k), plan.config(o, "decay", k)) for k in plan.seeds]
            rows.append(
                (
                    o,
                    pairs,
                    by_key.get(("negative-control", f"{o}-constant")),
                    claims.control_margin(plan, o, "train-loss-equivalent")[0],
                )
            )
    if w.high_noise is not None:
        h = w.high_noise
        rows.append(
            (
                f"{h.optimizer} at B {h.base_batch} (claim high-noise)",
                [(h.config(w, "constant", k), h.config(w, "decay", k)) for k in plan.seeds],
                by_key.get(("high-noise", "constant-control")),
                w.high_noise_margin(),
            )
        )
    lines = [
        "| optimizer | train loss constant - decay [90%] | margin | test accuracy constant - decay [90%] | "
        "annealing matters here |",
        "|---|---|---|---|---|",
    ]
    for label, pairs, verdict, margin in rows:
        if verdict is None:
            continue
        acc = stats.paired_interval(claims.base.paired(runs, pairs, "test_accuracy").differences)
        answer = "yes" if verdict.verdict == HOLDS else "no: not told apart from decay"
        lines.append(
            f"| {label} | {_fixed(verdict, 4)} | {margin:.4f} | {acc[0]:+.2f} pt [{acc[1]:+.2f}, "
            f"{acc[2]:+.2f}] | {answer} |"
        )
    return lines


def _b_simple(scale) -> str:
    """A pooled B_simple with its resolution: the value where |G|^2 is resolved, else its lower bound; '?'
    where that bound is 0 (nothing ruled in: ``_batch_over_b_simple``)."""
    if scale.resolved:
        return f"{scale.b_simple:.0f}"
    return f"> {scale.lower_bound:.0f}" if scale.lower_bound > 0 else "?"


def _batch_over_b_simple(batch: int, scale) -> str:
    """B / B_simple, or its upper bound where |G|^2 is not resolved; '?' where the bound is 0 (a single
    estimate has no standard error, so nothing is ruled in)."""
    if scale.resolved:
        return f"{batch / scale.b_simple:.2f}"
    return f"< {batch / scale.lower_bound:.2f}" if scale.lower_bound > 0 else "?"


def noise_scale_tables(plan: Plan, runs: Runs) -> list[str]:
    """B_simple beside McCandlish et al.'s MNIST figures (a remark: other models), and each schedule's batch
    size against B_simple per phase. Pooled over seeds and epochs: mean tr(Sigma) / mean |G|^2."""
    w = plan.workload
    grid = {
        (o, s): [runs[plan.config(o, s, k)] for k in plan.seeds]
        for o in plan.optimizers
        for s in MAIN_SCHEDULES
    }
    if any(math.isnan(r.final.gradient_trace) for rs in grid.values() for r in rs):
        return ["(Runs without the gradient noise scale: retrain them with this code version.)"]
    first = noise_scale.pooled([r.epochs[0].noise for rs in grid.values() for r in rs])
    lines = [
        "| | this model | McCandlish et al., MNIST |",
        "|---|---|---|",
        f"| B_simple over the first epoch (every main-grid run) | {_b_simple(first)} | about "
        f"{gradient_noise.PAPER_MNIST_START} at the start of training |",
    ]
    for o in plan.optimizers:
        scale = noise_scale.pooled([e.noise for s in MAIN_SCHEDULES for r in grid[(o, s)] for e in r.epochs])
        lines.append(
            f"| B_simple averaged over training, {o} (main grid, every epoch) | {_b_simple(scale)} | about "
            f"{gradient_noise.PAPER_MNIST_AVERAGE} |"
        )
    lines += [
        "",
        "Batch size B against B_simple per phase (pooled over the phase's epochs and the seeds): B / "
        "B_simple well below 1 means larger batches would still have paid; above 1, an update's extra "
        "examples mostly average away noise that no longer dominates. Where |G|^2 is not resolved (within "
        "two standard errors of 0), B_simple is shown as its lower bound (> value).",
        "",
        "| optimizer | schedule | "
        + " | ".join(f"phase {p + 1}: B, B_simple, B / B_simple" for p in range(w.steps))
        + " |",
        "|---|---|" + "---|" * w.steps,
    ]
    for (o, s), rs in grid.items():
        cells = []
        for p in range(w.steps):
            records = [e for r in rs for e in r.epochs if e.epoch // w.epochs_per_step == p]
            b, scale = records[0].batch_size, noise_scale.pooled([e.noise for e in records])
            cells.append(f"{b}, {_b_simple(scale)}, {_batch_over_b_simple(b, scale)}")
        lines.append(f"| {o} | {s} | " + " | ".join(cells) + " |")
    return lines


def optimizer_tables(plan: Plan, runs: Runs) -> list[str]:
    lines = []
    for o in plan.optimizers:
        lines += [
            f"#### {o}",
            "",
            "| schedule | final test accuracy (mean ± sd) | parameter updates | train seconds (median, "
            "timed seeds) | final train loss (mean) |",
            "|---|---|---|---|---|",
        ]
        for s in MAIN_SCHEDULES:
            rs = [runs[plan.config(o, s, k)] for k in plan.seeds]
            timed = [runs[plan.config(o, s, k)].train_seconds for k in plan.timed_seeds]
            acc = np.array([100 * r.final.test_accuracy for r in rs])
            sd = f" ± {acc.std(ddof=1):.2f}" if len(acc) > 1 else ""
            lines.append(
                f"| {s} | {acc.mean():.2f}%{sd} | {rs[0].parameter_updates} | {np.median(timed):.2f} | "
                f"{np.mean([r.final.train_loss for r in rs]):.4f} |"
            )
        lines.append("")
    return lines


# -------------------------------------------------------------------------------------------------- prose
def describe_schedule(schedule: Schedule, base_lr: float, base_batch: int) -> str:
    """'B 100; eps, eps/5, eps/25' style, from the phases themselves."""

    def lr(value):
        ratio = base_lr / value
        return "eps" if abs(ratio - 1) < 1e-9 else f"eps/{ratio:g}"

    lrs = [lr(p.learning_rate) for p in schedule.phases]
    batches = [str(p.batch_size) for p in schedule.phases]
    lr_text = lrs[0] if len(set(lrs)) == 1 else ", ".join(lrs)
    batch_text = f"B {batches[0]}" if len(set(batches)) == 1 else "B " + ", ".join(batches)
    return f"{schedule.name} ({batch_text}; {lr_text})"


def _calibration_seeds(plan: Plan) -> str:
    seeds = sorted({k for m in calibration.read_margins(plan.workload).values() for k in m.seeds})
    return f"{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else str(seeds)


def _interleaved(plan: Plan, runs: Runs) -> str:
    """How the timed blocks trained: their epochs interleaved (code version 6 on), or back to back."""
    timed = [runs[c] for c in claims.main_grid(plan, plan.timed_seeds) if c in runs]
    n = sum("timed_block" in r.metadata for r in timed)
    if n == len(timed):
        return ", each block's epochs interleaved"
    return f" ({n} of {len(timed)} runs with their block's epochs interleaved, the rest back to back)"


def _dirty(meta) -> str:
    return " with uncommitted changes" if meta.get("git_dirty") else ""


def _model_line(w, meta) -> str:
    if w.build_model is None:
        return w.model.describe()
    return (
        f"`{meta.get('model')}` from the workload's build_model, {meta.get('parameters')} parameters, "
        "trained through the generic engine (reproduction/classifier.py); noise scale: "
        f"{meta.get('noise_scale')}"
    )


def _shown_path(path) -> str:
    """A path inside the project relative to its root (reproduction/workloads/mnist.json), else as given."""
    root = Path(__file__).resolve().parent.parent
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


def setup_lines(plan: Plan, runs: Runs) -> list[str]:
    from reproduction.claims.updates import workload_schedules

    w = plan.workload
    meta = next(iter(runs.values())).metadata
    lr = w.learning_rate(plan.optimizers[0])
    schedules = ", ".join(describe_schedule(s, lr, w.base_batch) for s in workload_schedules(w, lr).values())
    in_workers = sum(r.metadata.get("trained_in") == "worker" for r in runs.values())
    shared = sum("shared_epochs" in r.metadata for r in runs.values())
    rates = ", ".join(f"{o} {w.learning_rate(o):g}" for o in plan.optimizers)
    return [
        f"- Data: {w.notes}; {meta.get('n_train')} training and {meta.get('n_test')} test images in these "
        "runs.",
        f"- Model: {_model_line(w, meta)}.",
        f"- Schedules: {w.steps * w.epochs_per_step} epochs, a step every {w.epochs_per_step} epochs, "
        f"factor {w.factor}, base batch {w.base_batch}: {schedules}.",
        "- Base learning rates, one per optimizer shared by every schedule (the paper's protocol), tuned "
        f"on the decay schedule on seeds no claim reads (`reproduction tune`, docs/tuning.md): {rates}.",
        f"- Seeds: {list(plan.seeds)} judged; the main grid of seeds {list(plan.timed_seeds)} trained timed, "
        f"alone, in counterbalanced order{_interleaved(plan, runs)}. Train-loss margins: pre-registered in "
        f"{_shown_path(w.preregistration)}, 2 sd of decay's final train loss over "
        f"seeds {_calibration_seeds(plan)} (`reproduction calibrate`).",
        f"- Software: TensorFlow {meta.get('tensorflow')}, Keras {meta.get('keras')}, NumPy "
        f"{meta.get('numpy')}, Python {meta.get('python')}; code version {meta.get('code_version')}, commit "
        f"{(meta.get('git_commit') or 'unknown')[:10]}{_dirty(meta)} (of the first run).",
        f"- {machines_line(runs)}; {in_workers} untimed runs trained in worker processes in parallel"
        + (
            f", {shared} from the first epochs they share with runs that begin alike, trained once"
            if shared
            else ""
        )
        + "; op determinism on.",
    ]


def machines_line(runs: Runs) -> str:
    """Where the runs trained: each CPU, and on it each TensorFlow thread setting with its number of runs
    (bits are the same only on a CPU of the same kind, so a report whose runs came from two kinds says so).
    Runs stored before 2026-12-04 recorded no inter-op count (0): shown as '?'."""
    by_cpu: dict[tuple, dict[tuple, int]] = {}
    for r in runs.values():
        m = r.metadata
        threads = by_cpu.setdefault((m.get("cpu"), m.get("cpu_count")), {})
        key = (m.get("intra_op_threads"), m.get("inter_op_threads") or "?")
        threads[key] = threads.get(key, 0) + 1
    parts = []
    for (cpu, n_cores), threads in by_cpu.items():
        settings = ", ".join(
            f"intra {intra} / inter {inter}"
            + (f" ({n} run{'s' * (n != 1)})" if len(threads) > 1 or len(by_cpu) > 1 else "")
            for (intra, inter), n in sorted(threads.items(), key=lambda kv: -kv[1])
        )
        parts.append(f"{cpu}, {n_cores} cores, TensorFlow threads {settings}")
    return ("Machines: " if len(parts) > 1 else "Machine: ") + "; ".join(parts)


def _left_to_full(plan: Plan) -> list[str]:
    full = Plan(plan.workload, plan.workload.profile("full"))
    left = [c.id for c in claims.claims_in(full) if not c.applies(plan) and c.params_for(plan)]
    if not left or plan.profile.full:
        return []
    return [
        f"Evaluated in the full profile only (their runs would take the {plan.profile.name} profile past "
        f"its time budget), so untested here: {', '.join(f'`{c}`' for c in left)}.",
        "",
    ]


def _expectations(plan: Plan, verdicts: Sequence[Verdict]) -> list[str]:
    lines = []
    for claim in claims.claims_in(plan):
        for p, k in claim.known_failures_in(plan).items():
            lines.append(
                f"- `{claim.id}[{p}]` (documented non-reproduction, {'/'.join(k.verdicts)} in "
                f"[{k.effect_range[0]:g}, {k.effect_range[1]:g}]): {k.reason}"
            )
        for p, d in claim.declared_undecided_in(plan).items():
            when = "; declared AFTER a run of the suite had read these runs" if d.after_reading else ""
            lines.append(
                f"- `{claim.id}[{p}]` (may be undecided in this profile, expected in [{d.effect_range[0]:g}, "
                f"{d.effect_range[1]:g}], about {d.seeds_to_decide} seeds would decide{when}): {d.reason}"
            )
    unpowered = [f"`{v.claim}[{v.params}]`" for v in verdicts if _kind(v, plan) == UNPOWERED]
    if unpowered:
        lines.append(
            f"- {', '.join(unpowered)}: undecided for want of power, as the pre-registration predicts (no "
            "control of the claim discriminates at this profile's seeds): each held inside its margin, as a "
            "schedule that does not anneal would"
        )
    return (
        [
            "### Declarations: documented non-reproductions and possibly undecided verdicts",
            "",
            *lines,
            "",
        ]
        if lines
        else []
    )


CAPTIONS = {
    "fig1_schedules.png": "Learning rate, batch size and noise scale per epoch (paper Fig. 1).",
    "fig2a_test_accuracy_vs_epoch.png": "Test accuracy per epoch (paper Fig. 2a; the report's plots).",
    "fig2b_test_accuracy_vs_updates.png": "Test accuracy against parameter updates (paper Fig. 2b).",
    "fig3_train_loss_vs_epoch.png": "Training loss per epoch (paper Fig. 3).",
    "fig5_train_time.png": "Training wall clock per schedule (the report's time plots; timed runs).",
    "fig6_epoch_seconds_vs_batch.png": "Seconds per epoch against batch size (timed runs, warm-up epoch "
    "left out).",
    "fig7_gradient_noise_scale.png": "Gradient noise scale B_simple per epoch, pooled over seeds (open "
    "markers: unresolved, at their lower bound), with each schedule's batch size (thin steps).",
}


def render(plan: Plan, runs: Runs, verdicts: Sequence[Verdict], figure_names: Sequence[str]) -> str:
    w = plan.workload
    lines = [
        f"# Reproduction report: Don't Decay the Learning Rate, Increase the Batch Size (on {w.title})",
        "",
        f"Workload **{w.name}**, profile **{plan.profile_label}**: {len(plan.seeds)} seed(s) per "
        f"configuration, {len(runs)} runs. Verdicts: {tally(verdicts, plan)}.",
        "Generated by `reproduction reproduce` (or rebuilt by `reproduction report --from DIR`) from "
        "`results.json`; nothing here is edited by hand.",
        "",
        "## Setup",
        "",
        *setup_lines(plan, runs),
        "",
        *_claims_section(plan, verdicts),
        *_controls_section(plan, runs, verdicts),
        "## The gradient noise scale (McCandlish et al. 2018)",
        "",
        "The paper lowers the SGD noise scale g = eps N / (B (1-m)); the gradient noise scale B_simple = "
        "tr(Sigma) / |G|^2 is the batch size beyond which a larger batch stops paying "
        "(reproduction/noise_scale.py). Claim `noise-scale-rises` is in the table above.",
        "",
        *noise_scale_tables(plan, runs),
        "",
        "## Results per optimizer",
        "",
        *optimizer_tables(plan, runs),
        "## Figures",
        "",
    ]
    for name in figure_names:
        lines += [f"**{CAPTIONS.get(name, name)}**", "", f"![{name}]({name})", ""]
    return "\n".join(lines)


def _claims_section(plan: Plan, verdicts: Sequence[Verdict]) -> list[str]:
    return [
        "## Claims",
        "",
        "Each row is one claim and parameter set, evaluated by the same code as `pytest claims/`. Intervals "
        "are two-sided 90% t intervals (the TOST convention). A verdict is red unless it holds, is a "
        "documented non-reproduction inside its range, or is undecided as declared for this profile (in "
        "advance, unless the declaration says otherwise). An equivalence that holds inside its margin while "
        "none of its negative controls is told apart is undecided: it has shown no power.",
        "",
        *verdict_table(verdicts, plan),
        "",
        *_left_to_full(plan),
        *_expectations(plan, verdicts),
    ]


def _controls_section(plan: Plan, runs: Runs, verdicts: Sequence[Verdict]) -> list[str]:
    w = plan.workload
    controls = "; ".join(f"**{c.name}**: {c.description} (guards {c.claim})" for c in w.controls)
    return [
        "## Could the equivalence verdicts have failed?",
        "",
        "Each equivalence claim has pre-registered negative controls (the workload's definition, "
        f"docs/preregistration.md): configurations the theory says must not match decay. {controls}. Each is "
        "compared with decay by the same TOST, margin and refutation level as the claim it guards; a "
        "refuted control shows that the claim's test could have failed for that difference. A control that "
        "is not refuted leaves the claim without demonstrated power against it (the claim's verdict says "
        "so).",
        "",
        *controls_table(plan, verdicts),
        "",
        "### Does lowering the noise scale matter on this workload?",
        "",
        "No annealing (constant) against decay, paired by seed; 'yes' when the constant control is refuted "
        "in train loss.",
        "",
        *annealing_table(plan, runs, verdicts),
        "",
    ]


# ------------------------------------------------------------------------------------------ the README block
def headline(plan: Plan, runs: Runs, verdicts: Sequence[Verdict], report_dir: str) -> list[str]:
    """The README's generated block for one workload: the verdict tally, final accuracy and updates per
    optimizer and schedule, the wall-clock ratios, and what did not reproduce."""
    w = plan.workload
    by_key = {(v.claim, v.params): v for v in verdicts}
    lines = [
        f"**{w.title}** ([report]({report_dir}/REPORT.md), profile {plan.profile.name}, {len(plan.seeds)} "
        f"seeds, {len(runs)} runs): {tally(verdicts, plan)}.",
        "",
        "| optimizer (base rate) | decay | hybrid | increase | updates (decay / hybrid / increase) |",
        "|---|---|---|---|---|",
    ]
    lines += [_headline_row(plan, runs, o) for o in plan.optimizers]
    controls = [v for v in verdicts if v.claim == "negative-control"]
    if controls:
        told = sum(v.verdict == HOLDS for v in controls)
        lines += [
            "",
            "Negative controls told apart from decay by the test and level of the claim each guards: "
            f"{told} of {len(controls)}.",
        ]
    ratios = [by_key.get(("increase-faster-than-decay", p)) for p in ("decay>hybrid", "hybrid>increase")]
    if all(ratios):
        lines += [
            "",
            "Training wall clock, timed runs: "
            + "; ".join(
                f"{v.params.replace('>', ' / ')} {v.effect:.2f}x [{v.low:.2f}, {v.high:.2f}] ({v.verdict})"
                for v in ratios
            )
            + ".",
        ]
    return lines + _not_holding(verdicts, plan)


def _not_holding(verdicts: Sequence[Verdict], plan: Plan) -> list[str]:
    """The headline's verdicts that do not hold: each with its outcome, and those without power together."""
    lines: list[str] = []
    refuted = [v for v in verdicts if v.verdict != HOLDS and _kind(v, plan) != UNPOWERED]
    if refuted:
        lines += [
            "",
            "Not holding, each declared or red: "
            + "; ".join(
                f"`{v.claim}[{v.params}]` {v.verdict} {_fmt(v)} ({_declared(v, plan)})" for v in refuted
            )
            + ".",
        ]
    unpowered: dict[str, list[str]] = {}
    for v in verdicts:
        if _kind(v, plan) == UNPOWERED:
            unpowered.setdefault(v.claim, []).append(v.params)
    if unpowered:
        lines += [
            "",
            "Undecided without power, as pre-registered: "
            + "; ".join(f"`{c}[{', '.join(p)}]`" for c, p in unpowered.items())
            + ".",
        ]
    return lines


def _declared(v: Verdict, plan: Plan) -> str:
    """The outcome of a verdict that does not hold, and whether it was declared in advance."""
    kind = claims.status(v, plan)[0]
    declared = claims.get_claim(v.claim).declared_undecided(plan, v.params)
    if kind == claims.Status.DECLARED and declared is not None and declared.after_reading:
        return "declared undecided AFTER the runs were read"
    return kind.value


def _headline_row(plan: Plan, runs: Runs, o: str) -> str:
    accs = [
        np.mean([100 * runs[plan.config(o, s, k)].final.test_accuracy for k in plan.seeds])
        for s in MAIN_SCHEDULES
    ]
    updates = " / ".join(str(runs[plan.config(o, s, 0)].parameter_updates) for s in MAIN_SCHEDULES)
    rate = plan.workload.learning_rate(o)
    return f"| {o} ({rate:g}) | " + " | ".join(f"{a:.2f}%" for a in accs) + f" | {updates} |"


def readme_block(plan: Plan, runs: Runs, verdicts: Sequence[Verdict], report_dir: str) -> str:
    marker = f"headline:{plan.workload.name}"
    body = "\n".join(headline(plan, runs, verdicts, report_dir))
    return (
        f"<!-- {marker}: generated by `reproduction report --from {report_dir} --readme README.md`; do not "
        f"edit -->\n{body}\n<!-- /{marker} -->"
    )


def write_readme_block(readme: Path, workload: str, block: str) -> None:
    """Replace the block between the workload's markers in ``readme`` (which must have them)."""
    text, start, end = _readme_block(readme, workload)
    atomic_write_bytes(readme, (text[:start] + block + text[end:]).encode())


def _readme_block(readme: Path, workload: str) -> tuple[str, int, int]:
    """``readme``'s text and where the workload's headline block starts and ends; UsageError if it cannot
    be read or has no such block."""
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--readme {readme}: cannot be read ({type(exc).__name__})") from None
    marker = f"headline:{workload}"
    start, end = text.find(f"<!-- {marker}:"), text.find(f"<!-- /{marker} -->")
    if start < 0 or end < 0:
        raise UsageError(
            f"--readme {readme}: no '<!-- {marker}: ... -->' ... '<!-- /{marker} -->' block to replace"
        )
    return text, start, end + len(f"<!-- /{marker} -->")


# ----------------------------------------------------------------------------------------- files in and out
def results_payload(plan: Plan, runs: Runs, verdicts: Sequence[Verdict]) -> dict:
    return {
        "workload": plan.workload.name,
        "profile": plan.profile.name,
        "seeds": list(plan.seeds),
        "timed_seeds": list(plan.timed_seeds),
        "runs": [r.to_dict() for r in runs.values()],
        "verdicts": [v.to_dict() for v in verdicts],
    }


def build_report(plan: Plan, runs: Runs, out: Path, known=None) -> tuple[Path, list[Verdict]]:
    out.mkdir(parents=True, exist_ok=True)
    verdicts = evaluate_all(plan, runs, known)
    atomic_write_json(out / "results.json", results_payload(plan, runs, verdicts))
    paths = figures.all_figures(plan, runs, out)
    atomic_write_bytes(out / "REPORT.md", render(plan, runs, verdicts, [p.name for p in paths]).encode())
    return out / "REPORT.md", verdicts


def load_results(directory: Path | str) -> tuple[Plan, dict[RunConfig, RunResult], list[Verdict]]:
    """The plan, runs and verdicts of a results.json; UsageError naming the file and the field otherwise."""
    from reproduction.workloads import get_workload

    path = Path(directory) / "results.json"
    if not path.is_file():
        raise UsageError(
            f"--from {directory}: no results.json there; run 'reproduction reproduce --out {directory}' first"
        )
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a JSON object with runs, verdicts, profile and seeds")
    runs = {}
    for i, item in enumerate(_field(data, "runs", list, path)):
        result = _parse(RunResult.from_dict, item, f"{path}: runs[{i}]")
        runs[result.config] = result
    verdicts = [
        _parse(Verdict.from_dict, v, f"{path}: verdicts[{i}]")
        for i, v in enumerate(_field(data, "verdicts", list, path))
    ]
    seeds = _field(data, "seeds", list, path)
    workload = _parse(get_workload, data.get("workload", "mnist"), f"{path}: workload")
    profile = _parse(
        lambda name: workload.profile(name, len(seeds)),
        _field(data, "profile", str, path),
        f"{path}: profile",
    )
    if list(profile.seed_list()) != seeds:
        raise UsageError(f"{path}: seeds {seeds} are not 0..{len(seeds) - 1}")
    profile = _timed(profile, data, path)
    return Plan(workload, profile), runs, verdicts


def _timed(profile, data, path):
    import dataclasses

    timed = data.get("timed_seeds", list(profile.timed_seed_list()))
    if not isinstance(timed, list) or timed != list(range(len(timed))) or not timed:
        raise UsageError(f"{path}: timed_seeds must be a list 0..n-1, got {timed!r}")
    return dataclasses.replace(profile, timed_seeds=len(timed))


def _field(data: dict, name: str, kind: type, path):
    value = data.get(name)
    if not isinstance(value, kind):
        raise UsageError(f"{path}: field {name!r} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _parse(parse, value, where: str):
    try:
        return parse(value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{where}: {type(exc).__name__}: {exc}") from None


def rebuild_report(directory: Path, out: Path | None = None, readme: Path | None = None) -> Path:
    """The report again from results.json: claims that read runs are evaluated anew; the checks of the code
    alone keep their stored verdicts (re-run them with ``reproduction reproduce`` or ``pytest claims``).
    ``readme``: also rewrite its headline block for this workload."""
    plan, runs, verdicts = load_results(directory)
    check_directory(out or directory, "--out")  # all checked before anything is written
    if readme is not None:
        _readme_block(readme, plan.workload.name)
    missing = [c.key() for c in claims.required_configs(plan) if c not in runs]
    if missing:
        raise UsageError(
            f"{Path(directory) / 'results.json'}: {len(missing)} run(s) the claims read are missing "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
        )
    ensure_directory(out or directory, "--out")
    known = {(v.claim, v.params): v for v in verdicts}
    path, verdicts = build_report(plan, runs, out or directory, known)
    if readme is not None:
        write_readme_block(
            readme, plan.workload.name, readme_block(plan, runs, verdicts, str(out or directory))
        )
    return path
