"""bench/cores.py: a round that fails or runs out of time is recorded as such, not lost."""

import sys

import pytest


@pytest.fixture(scope="module")
def cores(load_bench):
    return load_bench("cores")


def test_a_round_returns_what_its_process_wrote(cores, tmp_path):
    found = tmp_path / "round.json"
    write = (
        f"open({str(found)!r}, 'w').write('{{\"cores\": 2, \"throughput_per_second\": [1, 2]}}')"
    )
    assert cores.run_round([sys.executable, "-c", write], found, 2) == {
        "cores": 2,
        "throughput_per_second": [1, 2],
    }


def test_a_failed_or_timed_out_round_is_an_error_in_the_summary(cores, tmp_path, monkeypatch):
    failed = cores.run_round([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "x", 1)
    assert failed == {"cores": 1, "error": "exited with 3"}
    monkeypatch.setattr(cores, "ROUND_TIMEOUT_S", 0.5)
    slow = cores.run_round([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "y", 2)
    assert slow == {"cores": 2, "error": "timed out after 0.5 s"}
    text = cores.summary({"machine": {"cpus": 2}, "rounds": [failed, slow]})
    assert "local[1]: exited with 3" in text and "local[2]: timed out after 0.5 s" in text
