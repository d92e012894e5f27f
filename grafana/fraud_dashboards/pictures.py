"""Pictures of each dashboard's data, drawn with matplotlib from the dashboards' own queries.

python -m fraud_dashboards.pictures [--output docs/images] [--minutes 3]
starts the test bed, feeds it (fraud_dashboards.feed) for a few minutes and draws one PNG per
dashboard.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt

from fraud_dashboards import esquery
from fraud_dashboards.generate import GRAFANA_DIR
from fraud_dashboards.panels import load_dashboards, promql

UNITS = {
    "percentunit": (100, "%"),
    "opm": (1, "per min"),
    "ops": (1, "per s"),
    "rowsps": (1, "rows/s"),
    "s": (1, "s"),
    "short": (1, ""),
}
WINDOW = timedelta(minutes=15)
WIDTH_IN, ROW_IN, TOP_IN = 16, 0.42, 0.6
# Inside each panel's cell: room for the title above, tick labels below and left, a gap right.
PAD_IN = {"top": 0.35, "bottom": 0.45, "left": 0.9, "right": 0.2}
RAW_COLUMNS = ("detection_time", "rule", "score", "customer_id", "terminal_id")


def prometheus_range(url: str, expr: str, start: datetime, end: datetime) -> list[dict]:
    query = urllib.parse.urlencode(
        {"query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": "15"}
    )
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{query}", timeout=30) as response:
        return json.load(response)["data"]["result"]


def prometheus_instant(url: str, expr: str, at: datetime) -> list[dict]:
    query = urllib.parse.urlencode({"query": expr, "time": at.timestamp()})
    with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=30) as response:
        return json.load(response)["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    if template in ("", "__auto"):
        return ", ".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)


def unit_of(panel: dict) -> tuple[float, str]:
    unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
    return UNITS.get(unit, (1, unit))


def draw_prometheus(ax, panel: dict, url: str, fed, start: datetime, end: datetime) -> None:
    """Lines of range queries; instant queries as big numbers, like a stat panel."""
    scale, label = unit_of(panel)
    texts = []
    for target in panel["targets"]:
        expr = promql(
            target["expr"], fed.namespace, fed.pipeline, f"{int((end - start).total_seconds())}s"
        )
        if target.get("instant"):
            for series in prometheus_instant(url, expr, end):
                value = float(series["value"][1]) * scale
                texts.append(f"{legend(target['legendFormat'], series['metric'])}: {value:,.4g}")
            continue
        for series in prometheus_range(url, expr, start, end):
            points = [(t, float(v)) for t, v in series["values"] if math.isfinite(float(v))]
            if points:
                times = [datetime.fromtimestamp(t, UTC) for t, _ in points]
                ax.plot(
                    times,
                    [v * scale for _, v in points],
                    label=legend(target["legendFormat"], series["metric"]),
                )
    if texts:
        big_numbers(ax, texts, label)
    else:
        time_axis(ax, label)
        ax.set_xlim(start, end)


def big_numbers(ax, texts: list[str], label: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    size = 13 if len(texts) <= 2 else 10
    ax.text(
        0.5,
        0.5,
        "\n".join(f"{t} {label}" for t in texts),
        ha="center",
        va="center",
        fontsize=size,
        transform=ax.transAxes,
    )


def time_axis(ax, label: str) -> None:
    ax.set_ylabel(label)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    formats = ["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"]
    ax.xaxis.set_major_formatter(
        mdates.ConciseDateFormatter(locator, formats=formats, offset_formats=[""] * 6)
    )
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", ncol=2)


def draw_elasticsearch(ax, panel: dict, client, fed, end: datetime) -> None:
    """Over the dashboards' default range, the last 6 hours."""
    target = panel["targets"][0]
    span = (int((end - timedelta(hours=6)).timestamp() * 1000), int(end.timestamp() * 1000))
    shown = esquery.run_panel(client, lambda ref: fed.indices[ref["uid"]], panel, *span)
    rows, metric, buckets = shown.rows, shown.value, shown.buckets
    scale, label = unit_of(panel)
    if shown.raw:
        ax.axis("off")
        cells = [[str(row.get(c, ""))[:24] for c in RAW_COLUMNS] for row in rows[:12]]
        grid = ax.table(cellText=cells, colLabels=RAW_COLUMNS, loc="upper center")
        grid.auto_set_font_size(False)
        grid.set_fontsize(7)
    elif panel["type"] == "stat":
        big_numbers(ax, [f"{sum(row['count'] for row in rows):,}"], "alerts")
    elif buckets and buckets[-1] == target["timeField"]:
        series: dict[str, list] = {}
        for row in rows:
            series.setdefault(row.get(buckets[0], "") if len(buckets) > 1 else "", []).append(row)
        for name, points in sorted(series.items()):
            points = [r for r in points if r[metric] is not None]  # a ratio of nothing
            times = [datetime.fromtimestamp(r[buckets[-1]] / 1000, UTC) for r in points]
            ax.plot(times, [r[metric] * scale for r in points], label=str(name))
        time_axis(ax, label)
    elif target["bucketAggs"][0]["type"] == "histogram":
        keys = [row[buckets[0]] for row in rows]
        ax.bar(keys, [row["count"] for row in rows], width=0.09, align="edge")
        ax.set_xlabel(buckets[0])
        ax.set_ylabel("alerts")
    else:
        keys = [" ".join(str(row[b]) for b in buckets) for row in rows][::-1]
        ax.barh(keys, [(row[metric] or 0) * scale for row in rows][::-1])
        ax.set_xlabel(label or metric)
        ax.tick_params(axis="y", labelsize=7)


