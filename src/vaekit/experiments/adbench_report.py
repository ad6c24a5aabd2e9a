"""The ADBench report: per-set ROC-AUC / AP (mean ± std over seeds), times, average ranks, Friedman test and a
critical-difference diagram (Nemenyi post-hoc test from ``scikit-posthocs``), written as markdown + CSV + PNG."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import friedmanchisquare, rankdata, wilcoxon

from ..data.adbench import ADBENCH_SETS
from .stats import mean_std

METRICS = {"roc_auc": "ROC-AUC", "average_precision": "average precision"}
RAW_COLUMNS = ("dataset", "detector", "seed", "roc_auc", "average_precision", "fit_seconds", "score_seconds",
               "cpu_seconds", "n_rows", "n_features", "n_train", "n_test", "test_anomalies", "epochs_run",
               "vae_config")


def cells_by_seed(results: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], dict[int, float]]:
    """``{(set, detector): {seed: value}}`` over finished runs."""
    table: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for r in results:
        if r.get("status") in ("done", "diverged") and r.get("metrics") and r["metrics"].get(metric) is not None:
            table[(r["config"]["dataset"], r["config"]["detector"])][int(r["config"]["seed"])] = float(
                r["metrics"][metric])
    return table


def cells(results: list[dict[str, Any]], metric: str) -> dict[tuple[str, str], list[float]]:
    """``{(set, detector): [value per seed]}`` over finished runs."""
    return {k: [v[s] for s in sorted(v)] for k, v in cells_by_seed(results, metric).items()}


def missing_seeds(table: dict[tuple[str, str], dict[int, float]]) -> dict[tuple[str, str], int]:
    """``{(set, detector): seeds it lacks}`` against every seed any detector has on that set (0: none lacking)."""
    seeds: dict[str, set[int]] = defaultdict(set)
    for (d, _), per_seed in table.items():
        seeds[d] |= set(per_seed)
    return {(d, m): len(seeds[d] - set(per_seed)) for (d, m), per_seed in table.items()}


def average_ranks(means: dict[str, dict[str, float]], detectors: list[str]) -> tuple[np.ndarray, list[str]]:
    """Ranks (1 = best, ties averaged) of each detector's mean score per set, over the sets every detector has."""
    complete = [d for d, row in means.items() if all(m in row for m in detectors)]
    if not complete:
        return np.zeros((0, len(detectors))), []
    scores = np.array([[means[d][m] for m in detectors] for d in complete])
    return np.vstack([rankdata(-row) for row in scores]), complete


def friedman(scores: np.ndarray) -> tuple[float, float]:
    """Friedman chi-square and p over sets (rows) x detectors (columns); NaN when undefined."""
    if scores.shape[0] < 2 or scores.shape[1] < 3:
        return float("nan"), float("nan")
    stat, p = friedmanchisquare(*scores.T)
    return float(stat), float(p)


def paired_against(means: dict[str, dict[str, float]], reference: str,
                   others: list[str]) -> list[dict[str, Any]]:
    """``reference`` against each other detector, paired over the sets both have (per-set means over seeds):
    mean and std of the difference, wins/ties/losses, and the two-sided Wilcoxon signed-rank p (scipy; NaN when
    every difference is zero or fewer than two sets are paired)."""
    rows = []
    for other in others:
        diffs = np.array([row[reference] - row[other] for row in means.values() if reference in row and other in row])
        if not len(diffs):
            continue
        nonzero = diffs[diffs != 0]
        p = float(wilcoxon(nonzero).pvalue) if len(nonzero) >= 2 else float("nan")
        mean, std = mean_std(diffs.tolist())
        rows.append({"detector": other, "sets": len(diffs), "mean": mean, "std": std, "wins": int((diffs > 0).sum()),
                     "ties": int((diffs == 0).sum()), "losses": int((diffs < 0).sum()), "p": p})
    return rows


def set_means(done: list[dict[str, Any]], metric: str, detectors: list[str],
              sets: list[str]) -> dict[str, dict[str, float]]:
    """``{set: {detector: mean over seeds}}`` of ``metric``, for the detectors that finished every seed run on
    that set (one lacking a seed would be compared on other seeds than the rest: it is left out of the set's
    ranks and paired tests, so the set leaves the Friedman test)."""
    table = cells_by_seed(done, metric)
    lacking = missing_seeds(table)
    return {d: {m: float(np.mean(list(table[(d, m)].values()))) for m in detectors
                if (d, m) in table and not lacking[(d, m)]} for d in sets}


def cd_diagram(scores: np.ndarray, detectors: list[str], path: Path, title: str) -> Path | None:
    """Critical-difference diagram (Nemenyi post-hoc after Friedman, scikit-posthocs); None without it."""
    try:
        import pandas as pd
        import scikit_posthocs as sp
    except ImportError:
        return None
    from . import report_helpers as rep

    plt = rep.pyplot()
    frame = pd.DataFrame(scores, columns=detectors)
    significance = sp.posthoc_nemenyi_friedman(frame)
    ranks = pd.Series(np.vstack([rankdata(-row) for row in scores]).mean(axis=0), index=detectors)
    fig, ax = plt.subplots(figsize=(8, 3))
    sp.critical_difference_diagram(ranks, significance, ax=ax)
    ax.set_title(title, fontsize=9)
    return rep.save_figure(fig, path)


