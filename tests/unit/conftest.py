"""Fixtures of the unit tests."""

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def load_bench() -> Iterator[Callable[[str], ModuleType]]:
    """Import a benchmark of bench/ by name, with bench/ on the path for its own imports
    (`recording`, `detection`) while the test module runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(BENCH))

        def load(name: str) -> ModuleType:
            spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module

        yield load
