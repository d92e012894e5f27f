"""The simulator's settings: the `simulator` block of simulator.yaml, checked, with defaults.

Every error names the setting (`simulator.fraudRate: must be between 0 and 0.5, got 2`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fraud_events import SOURCES, TRANSACTION_SCENARIOS

log = logging.getLogger(__name__)

ENV_PREFIX = "FRAUDSIM_"
# Keys of spec.simulator that only the operator uses.
OPERATOR_ONLY = ("enabled", "image", "replicas", "resources")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    """The `simulator` block (camelCase keys in YAML)."""

    rate_per_second: float = 200.0
    customers: int = 5000
    terminals: int = 1000
    fraud_rate: float = 0.01
    scenarios: tuple[str, ...] = TRANSACTION_SCENARIOS
    sources: tuple[str, ...] = ("transactions",)
    label_delay_seconds: float = 0.0
    seed: int = 42


@dataclass(frozen=True)
class RunConfig:
    """All of simulator.yaml."""

    settings: Settings
    bootstrap_servers: str = "localhost:9092"
    topics: dict[str, str] = field(default_factory=dict)
    metrics_port: int | None = None


_KEYS = {
    "ratePerSecond": "rate_per_second",
    "customers": "customers",
    "terminals": "terminals",
    "fraudRate": "fraud_rate",
    "scenarios": "scenarios",
    "sources": "sources",
    "labelDelaySeconds": "label_delay_seconds",
    "seed": "seed",
}


def env_name(key: str) -> str:
    """FRAUDSIM_ + the upper-cased snake-case key: ratePerSecond -> FRAUDSIM_RATE_PER_SECOND."""
    return ENV_PREFIX + _KEYS.get(key, key).upper()


def _number(where: str, value: Any, low: float, high: float, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: must be a number, got {value!r}")
    if integer and value != int(value):
        raise ConfigError(f"{where}: must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{where}: must be between {low:g} and {high:g}, got {value!r}")
    return int(value) if integer else float(value)


def _names(where: str, value: Any, allowed: tuple[str, ...], min_items: int) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: must be a list of names, got {value!r}")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise ConfigError(f"{where}: unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    if len(value) < min_items:
        raise ConfigError(f"{where}: needs at least {min_items} of {', '.join(allowed)}")
    return tuple(dict.fromkeys(value))


def parse_settings(block: Mapping[str, Any] | None, where: str = "simulator") -> Settings:
    """Check a `simulator` block and fill in defaults. Unknown keys are logged and ignored."""
    if block is None:
        block = {}
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: must be a mapping, got {block!r}")
    for key in block:
        if key not in _KEYS and key not in OPERATOR_ONLY:
            log.warning("%s.%s: unknown setting, ignored", where, key)
    d = Settings()
    get = block.get
    return Settings(
        rate_per_second=_number(
            f"{where}.ratePerSecond", get("ratePerSecond", d.rate_per_second), 0.001, 1e7
        ),
        customers=_number(f"{where}.customers", get("customers", d.customers), 1, 2_000_000, True),
        terminals=_number(f"{where}.terminals", get("terminals", d.terminals), 1, 1_000_000, True),
        fraud_rate=_number(f"{where}.fraudRate", get("fraudRate", d.fraud_rate), 0, 0.5),
        scenarios=_names(
            f"{where}.scenarios", get("scenarios", d.scenarios), TRANSACTION_SCENARIOS, 0
        ),
        sources=_names(f"{where}.sources", get("sources", d.sources), SOURCES, 1),
        label_delay_seconds=_number(
            f"{where}.labelDelaySeconds",
            get("labelDelaySeconds", d.label_delay_seconds),
            0,
            90 * 86400,
        ),
        seed=_number(f"{where}.seed", get("seed", d.seed), 0, 2**63 - 1, True),
    )


def apply_env(block: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The block with FRAUDSIM_<KEY> environment variables (YAML-parsed values) on top."""
    merged = dict(block)
    for key in _KEYS:
        name = env_name(key)
        if name in environ:
            try:
                merged[key] = yaml.safe_load(environ[name])
            except yaml.YAMLError as error:
                raise ConfigError(f"{name}: not a valid value: {error}") from None
    return merged


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> RunConfig:
    """Read simulator.yaml (or nothing) and the FRAUDSIM_* environment into a RunConfig."""
    environ = os.environ if environ is None else environ
    document: Any = {}
    if path is not None:
        try:
            document = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as error:
            raise ConfigError(f"--config {path}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"--config {path}: not valid YAML: {error}") from None
    if not isinstance(document, Mapping):
        raise ConfigError(f"--config {path}: must be a mapping at the top level")
    block = document.get("simulator")
    block = {} if block is None else block
    if not isinstance(block, Mapping):
        raise ConfigError(f"simulator: must be a mapping, got {block!r}")
    settings = parse_settings(apply_env(block, environ))
    kafka = document.get("kafka") or {}
    if not isinstance(kafka, Mapping):
        raise ConfigError(f"kafka: must be a mapping, got {kafka!r}")
    bootstrap = environ.get(ENV_PREFIX + "BOOTSTRAP_SERVERS") or kafka.get("bootstrapServers")
    if not isinstance(bootstrap, str) or not bootstrap.strip():
        bootstrap = RunConfig.bootstrap_servers
    topics = kafka.get("topics") or {}
    if not isinstance(topics, Mapping) or not all(
        isinstance(v, str) and v for v in topics.values()
    ):
        raise ConfigError(f"kafka.topics: must map topic roles to names, got {topics!r}")
    pipeline = document.get("pipeline") or {}
    name = pipeline.get("name", "fraud") if isinstance(pipeline, Mapping) else "fraud"
    topics = {role: topics.get(role, f"{name}-{role}") for role in (*SOURCES, "labels")}
    metrics = document.get("metrics") or {}
    port = environ.get(
        ENV_PREFIX + "METRICS_PORT", metrics.get("port") if isinstance(metrics, Mapping) else None
    )
    if port is not None:
        try:
            port = _number("metrics.port", yaml.safe_load(str(port)), 0, 65535, True)
        except yaml.YAMLError:
            raise ConfigError(f"metrics.port: must be a number, got {port!r}") from None
    return RunConfig(settings, bootstrap.strip(), topics, port)
