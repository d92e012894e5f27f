"""A local Spark session with the Kafka connector on its classpath, bound to 127.0.0.1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from fraud_testbed.paths import SPARK_JARS
from fraud_testbed.process import ComponentError


def connector_jars() -> list[Path]:
    jars = sorted(SPARK_JARS.glob("*.jar"))
    if not any(jar.name.startswith("spark-sql-kafka") for jar in jars):
        raise ComponentError(
            f"spark-sql-kafka connector jars missing in {SPARK_JARS}: run `make deps`"
        )
    return jars


def local_conf(workdir: Path, cores: int = 2) -> dict[str, str]:
    """Spark settings for local mode on this machine: loopback only, no UI, few partitions."""
    return {
        "spark.master": f"local[{cores}]",
        "spark.jars": ",".join(str(jar) for jar in connector_jars()),
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": str(cores),  # one per core, as the operator sets
        "spark.local.dir": str(workdir / "spark-local"),
        "spark.sql.warehouse.dir": str(workdir / "warehouse"),
        "spark.driver.memory": "2g",
        "spark.sql.streaming.stateStore.providerClass": (
            "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
        ),
    }


def local_session(workdir: Path, app_name: str = "fraudpipeline-testbed", cores: int = 2):
    """Start (or return the running) SparkSession for tests and the local run."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Python workers must run this interpreter, which can import the project.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    for key, value in local_conf(workdir, cores).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
