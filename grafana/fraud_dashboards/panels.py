"""Walk the generated dashboards: their panels, targets and datasources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from fraud_dashboards.generate import GRAFANA_DIR


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: dict
    target: dict
    datasource: dict

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.panel['title']} / {self.target['refId']}"


def load_dashboards() -> dict[str, dict]:
    """The checked-in dashboards by uid."""
    boards = [json.loads(p.read_text()) for p in sorted(GRAFANA_DIR.glob("dashboards/*.json"))]
    return {board["uid"]: board for board in boards}


def targets(board: dict) -> Iterator[Target]:
    for panel in board.get("panels", []):
        for target in panel.get("targets", []):
            yield Target(
                board["uid"], panel, target, target.get("datasource") or panel["datasource"]
            )


def promql(expr: str, namespace: str, pipeline: str, time_range: str = "1h") -> str:
    """The query with the dashboard variables set to one namespace and pipeline, and Grafana's
    `$__range` to `time_range`."""
    expr = expr.replace("$namespace", namespace).replace("$pipeline", pipeline)
    return expr.replace("$__range", time_range)
