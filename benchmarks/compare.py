"""The comparison: run the scenarios, measure them, judge the targets, write the report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.metrics import Measures, differing_texts, measure, representative
from benchmarks.report import RunClock, measures_table, write_results
from benchmarks.runner import Limits, Run, run_all
from benchmarks.scenarios import Plan, Scenario
from benchmarks.targets import judge


def summary(row: Measures) -> str:
    """One line about a finished run, for the console."""
    note = f" ({row.message})" if row.message else ""
    return (
        f"round {row.round_index + 1} {row.scenario}: {row.status}, "
        f"{row.jobs}/{row.jobs_planned} jobs, {row.images_per_s:.3g} jobs/s, "
        f"peak {row.peak_total_rss_mb:.0f} MB{note}"
    )


def compare(
    scenarios: tuple[Scenario, ...],
    plan: Plan,
    limits: Limits,
    rounds: int,
    out: Path,
    command: str,
    setup: Sequence[str],
    log: Callable[[str], None],
) -> list[Measures]:
    """Run and report the comparison; return the rows of ``results.csv``."""
    clock = RunClock()
    runs = run_all(scenarios, plan, limits, rounds, lambda run: log(summary(measure(run))))
    all_rounds = [measure(run) for run in runs]
    rows = [
        representative([m for m in all_rounds if m.scenario == scenario.name])
        for scenario in scenarios
    ]
    header = clock.header(f"ocrpool benchmark, {plan.engine} engine", command, setup)
    alike = [run for run in runs if plan.recognises_alike(run.scenario)]
    verdicts = judge(
        {row.scenario: row for row in rows},
        plan.engine,
        header.machine.cores,
        [Path(source).name for source in differing_texts(alike)],
    )
    paths = write_results(out, header, scenarios, _shown(runs, rows), rows, all_rounds, verdicts)
    log("\n".join(measures_table(rows)))
    log("wrote " + ", ".join(str(path) for path in paths))
    return rows


def _shown(runs: Sequence[Run], rows: Sequence[Measures]) -> list[Run]:
    """The runs the rows come from (one per scenario)."""
    shown = {(row.scenario, row.round_index) for row in rows}
    return [run for run in runs if (run.scenario.name, run.round_index) in shown]
