"""The report of a run: report.md, report.json and PNG figures, from the alerts read back."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fraud_local.tally import Tally, percentile

BUCKET = 5.0  # seconds per point of the time series


def _ratio(hit: int, total: int) -> float | None:
    return round(hit / total, 4) if total else None


def summary(tally: Tally, settings: dict) -> dict:
    """The numbers of the report (also what its figures show)."""
    latencies = tally.latencies()
    model_scores = sorted(a.score for a in tally.alerts.values() if a.rule == "model")
    return {
        "settings": settings,
        "transactions": len(tally.transactions),
        "labelled_transactions": len(tally.labelled),
        "fraudulent_transactions": len(tally.fraud),
        "alerts": len(tally.alerts),
        "alerts_by_rule": dict(sorted(tally.alerts_by_rule().items())),
        "precision_by_rule": {
            rule: {"alerts_with_fraud": hit, "alerts": total, "precision": _ratio(hit, total)}
            for rule, (hit, total) in tally.precision().items()
        },
        "recall_by_scenario": {
            scenario: {"caught": hit, "frauds": total, "recall": _ratio(hit, total)}
            for scenario, (hit, total) in tally.recall().items()
        },
        "latency_seconds": _latency_summary(latencies),
        "latency_seconds_after_start_up": _latency_summary(tally.latencies(after_start_up=True)),
        "model_alert_scores": {
            "count": len(model_scores),
            "min": model_scores[0] if model_scores else None,
            "median": percentile(model_scores, 0.5),
        },
    }


def _shown(latency: dict[str, float | None]) -> str:
    return ", ".join(f"{k} {v:.2f} s" for k, v in latency.items() if v is not None) or "none"


def _latency_summary(latencies: list[float]) -> dict[str, float | None]:
    shares = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    summary = {name: percentile(latencies, share) for name, share in shares}
    return summary | {"max": latencies[-1] if latencies else None}


def _series(times: list[float], start: float) -> tuple[list[float], list[int]]:
    counts = Counter(int((t - start) // BUCKET) for t in times)
    last = max(counts, default=0)
    return [i * BUCKET for i in range(last + 1)], [counts.get(i, 0) for i in range(last + 1)]


def _figure(path: Path, title: str, draw) -> str:
    figure, axes = plt.subplots(figsize=(7, 3.2))
    draw(axes)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path.name


def figures(tally: Tally, folder: Path, model_quality: dict | None) -> dict[str, str]:
    """Write the PNGs into `folder`; returns caption -> file name."""
    alerts = list(tally.alerts.values())
    start = min(tally.transactions.values(), default=0.0)
    made = {}

    def throughput(axes):
        x, y = _series(list(tally.transactions.values()), start)
        axes.plot(x, [v / BUCKET for v in y], label="transactions/s")
        x, y = _series([a.written for a in alerts], start)
        axes.plot(x, [v / BUCKET for v in y], label="alerts/s")
        axes.set_xlabel("seconds since the first transaction")
        axes.legend()

    made["Throughput"] = _figure(folder / "throughput.png", "Throughput", throughput)

    def latency(axes):
        buckets: dict[int, list[float]] = defaultdict(list)
        for alert in alerts:
            if alert.latency is not None:
                buckets[int((alert.written - start) // (BUCKET * 2))].append(alert.latency)
        keys = sorted(buckets)
        for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            values = [percentile(sorted(buckets[k]), share) for k in keys]
            axes.plot([k * BUCKET * 2 for k in keys], values, marker=".", label=name)
        axes.set_xlabel("seconds since the first transaction")
        axes.set_ylabel("transaction to alert (s)")
        axes.legend()

    made["Latency percentiles"] = _figure(folder / "latency.png", "Latency", latency)

    def over_time(axes):
        for rule in sorted({a.rule for a in alerts}):
            x, y = _series([a.written for a in alerts if a.rule == rule], start)
            axes.plot(x, y, label=rule)
        axes.set_xlabel("seconds since the first transaction")
        axes.set_ylabel(f"alerts per {BUCKET:.0f} s")
        axes.legend(fontsize="small")

    made["Alerts over time, by rule"] = _figure(
        folder / "alerts-over-time.png", "Alerts over time", over_time
    )

    def quality(axes):
        recall = tally.recall()
        precision = tally.precision()
        names = [f"recall {s}" for s in recall] + [f"precision {r}" for r in precision]
        values = [h / t if t else 0 for h, t in recall.values()] + [
            h / t if t else 0 for h, t in precision.values()
        ]
        axes.barh(names, values, color=["tab:blue"] * len(recall) + ["tab:orange"] * len(precision))
        axes.set_xlim(0, 1)
        axes.tick_params(axis="y", labelsize="small")

    made["Recall by scenario, precision by rule"] = _figure(
        folder / "quality.png", "Recall by scenario, precision by rule", quality
    )

    def model(axes):
        fraud = [a.score for a in alerts if a.rule == "model" and _is_fraud(tally, a)]
        legit = [a.score for a in alerts if a.rule == "model" and not _is_fraud(tally, a)]
        axes.hist([fraud, legit], bins=20, stacked=True, label=["fraud", "legitimate"])
        axes.set_xlabel("model score of the alerts")
        axes.legend()
        if model_quality:
            text = ", ".join(f"{k} {model_quality[k]}" for k in _MODEL_KEYS if k in model_quality)
            axes.set_title(f"training test week: {text}", fontsize="small", loc="left")

    made["Model alerts by score"] = _figure(folder / "model.png", "Model", model)
    return made


_MODEL_KEYS = ("auc_roc", "average_precision", "card_precision_at_100")


def _is_fraud(tally: Tally, alert) -> bool:
    return any(t in tally.fraud for t in alert.transaction_ids)


def write_report(tally: Tally, folder: Path, settings: dict, model_quality: dict | None) -> Path:
    """report.json, report.md and the figures in `folder`; returns the Markdown file."""
    folder.mkdir(parents=True, exist_ok=True)
    numbers = summary(tally, settings)
    numbers["model_training_quality"] = model_quality
    made = figures(tally, folder, model_quality)
    (folder / "report.json").write_text(json.dumps(numbers, indent=2) + "\n")
    lines = [
        f"# Local run of {settings['pipeline']}",
        "",
        f"{numbers['transactions']} transactions ({numbers['fraudulent_transactions']} fraudulent),"
        f" {numbers['alerts']} alerts read back from the alerts topic. Settings: "
        + ", ".join(f"{k} {v}" for k, v in settings.items() if k != "pipeline")
        + ".",
        "",
        "| rule | alerts | precision |",
        "|---|---|---|",
        *(
            f"| {rule} | {p['alerts']} | {p['precision']} |"
            for rule, p in numbers["precision_by_rule"].items()
        ),
        "",
        "| scenario | frauds | caught | recall |",
        "|---|---|---|---|",
        *(
            f"| {scenario} | {r['frauds']} | {r['caught']} | {r['recall']} |"
            for scenario, r in numbers["recall_by_scenario"].items()
        ),
        "",
        "Latency (Kafka time of the last transaction an alert names to the alert's): "
        + _shown(numbers["latency_seconds"])
        + "; after start-up (alerts on transactions sent after the first alert was written, "
        "the backlog of the job's first micro-batch left out): "
        + _shown(numbers["latency_seconds_after_start_up"]),
        "",
    ]
    if model_quality:
        lines += [
            "Model (training test week): "
            + ", ".join(f"{k} {model_quality[k]}" for k in _MODEL_KEYS if k in model_quality),
            "",
        ]
    for caption, name in made.items():
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path
