"""The job configuration (`job.yaml`, docs/contracts.md) loaded into typed settings."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "impossibleTravel": {"enabled": True, "maxSpeedKmh": 900.0},
    "spendingSpree": {"enabled": True, "minCategories": 4, "windowMinutes": 15},
    "cardTesting": {
        "enabled": True,
        "smallAmountMax": 2.0,
        "largeAmountMin": 200.0,
        "windowMinutes": 5,
    },
    "velocity": {"enabled": True, "maxTransactions": 10, "maxAmount": 5000.0, "windowMinutes": 10},
    "amountThreshold": {"enabled": True, "multiplier": 5.0, "minHistory": 5},
}
DEFAULT_MODEL = {
    "enabled": True,
    "uri": "local:///opt/fraudpipeline/models/default",
    "scoreThreshold": 0.8,
}
STATE_BUCKETS = 64
_DURATION = re.compile(r"^\s*(\d+)\s*(millisecond|second|minute|hour|day)s?\s*$")
_SECONDS = {"millisecond": 0.001, "second": 1, "minute": 60, "hour": 3600, "day": 86400}


class ConfigError(ValueError):
    """The configuration file is missing a field or has a wrong value."""


def duration_seconds(text: str) -> float:
    """Seconds in a Spark-style duration such as '5 seconds' or '10 minutes'."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"not a duration: {text!r} (expected e.g. '5 seconds')")
    return int(match.group(1)) * _SECONDS[match.group(2)]


@dataclass(frozen=True)
class DetectionSettings:
    trigger_interval: str = "5 seconds"
    watermark_delay: str = "10 minutes"
    max_event_time_ahead: str | None = None  # no bound
    state_buckets: int = STATE_BUCKETS
    rules: dict[str, dict[str, Any]] = field(default_factory=lambda: _merge({}, DEFAULT_RULES))
    model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL))


@dataclass(frozen=True)
class JobConfig:
    pipeline: str
    namespace: str
    bootstrap_servers: str
    topics: dict[str, str]
    detection: DetectionSettings
    checkpoint_location: str
    elasticsearch_url: str | None = None
    index_prefix: str = "fraud"
    metrics_port: int = 9108

    def index(self, kind: str) -> str:
        """The Elasticsearch index of a document kind (alerts, kpis)."""
        return f"{self.index_prefix}-{kind}"


def _merge(overrides: dict, defaults: dict) -> dict:
    merged = {key: dict(value) for key, value in defaults.items()}
    for key, value in (overrides or {}).items():
        merged.setdefault(key, {}).update(value or {})
    return merged


def _require(document: dict, *path: str) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise ConfigError(f"job.yaml: missing {'.'.join(path)}")
        value = value[key]
    return value


def parse_config(document: dict) -> JobConfig:
    """JobConfig from the parsed job.yaml; missing detection settings take their defaults."""
    if not isinstance(document, dict):
        raise ConfigError("job.yaml: expected a mapping at the top level")
    topics = dict(_require(document, "kafka", "topics"))
    for topic in ("transactions", "alerts", "deadLetters"):
        if not topics.get(topic):
            raise ConfigError(f"job.yaml: missing kafka.topics.{topic}")
    detection = document.get("detection") or {}
    settings = DetectionSettings(
        trigger_interval=detection.get("triggerInterval", DetectionSettings.trigger_interval),
        watermark_delay=detection.get("watermarkDelay", DetectionSettings.watermark_delay),
        max_event_time_ahead=detection.get("maxEventTimeAhead"),
        state_buckets=detection.get("stateBuckets", DetectionSettings.state_buckets),
        rules=_merge(detection.get("rules") or {}, DEFAULT_RULES),
        model={**DEFAULT_MODEL, **(detection.get("model") or {})},
    )
    duration_seconds(settings.trigger_interval)
    duration_seconds(settings.watermark_delay)
    if settings.max_event_time_ahead is not None:
        duration_seconds(settings.max_event_time_ahead)
    if not isinstance(settings.state_buckets, int) or settings.state_buckets < 1:
        raise ConfigError(f"job.yaml: detection.stateBuckets must be a positive integer, got "
                          f"{settings.state_buckets!r}")  # fmt: skip
    elasticsearch = document.get("elasticsearch") or {}
    return JobConfig(
        pipeline=_require(document, "pipeline", "name"),
        namespace=document["pipeline"].get("namespace", "default"),
        bootstrap_servers=_require(document, "kafka", "bootstrapServers"),
        topics=topics,
        detection=settings,
        checkpoint_location=_require(document, "checkpointLocation"),
        elasticsearch_url=elasticsearch.get("url") or None,
        index_prefix=elasticsearch.get("indexPrefix", JobConfig.index_prefix),
        metrics_port=int((document.get("metrics") or {}).get("port", JobConfig.metrics_port)),
    )


def load_config(path: str | Path) -> JobConfig:
    """Read and parse job.yaml."""
    return parse_config(yaml.safe_load(Path(path).read_text()))


def model_path(uri: str) -> Path:
    """The local folder of a model URI (`local:///path` or a plain path)."""
    return Path(uri.removeprefix("local://").removeprefix("file://"))


def tokenization_key(environ: dict[str, str] | None = None) -> bytes:
    """The HMAC key from TOKENIZATION_KEY; the job refuses to run without one."""
    key = (os.environ if environ is None else environ).get("TOKENIZATION_KEY", "")
    if len(key) < 16:
        raise ConfigError("TOKENIZATION_KEY must be set to a secret of at least 16 characters")
    return key.encode()
