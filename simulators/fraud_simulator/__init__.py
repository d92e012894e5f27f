"""Transaction, sensor and application simulators with labelled fraud.

    >>> from fraud_simulator import generate
    >>> for event in generate({"customers": 500, "seed": 7}, start, timedelta(days=1)):
    ...     event.kind, event.key, event.value, event.event_time

See docs/simulator.md.
"""

from fraud_simulator.engine import Batch, Event, generate, simulate
from fraud_simulator.settings import ConfigError, Settings, load_config, parse_settings

__all__ = [
    "Batch",
    "ConfigError",
    "Event",
    "Settings",
    "generate",
    "load_config",
    "parse_settings",
    "simulate",
]