def placement(at: dict, size: tuple[float, float]) -> list[float]:
    """[left, bottom, width, height] in figure fractions of a panel's Grafana grid position."""
    width, height = size
    column = width / 24
    left = at["x"] * column + PAD_IN["left"]
    top = TOP_IN + at["y"] * ROW_IN + PAD_IN["top"]
    box_w = at["w"] * column - PAD_IN["left"] - PAD_IN["right"]
    box_h = at["h"] * ROW_IN - PAD_IN["top"] - PAD_IN["bottom"]
    return [left / width, 1 - (top + box_h) / height, box_w / width, box_h / height]


def render(prometheus_url: str, client, fed, output: Path, end: datetime) -> list[Path]:
    """One PNG per dashboard in `output`, each panel drawn from its own queries."""
    output.mkdir(parents=True, exist_ok=True)
    start = max(fed.started, end - WINDOW)
    written = []
    for uid, board in load_dashboards().items():
        panels = board["panels"]
        rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
        size = (WIDTH_IN, TOP_IN + rows * ROW_IN)
        figure = plt.figure(figsize=size)
        for panel in panels:
            ax = figure.add_axes(placement(panel["gridPos"], size))
            ax.set_title(panel["title"], fontsize=10, loc="left")
            if panel["datasource"]["type"] == "prometheus":
                draw_prometheus(ax, panel, prometheus_url, fed, start, end)
            else:
                draw_elasticsearch(ax, panel, client, fed, end)
        figure.suptitle(f"{board['title']} ({fed.namespace}/{fed.pipeline})", fontsize=13, y=0.995)
        path = output / f"{uid}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    from fraud_dashboards.feed import feed
    from fraud_testbed.elasticsearch import run_elasticsearch
    from fraud_testbed.kafka import run_kafka
    from fraud_testbed.kube import install_crds, run_control_plane
    from fraud_testbed.prometheus import run_prometheus
    from fraud_testbed.spark import local_session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=GRAFANA_DIR.parent / "docs" / "images")
    parser.add_argument("--minutes", type=float, default=3, help="how long to feed live data")
    args = parser.parse_args(argv)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Spark's workers import the job
    workdir = Path(tempfile.mkdtemp(prefix="fraud-dashboards-"))
    try:
        with contextlib.ExitStack() as stack:
            kube = stack.enter_context(run_control_plane(workdir / "kube"))
            install_crds(kube)
            kafka = stack.enter_context(run_kafka(workdir / "kafka"))
            prometheus = stack.enter_context(run_prometheus(workdir / "prometheus"))
            node = stack.enter_context(run_elasticsearch())
            spark = local_session(workdir / "spark")
            stack.callback(spark.stop)
            fed = stack.enter_context(feed(kafka, spark, node, prometheus, kube, workdir))
            print(f"feeding {fed.namespace}/{fed.pipeline} for {args.minutes} min", flush=True)
            time.sleep(args.minutes * 60)
            client = node.client()
            client.indices.refresh(index=list(fed.indices.values()))
            for path in render(prometheus.url, client, fed, args.output, datetime.now(UTC)):
                print(f"wrote {path}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
