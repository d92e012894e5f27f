"""Render the dashboards into the files the operator loads (datasources are per pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from fraud_dashboards.dashboards import BUILDERS

GRAFANA_DIR = Path(__file__).resolve().parents[1]


def dashboard_json(name: str) -> dict:
    """The dashboard as Grafana JSON, with panel ids numbered in order."""
    board = json.loads(json.dumps(BUILDERS[name]().build(), cls=JSONEncoder))
    for number, panel in enumerate(board.get("panels", []), start=1):
        panel["id"] = number
        panel["options"] = panel.get("options") or {}
    return board


def rendered() -> dict[str, str]:
    """Every generated file (path relative to grafana/) and its text."""
    return {
        f"dashboards/{name}": json.dumps(dashboard_json(name), indent=2, sort_keys=True) + "\n"
        for name in BUILDERS
    }


def write(root: Path = GRAFANA_DIR) -> list[Path]:
    written = []
    for relative, text in rendered().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def stale(root: Path = GRAFANA_DIR) -> list[Path]:
    """Generated files that are missing or differ from the checked-in ones."""
    return [
        root / relative
        for relative, text in rendered().items()
        if not (root / relative).exists() or (root / relative).read_text() != text
    ]
