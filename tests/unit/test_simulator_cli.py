"""The command line: configuration file and FRAUDSIM_* environment, files, metrics, errors."""

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from fraud_events import load_schema, problems
from fraud_simulator import ConfigError, load_config
from fraud_simulator.__main__ import main, parse_duration
from fraud_testbed.process import free_port

CONFIG = {
    "pipeline": {"name": "payments", "namespace": "fraud"},
    "kafka": {"bootstrapServers": "broker:9092", "topics": {"transactions": "p-tx"}},
    "simulator": {
        "customers": 300,
        "terminals": 60,
        "seed": 9,
        "ratePerSecond": 200,
        "sources": ["transactions", "sensors", "applications"],
    },
    "metrics": {"port": 9109},
}


def write(tmp_path: Path, document) -> Path:
    path = tmp_path / "simulator.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def test_the_rendered_file_and_environment_overrides(tmp_path):
    env = {
        "FRAUDSIM_RATE_PER_SECOND": "50",
        "FRAUDSIM_SOURCES": "transactions,sensors",
        "FRAUDSIM_BOOTSTRAP_SERVERS": "other:9092",
    }
    config = load_config(write(tmp_path, CONFIG), env)
    assert config.settings.rate_per_second == 50
    assert config.settings.sources == ("transactions", "sensors")
    assert config.settings.customers == 300
    assert config.bootstrap_servers == "other:9092"
    assert config.topics == {
        "transactions": "p-tx",
        "labels": "payments-labels",
        "sensors": "payments-sensors",
        "applications": "payments-applications",
    }
    assert config.metrics_port == 9109


@pytest.mark.parametrize(
    ("document", "env", "named"),
    [
        ({"simulator": {"customers": -3}}, {}, "simulator.customers"),
        ({"simulator": {"sources": ["atms"]}}, {}, "simulator.sources"),
        ({"simulator": []}, {}, "simulator"),
        ({"kafka": {"topics": {"labels": ""}}}, {}, "kafka.topics"),
        ({"metrics": {"port": 70000}}, {}, "metrics.port"),
        ({}, {"FRAUDSIM_FRAUD_RATE": "lots"}, "simulator.fraudRate"),
        ({}, {"FRAUDSIM_SEED": "[unclosed"}, "FRAUDSIM_SEED"),
        ("just: [text", {}, "not valid YAML"),
    ],
)
def test_a_bad_configuration_names_the_setting(tmp_path, document, env, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[")):
        load_config(write(tmp_path, document), env)


def test_the_cli_refuses_a_bad_configuration_with_exit_code_2(tmp_path, caplog):
    path = write(tmp_path, {"simulator": {"fraudRate": 3}})
    assert main(["--config", str(path), "--output", str(tmp_path / "out")]) == 2
    assert "simulator.fraudRate" in caplog.text
    assert main(["--config", str(path.with_name("missing.yaml"))]) == 2
    assert "cannot read" in caplog.text


def test_durations():
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("2h").total_seconds() == 7200
    assert parse_duration("1.5d").total_seconds() == 1.5 * 86400
    with pytest.raises(ConfigError, match="--duration"):
        parse_duration("soon")


@pytest.mark.parametrize("file_format", ["jsonl", "parquet"])
def test_fast_forward_into_files_for_offline_training(tmp_path, file_format):
    path = write(tmp_path, {**CONFIG, "metrics": {}})
    out = tmp_path / "out"
    args = [
        "--config",
        str(path),
        "--output",
        str(out),
        "--format",
        file_format,
        "--start",
        "2026-01-05T00:00:00Z",
        "--duration",
        "1d",
    ]
    assert main(args) == 0
    names = {"transactions", "labels", "sensors", "applications"}
    assert {p.stem for p in out.iterdir()} == names
    if file_format == "jsonl":
        rows = {n: [json.loads(line) for line in (out / f"{n}.jsonl").open()] for n in names}
    else:
        rows = {n: pq.read_table(out / f"{n}.parquet").to_pylist() for n in names}
        # Parquet has a column for every field: drop the empty optional ones of labels
        required = set(load_schema("label")["required"])
        rows["labels"] = [
            {k: v for k, v in r.items() if v is not None or k in required} for r in rows["labels"]
        ]
    labels = {r.get("transaction_id") for r in rows["labels"]}
    assert {r["transaction_id"] for r in rows["transactions"]} <= labels
    assert len(rows["labels"]) == sum(len(rows[n]) for n in names - {"labels"})
    for name in names:
        assert rows[name], name
        for row in rows[name][:50]:
            assert problems(row) == [], (name, row)


def test_a_live_run_serves_metrics_and_stops_on_sigterm_with_a_flush(tmp_path):
    port = free_port()
    path = write(
        tmp_path,
        {
            **CONFIG,
            "metrics": {"port": port},
            "simulator": {**CONFIG["simulator"], "ratePerSecond": 400},
        },
    )
    env = {"FRAUDSIM_METRICS_ADDRESS": "127.0.0.1", "PATH": "/usr/bin:/bin"}
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fraud_simulator",
            "--config",
            str(path),
            "--output",
            str(out),
            "--clock",
            "live",
            "--start",
            "2026-01-05T08:00:00Z",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = ""
        for _ in range(100):  # bounded: up to ~10 s
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1).read()
                body = body.decode()
                if 'fraudsim_events_total{kind="transaction",scenario="none"}' in body:
                    break
            except OSError:
                pass
            subprocess.run(["sleep", "0.1"], check=True)
        assert 'fraudsim_events_total{kind="transaction",scenario="none"}' in body
        assert "fraudsim_target_transactions_per_second 400.0" in body
        subprocess.run(["sleep", "1.5"], check=True)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    transactions = sum(1 for _ in (out / "transactions.jsonl").open())
    elapsed = float(stderr.rsplit(" in ", 1)[1].split(" s")[0])
    assert abs(transactions / elapsed - 400) < 80, (transactions, elapsed)
