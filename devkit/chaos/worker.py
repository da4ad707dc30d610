"""``python -m devkit.chaos.worker mapping|streaming``: a part of the embedded platform in a process of its
own, so that a chaos experiment can kill it (SIGKILL) and start it again, as a crash and a restart on AWS.

- ``mapping``: the local event source mapping running the real MSK landing function
  (``devkit.local.platform.msk_mapping``: the environment's consumer group, commits after success);
- ``streaming``: the Spark streaming enrichment job with a processing-time trigger on its checkpoint
  (``spark.jobs.streaming_enrichment``), on the Glue-like local session;
- ``landing`` (started by ``mapping --landing-skew SECONDS``, not by hand): the MSK landing function in an
  execution environment of its own, a child process whose wall clock is that far off (libfaketime,
  ``devkit.chaos.clock``), invoked batch by batch by the mapping, which stays on the real clock. This is
  AWS's split: the event source mapping is a service polling the brokers, the function runs on a Lambda
  host with a clock of its own; it is also the only way to skew the landing here, since librdkafka (the
  mapping's consumer) cannot run under libfaketime while the landing function (boto3 only) can.

Both read their wiring from the environment (``Settings.from_env``), as the deployed runtimes do, and stop
cleanly on SIGTERM. A *kill point* makes a SIGKILL land at a chosen moment instead of at a random one:
when the file named by ``--kill-point`` exists, the worker stops at that moment (the mapping: after the
landing function returned and before the offsets are committed; streaming: after the micro-batch's silver
append and before its commit marker), writes its pid to ``<kill point>.reached`` and waits to be killed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO, Final

from dataforge.errors import ServiceError
from dataforge.settings import Settings

logger = logging.getLogger(__name__)

ROLES: Final = ("mapping", "streaming", "landing")
DEFAULT_TRIGGER: Final = "processingTime=2 seconds"


def hold_if_asked(kill_point: Path | None) -> None:
    """At a kill point that is armed (its file exists): announce it (``<kill point>.reached``) and wait
    to be killed; it disarms itself first, so a restarted worker runs on."""
    if kill_point is None or not kill_point.exists():
        return
    kill_point.unlink(missing_ok=True)
    reached = kill_point.with_name(kill_point.name + ".reached")
    reached.write_text(str(os.getpid()))
    logger.warning("kill point %s reached: waiting to be killed", kill_point)
    while True:  # the harness sends SIGKILL; SIGTERM still stops the process (default action restored)
        time.sleep(1)


class LandingChildError(ServiceError):
    """The skewed landing child answered with an error, or died (the mapping retries the batch)."""


class SkewedLanding:
    """The MSK landing function as a warm execution environment in a child process ``offset`` away in
    wall-clock time: ``python -m devkit.chaos.clock run devkit.chaos.worker landing --result-fd N`` under
    ``devkit.chaos.clock.check_skew(offset)``. One request per invocation on the child's stdin (the MSK
    event and the function name, one JSON line), one answer on the result pipe (``{"result": ...,
    "clock": <the child's time.time()>}`` or ``{"error": ...}``); the child's logs (the handler's JSON
    logs and EMF metrics) go to this process's stdout and stderr. A failed invocation raises
    ``LandingChildError`` (the mapping retries the batch); a dead child is replaced at the next one, as
    Lambda replaces a failed execution environment."""

    def __init__(self, offset: timedelta) -> None:
        from devkit.chaos.clock import check_skew

        self.offset = offset
        self._env = check_skew(offset)
        self._child: subprocess.Popen[bytes] | None = None
        self._answers: BinaryIO | None = None
        self.last_offset: float | None = None  # the child's clock minus this process's, at its last answer

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return None if self._child is None or self._child.poll() is not None else self._child.pid

    def _start(self) -> tuple[subprocess.Popen[bytes], BinaryIO]:
        from devkit.chaos.clock import RUN_MODULE

        read, write = os.pipe()
        try:
            child = subprocess.Popen([sys.executable, *RUN_MODULE, "devkit.chaos.worker", "landing",
                                      "--result-fd", str(write)], env=self._env, stdin=subprocess.PIPE,
                                     pass_fds=(write,))
        except OSError:
            os.close(read)
            raise
        finally:
            os.close(write)
        logger.info("landing child pid %d started, its clock %+.0f s off", child.pid, self.offset.total_seconds())
        return child, os.fdopen(read, "rb")

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        if self._child is None or self._answers is None or self._child.poll() is not None:
            if self._child is not None:
                logger.warning("landing child pid %d exited with %s: starting another", self._child.pid,
                               self._child.returncode)
            self.close()
            self._child, self._answers = self._start()
        child, answers = self._child, self._answers
        assert child.stdin is not None
        request = json.dumps({"event": event, "function_name": context.function_name}).encode() + b"\n"
        try:
            child.stdin.write(request)
            child.stdin.flush()
            line = answers.readline()
        except OSError as exc:
            raise LandingChildError(f"the landing child (pid {child.pid}) is gone: {exc}") from exc
        if not line:
            raise LandingChildError(f"the landing child (pid {child.pid}) exited with {child.wait()}")
        answer = json.loads(line)
        self.last_offset = answer["clock"] - time.time()
        if "error" in answer:
            raise LandingChildError(f"the landing function failed: {answer['error']}")
        logger.info("landing child clock %+.1f s from the mapping's", self.last_offset)
        return answer["result"]

    def close(self) -> None:
        """Stop the child (end of its stdin), then close the pipe."""
        child, answers, self._child, self._answers = self._child, self._answers, None, None
        if child is not None:
            if child.stdin is not None:
                child.stdin.close()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if answers is not None:
            answers.close()


def run_landing(result_fd: int) -> None:
    """The ``landing`` role: invoke the MSK landing function (``lambdas.msk_landing.handler.handler``, wired
    from the environment at its first invocation, as in Lambda) on each request read from stdin until it
    ends, answering each on ``result_fd`` (see ``SkewedLanding``); SIGTERM is ignored (see below)."""
    from devkit.fakes import LambdaContext
    from lambdas.msk_landing import handler as msk_landing

    # The mapping owns this process's lifetime: the SIGTERM that stops the worker's process group is for the
    # mapping, which lands its last batch here and then ends this process by closing its stdin.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with os.fdopen(result_fd, "wb", buffering=0) as answers:
        for line in sys.stdin.buffer:
            request = json.loads(line)
            answer: dict[str, Any]
            try:
                answer = {"result": msk_landing.handler(request["event"], LambdaContext(request["function_name"]))}
            except Exception as exc:  # the invocation boundary: the error goes back to the mapping, which retries
                logger.exception("landing failed")
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            answer["clock"] = time.time()
            answers.write(json.dumps(answer).encode() + b"\n")


def run_mapping(settings: Settings, stop: threading.Event, kill_point: Path | None,
                landing_skew: timedelta | None = None) -> None:
    from devkit.local.platform import msk_mapping

    mapping = msk_mapping(settings)
    skewed = None if not landing_skew else SkewedLanding(landing_skew)
    handler = mapping.handler if skewed is None else skewed

    def handle(event: dict[str, Any], context: Any) -> Any:
        result = handler(event, context)
        hold_if_asked(kill_point)  # the batch is landed; its offsets are not committed yet
        return result

    mapping.handler = handle
    try:
        stats = mapping.run(stop=stop)
    finally:
        if skewed is not None:
            skewed.close()
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
    parser.add_argument("--landing-skew", type=int, default=0, metavar="SECONDS",
                        help="mapping: invoke the landing function in a child whose clock is this far off")
    parser.add_argument("--result-fd", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.role == "landing":
        if args.result_fd is None:
            parser.error("landing: --result-fd is required (it is started by mapping --landing-skew)")
        run_landing(args.result_fd)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings.from_env()
    if args.role == "mapping":
        run_mapping(settings, stop, args.kill_point, timedelta(seconds=args.landing_skew))
    else:
        run_streaming(settings, stop, args.kill_point, args.trigger, args.spark_log)


if __name__ == "__main__":
    main()