def _fmt(values: list[float], digits: int = 3) -> str:
    m, s = mean_std(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}" if len(values) > 1 else f"{m:.{digits}f}"


def _cell(values: list[float] | None, best: float | None, missing: int) -> str:
    """A per-set cell: mean ± std (bold at the best mean), and how many seeds it lacks."""
    if values is None:
        return "–"
    text = f"**{_fmt(values)}**" if np.mean(values) == best else _fmt(values)
    return text + (f" ({missing} missing)" if missing else "")


def _order(sets: set[str]) -> list[str]:
    known = [n for n in ADBENCH_SETS if n in sets]
    return known + sorted(sets - set(known))


def write_report(name: str, results: list[dict[str, Any]], out: Path, detectors: list[str]) -> dict[str, Any]:
    """Tables, raw per-seed CSV and figures of an ADBench target into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = [r for r in results if r.get("status") in ("done", "diverged") and r.get("metrics")]
    present = [m for m in detectors if any(r["config"]["detector"] == m for r in done)]
    sets = _order({r["config"]["dataset"] for r in done})
    files: list[str] = []
    raw = out / f"{name}-runs.csv"
    with raw.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(RAW_COLUMNS)
        for r in sorted(done, key=lambda r: (sets.index(r["config"]["dataset"]), r["config"]["detector"],
                                             r["config"]["seed"])):
            c, m = r["config"], r["metrics"]
            writer.writerow([c["dataset"], c["detector"], c["seed"]]
                            + [m.get(k) for k in RAW_COLUMNS[3:-1]] + [m.get("vae_config") or ""])
    files.append(str(raw))
    lines = [f"### {name}: {len(sets)} sets, {len(present)} detectors, "
             f"{len({r['config']['seed'] for r in done})} seed(s)", ""]
    rank_rows: dict[str, dict[str, float]] = {}
    means_by_metric = {metric: set_means(done, metric, present, sets) for metric in METRICS}
    for metric, label in METRICS.items():
        means = means_by_metric[metric]
        ranks, complete = average_ranks(means, present)
        if len(complete):
            scores = np.array([[means[d][m] for m in present] for d in complete])
            stat, p = friedman(scores)
            rank_rows[label] = dict(zip(present, ranks.mean(axis=0)))
            png = cd_diagram(scores, present, out / f"{name}-cd-{metric}.png",
                             f"average rank by {label} over {len(complete)} sets (Nemenyi, 5 %)")
            lines += [f"Friedman test over {len(complete)} sets ({label}): chi² = {stat:.1f}, p = {p:.2g}.", ""]
            if png is not None:
                files.append(str(png))
                lines += [f"![critical-difference diagram, {label}]({png.name})", ""]
            else:
                lines += ["(critical-difference diagram skipped: pip install 'vaekit[bench]' for scikit-posthocs)",
                          ""]
    if rank_rows:
        lines += ["**Average rank** (1 = best; per set, detectors ranked by their mean over seeds)", "",
                  "| | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
        for label, row in rank_rows.items():
            best = min(row.values())
            lines.append(f"| {label} | " + " | ".join(
                (f"**{row[m]:.2f}**" if row[m] == best else f"{row[m]:.2f}") for m in present) + " |")
        lines.append("")
    if "vaekit" in present:
        lines += ["**vaekit's default against each detector**, paired over sets (difference of per-set means over "
                  "seeds, vaekit − other; wins/ties/losses; two-sided Wilcoxon signed-rank test, scipy)", "",
                  "| detector | " + " | ".join(f"{label}: difference | W/T/L | p" for label in METRICS.values()) + " |",
                  "|---|" + "---|---|---|" * len(METRICS)]
        others = [m for m in present if m != "vaekit"]
        by_metric = {metric: {r["detector"]: r for r in paired_against(means_by_metric[metric], "vaekit", others)}
                     for metric in METRICS}
        for other in others:
            cols = []
            for metric in METRICS:
                r = by_metric[metric].get(other)
                cols.append("– | – | –" if r is None else f"{r['mean']:+.3f} ± {r['std']:.3f} | "
                            f"{r['wins']}/{r['ties']}/{r['losses']} | {r['p']:.2g}")
            lines.append(f"| {other} | " + " | ".join(cols) + " |")
        lines.append("")
    for metric, label in METRICS.items():
        by_seed = cells_by_seed(done, metric)
        table, lacking = {k: list(v.values()) for k, v in by_seed.items()}, missing_seeds(by_seed)
        lines += [(f"**{label}** per set (test part, mean ± std over seeds; bold = best mean; '(n missing)': seeds "
                   "another detector finished and this one did not, which leave the set out of the ranks and tests "
                   "for it)"), "",
                  "| set | rows × cols | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
        for d in sets:
            row = {m: table[(d, m)] for m in present if (d, m) in table}
            best = max(np.mean(v) for v in row.values()) if row else None
            n_seeds = max(len(v) for v in row.values()) if row else 0
            shape = next((f"{r['metrics']['n_rows']} × {r['metrics']['n_features']}" for r in done
                          if r["config"]["dataset"] == d), "") + f" ({n_seeds} seed{'s' if n_seeds > 1 else ''})"
            lines.append(f"| {d.removeprefix('adbench:')} | {shape} | " + " | ".join(
                _cell(row.get(m), best, lacking.get((d, m), 0)) for m in present) + " |")
        lines.append("")
    timed = [{**r, "metrics": {"seconds": r["metrics"]["fit_seconds"] + r["metrics"]["score_seconds"]}}
             for r in done if r["metrics"].get("fit_seconds") is not None
             and r["metrics"].get("score_seconds") is not None]  # summed per run, never across two runs
    total = cells(timed, "seconds")
    lines += ["**Seconds per run** (fit on the training part + score the test part, mean over seeds)", "",
              "| set | " + " | ".join(present) + " | vaekit / IForest | vaekit / PyOD VAE |",
              "|---|" + "---|" * (len(present) + 2)]
    ratios: dict[str, list[float]] = {"IForest": [], "PyOD VAE": []}
    for d in sets:
        cols = [f"{np.mean(total[(d, m)]):.2f}" if (d, m) in total else "–" for m in present]
        extra = []
        for ref in ratios:
            if (d, "vaekit") in total and (d, ref) in total:
                ratio = np.mean(total[(d, "vaekit")]) / max(np.mean(total[(d, ref)]), 1e-9)
                ratios[ref].append(ratio)
                extra.append(f"{ratio:.1f}×")
            else:
                extra.append("–")
        lines.append(f"| {d.removeprefix('adbench:')} | " + " | ".join(cols + extra) + " |")
    lines.append("")
    for ref, values in ratios.items():
        if values:
            lines.append(f"vaekit's fit + score time relative to {ref}: median {np.median(values):.1f}×, "
                         f"range {min(values):.1f}–{max(values):.1f}× over {len(values)} sets.")
    seconds = {m: sum(sum(total[(d, m)]) for d in sets if (d, m) in total) for m in present}
    cpu = cells(done, "cpu_seconds")
    cpu_by = {m: sum(sum(cpu[(d, m)]) for d in sets if (d, m) in cpu) for m in present}
    cpu_total = sum(cpu_by.values())
    for ref in ("IForest", "PyOD VAE"):
        paired = [(np.mean(cpu[(d, "vaekit")]), np.mean(cpu[(d, ref)])) for d in sets
                  if (d, "vaekit") in cpu and (d, ref) in cpu]
        if paired:
            lines.append(f"The same by CPU (process) seconds, which a loaded machine distorts less: vaekit / {ref} "
                         f"median {np.median([a / max(b, 1e-3) for a, b in paired]):.1f}× over {len(paired)} sets.")
    lines += ["", "Total fit + score seconds per detector (wall): "
              + ", ".join(f"{m} {s:.0f}" for m, s in seconds.items()),
              "", "Total CPU (process) seconds per detector: " + ", ".join(f"{m} {s:.0f}" for m, s in cpu_by.items()),
              "", f"All runs: {sum(seconds.values()):.0f} s of fit + score wall time, {cpu_total:.0f} s of CPU time.",
              ""]
    if rank_rows and "ROC-AUC" in rank_rows:
        png = _rank_time_plot(rank_rows["ROC-AUC"], seconds, out / f"{name}-rank-time.png")
        files.append(str(png))
        lines += [f"![average rank against total time]({png.name})", ""]
    failed = [r for r in results if r.get("status") == "failed"]
    lines += [f"- failed: {r['config']['dataset']} {r['config']['detector']} seed {r['config']['seed']}: "
              f"{((r.get('error') or '').strip().splitlines() or ['no message'])[-1]}" for r in failed]
    markdown = "\n".join(lines)
    md = out / f"{name}.md"
    md.write_text(markdown + "\n")
    files.append(str(md))
    return {"markdown": markdown, "files": files}


def _rank_time_plot(ranks: dict[str, float], seconds: dict[str, float], path: Path) -> Path:
    from . import report_helpers as rep

    plt = rep.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for m, r in ranks.items():
        ax.scatter(max(seconds.get(m, 0.0), 1e-2), r)
        ax.annotate(m, (max(seconds.get(m, 0.0), 1e-2), r), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("total fit + score seconds over all runs (log)")
    ax.set_ylabel("average ROC-AUC rank (1 = best)")
    return rep.save_figure(fig, path)
