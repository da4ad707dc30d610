"""``python -m devkit.chaos.worker mapping|streaming``: a part of the embedded platform in a process of its
own, so that a chaos experiment can kill it (SIGKILL) and start it again, as a crash and a restart on AWS.

- ``mapping``: the local event source mapping running the real MSK landing function
  (``devkit.local.platform.msk_mapping``: the environment's consumer group, commits after success);
- ``streaming``: the Spark streaming enrichment job with a processing-time trigger on its checkpoint
  (``spark.jobs.streaming_enrichment``), on the Glue-like local session.

Both read their wiring from the environment (``Settings.from_env``), as the deployed runtimes do, and stop
cleanly on SIGTERM. A *kill point* makes a SIGKILL land at a chosen moment instead of at a random one:
when the file named by ``--kill-point`` exists, the worker stops at that moment (the mapping: after the
landing function returned and before the offsets are committed; streaming: after the micro-batch's silver
append and before its commit marker), writes its pid to ``<kill point>.reached`` and waits to be killed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any, Final

from dataforge.settings import Settings

logger = logging.getLogger(__name__)

ROLES: Final = ("mapping", "streaming")
DEFAULT_TRIGGER: Final = "processingTime=2 seconds"


def hold_if_asked(kill_point: Path | None) -> None:
    """At a kill point that is armed (its file exists): announce it (``<kill point>.reached``) and wait
    to be killed; it disarms itself first, so a restarted worker runs on."""
    if kill_point is None or not kill_point.exists():
        return
    import os

    kill_point.unlink(missing_ok=True)
    reached = kill_point.with_name(kill_point.name + ".reached")
    reached.write_text(str(os.getpid()))
    logger.warning("kill point %s reached: waiting to be killed", kill_point)
    while True:  # the harness sends SIGKILL; SIGTERM still stops the process (default action restored)
        time.sleep(1)


def run_mapping(settings: Settings, stop: threading.Event, kill_point: Path | None) -> None:
    from devkit.local.platform import msk_mapping

    mapping = msk_mapping(settings)
    handler = mapping.handler

    def handle(event: dict[str, Any], context: Any) -> Any:
        result = handler(event, context)
        hold_if_asked(kill_point)  # the batch is landed; its offsets are not committed yet
        return result

    mapping.handler = handle
    stats = mapping.run(stop=stop)
    logger.info("mapping stopped: %d invocations, %d records", stats.invocations, stats.records)


def run_streaming(settings: Settings, stop: threading.Event, kill_point: Path | None, trigger: str,
                  log_file: Path | None) -> None:
    from devkit.local.platform import spark_session
    from spark.jobs import common, streaming_enrichment

    write_silver = common.write_silver

    def write_and_maybe_hold(*args: Any, **kwargs: Any) -> Any:
        written = write_silver(*args, **kwargs)
        hold_if_asked(kill_point)  # silver appended; the batch's commit marker is not written yet
        return written

    common.write_silver = write_and_maybe_hold
    spark = spark_session(settings, log_file=log_file)
    done = threading.Event()

    def body() -> None:
        try:
            streaming_enrichment.run(spark, settings, trigger=trigger)
        finally:
            done.set()

    thread = threading.Thread(target=body, name="streaming", daemon=True)
    thread.start()
    while not stop.is_set() and not done.is_set():
        stop.wait(0.5)
    for query in spark.streams.active:
        query.stop()
    thread.join(60)
    spark.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devkit.chaos.worker", description=__doc__)
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--kill-point", type=Path, default=None)
    parser.add_argument("--trigger", default=DEFAULT_TRIGGER)
    parser.add_argument("--spark-log", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings.from_env()
    if args.role == "mapping":
        run_mapping(settings, stop, args.kill_point)
    else:
        run_streaming(settings, stop, args.kill_point, args.trigger, args.spark_log)


if __name__ == "__main__":
    main()
