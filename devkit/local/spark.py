"""A local SparkSession built the way AWS Glue 5.1 runs Spark: Spark 3.5.6, Java 17, ``s3://`` via S3A.

On Glue the session comes from ``GlueContext``; locally :func:`build_session` makes one that reads and
writes the same ``s3://`` URIs on the embedded S3 (the moto server), with the Kafka source on the
classpath. The jars come from Maven Central (``build/maven/spark/pom.xml``, resolved and cached by
:mod:`devkit.local.maven`).

pyspark is imported inside :func:`build_session` only: the toolkit's commands import this module cheaply.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from dataforge import envvars
from devkit.local import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, LOCAL_AWS_REGION
from devkit.local.maven import resolve_jars
from spark.runtime import JOB_SQL_CONF

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

JAR_BUNDLE: Final = "spark"
DEFAULT_MASTER: Final = "local[2]"
DEFAULT_SHUFFLE_PARTITIONS: Final = 4
DEFAULT_DRIVER_MEMORY: Final = "2g"

_S3A: Final = "org.apache.hadoop.fs.s3a.S3AFileSystem"

def s3a_conf(endpoint_url: str, *, region: str = LOCAL_AWS_REGION) -> dict[str, str]:
    """Hadoop settings (``spark.hadoop.*``) that point S3A, for both ``s3://`` and ``s3a://``, at an
    S3-compatible endpoint with path-style access and fake credentials."""
    hadoop = {
        "fs.s3.impl": _S3A,
        "fs.s3a.impl": _S3A,
        "fs.AbstractFileSystem.s3a.impl": "org.apache.hadoop.fs.s3a.S3A",
        "fs.s3a.endpoint": endpoint_url,
        "fs.s3a.endpoint.region": region,
        "fs.s3a.path.style.access": "true",
        "fs.s3a.connection.ssl.enabled": str(endpoint_url.startswith("https")).lower(),
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": FAKE_ACCESS_KEY_ID,
        "fs.s3a.secret.key": FAKE_SECRET_ACCESS_KEY,
        "fs.s3a.bucket.probe": "0",
        "fs.s3a.change.detection.version.required": "false",
        "fs.s3a.fast.upload": "true",
        "fs.s3a.fast.upload.buffer": "bytebuffer",
        "fs.s3a.connection.maximum": "32",
        "fs.s3a.attempts.maximum": "3",
        "fs.s3a.retry.limit": "3",
    }
    return {f"spark.hadoop.{key}": value for key, value in hadoop.items()}


def session_conf(
    *,
    endpoint_url: str | None,
    jars: Sequence[Path],
    shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS,
    driver_memory: str = DEFAULT_DRIVER_MEMORY,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Every Spark setting of the local session (pure: unit-testable without a JVM)."""
    conf = {
        "spark.jars": ",".join(str(jar) for jar in jars),
        "spark.driver.memory": driver_memory,
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(shuffle_partitions),
        **JOB_SQL_CONF,
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.streaming.forceDeleteTempCheckpointLocation": "true",
        "spark.sql.adaptive.enabled": "true",
        # S3A's FileContext binding only accepts s3a:// URIs; checkpoints on s3:// use the FileSystem API
        # (Glue's EMRFS does the same). Not atomic renames: fine for one local writer.
        "spark.sql.streaming.checkpointFileManagerClass":
            "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager",
        # Glue 5.1 writes with the v2 file output committer algorithm by default.
        "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -Dio.netty.tryReflectionSetAccessible=true",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if endpoint_url:
        conf.update(s3a_conf(endpoint_url))
    conf.update(extra or {})
    return conf


def build_session(
    app_name: str = "dataforge",
    *,
    endpoint_url: str | None = None,
    master: str = DEFAULT_MASTER,
    shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS,
    driver_memory: str = DEFAULT_DRIVER_MEMORY,
    jars: Sequence[Path] | None = None,
    extra: Mapping[str, str] | None = None,
) -> SparkSession:
    """The local SparkSession (or the active one, reconfigured where Spark allows).

    ``endpoint_url`` defaults to ``AWS_ENDPOINT_URL`` (the moto server); ``""`` means none for now
    (see :func:`configure_s3a`).
    """
    from pyspark.sql import SparkSession

    # the Python workers must run this interpreter (the venv), whatever PATH says
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    endpoint = endpoint_url if endpoint_url is not None else os.environ.get(envvars.AWS_ENDPOINT_URL) or None
    conf = session_conf(
        endpoint_url=endpoint,
        jars=resolve_jars(JAR_BUNDLE) if jars is None else jars,
        shuffle_partitions=shuffle_partitions,
        driver_memory=driver_memory,
        extra=extra,
    )
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    session: SparkSession = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


def configure_s3a(session: SparkSession, endpoint_url: str) -> None:
    """Point S3A of a running session at ``endpoint_url`` (takes effect for file systems not yet
    opened: Hadoop caches one per bucket)."""
    hadoop_conf = session.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_conf(endpoint_url).items():
        hadoop_conf.set(key.removeprefix("spark.hadoop."), value)
