"""Process faults (issue 19, experiments 1, 2, 5, 9): a part of the platform crashes (SIGKILL) or its AWS
endpoint stops answering, under a steady produce rate; each experiment ends with the exact verdict of
:meth:`devkit.chaos.harness.ChaosPlatform.verify`.

- ``mapping_sigkill`` (1): the local event source mapping's process is killed at its kill point, after the
  landing function landed a batch and before the offsets are committed (the window where a crash makes the
  batch be delivered again), then started again: the batch is redelivered and overwrites the same objects.
- ``broker_sigkill`` (2): the Kafka broker is killed under load (producer and mapping connected) and
  restarted on its data directory and ports after ``BROKER_DOWN_SECONDS``: the idempotent producer resends
  what was not acknowledged, the mapping resumes from the group's commits.
- ``streaming_sigkill`` (5): the Spark streaming process (driver and its JVM) is killed in the middle of a
  micro-batch, after the batch's silver append and before its commit marker, then restarted from its
  checkpoint: the micro-batch is run again under the same batch id.
- ``moto_outage`` (9): the AWS endpoint (moto server) stops answering for ``MOTO_DOWN_SECONDS``, then comes
  back with the same state on the same port. moto keeps its state in memory only, so a restart would
  lose the lake; the outage is SIGSTOP/SIGCONT of the server's process: while it is stopped the kernel still
  accepts connections on its port (the listen backlog) but nothing answers, so every client waits in its
  read timeout: an endpoint that has become unreachable behind a blackholing network, the harder case for
  clients (a refused connection fails fast; H2's Toxiproxy experiments cover resets and refusals). On
  SIGCONT the server answers the requests that waited, with its state intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from devkit.chaos.harness import ChaosPlatform, Outcome

RATE: Final = 100.0  # records/s
WARMUP_RECORDS: Final = 300  # landed before the fault: the steady state
AFTER_FAULT_SECONDS: Final = 5.0  # production goes on after the fault ended
BROKER_DOWN_SECONDS: Final = 10.0
MOTO_DOWN_SECONDS: Final = 30.0


def experiment_mapping_sigkill(p: ChaosPlatform) -> Outcome:
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    mapping = p.worker("mapping")
    mapping.wait_kill_point()  # the mapping holds a landed, uncommitted batch
    in_flight = p.in_flight()
    started = time.monotonic()
    mapping.kill()
    mapping.restart()
    ended = time.monotonic()
    time.sleep(AFTER_FAULT_SECONDS)
    return p.outcome("mapping_sigkill", "process crash (event source mapping)", started, ended,
                     in_flight=in_flight)


def experiment_broker_sigkill(p: ChaosPlatform) -> Outcome:
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    broker = p.component("broker")
    before = p.producer.sent
    in_flight = p.in_flight()
    started = time.monotonic()
    broker.kill()
    time.sleep(BROKER_DOWN_SECONDS)
    broker.restart()
    ended = time.monotonic()
    in_flight += p.producer.sent - before
    time.sleep(AFTER_FAULT_SECONDS)
    return p.outcome("broker_sigkill", "broker crash", started, ended, in_flight=in_flight)


def experiment_streaming_sigkill(p: ChaosPlatform) -> Outcome:
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    streaming = p.worker("streaming")
    streaming.wait_kill_point(timeout=180)  # a micro-batch appended to silver, its marker not written
    in_flight = p.in_flight()
    started = time.monotonic()
    streaming.kill()
    streaming.restart()
    ended = time.monotonic()
    time.sleep(AFTER_FAULT_SECONDS)
    return p.outcome("streaming_sigkill", "process crash (Spark streaming)", started, ended, in_flight=in_flight)


def experiment_moto_outage(p: ChaosPlatform) -> Outcome:
    p.start_producer(RATE)
    p.wait_landed(WARMUP_RECORDS)
    moto = p.component("moto")
    before = p.producer.sent
    in_flight = p.in_flight()
    started = time.monotonic()
    moto.pause()
    try:
        time.sleep(MOTO_DOWN_SECONDS)
    finally:
        moto.resume()
    ended = time.monotonic()
    in_flight += p.producer.sent - before
    return p.outcome("moto_outage", "AWS endpoint unreachable", started, ended, in_flight=in_flight)


#: name -> experiment (``bench/recovery.py`` runs them all; ``tests/chaos/test_process_faults.py`` asserts them)
EXPERIMENTS: Final[dict[str, Callable[[ChaosPlatform], Outcome]]] = {
    "mapping_sigkill": experiment_mapping_sigkill,
    "broker_sigkill": experiment_broker_sigkill,
    "streaming_sigkill": experiment_streaming_sigkill,
    "moto_outage": experiment_moto_outage,
}

#: What each experiment needs of :func:`devkit.chaos.harness.platform`: its own broker / moto server (it
#: breaks them), Spark streaming as its own process.
NEEDS: Final[dict[str, frozenset[str]]] = {
    "mapping_sigkill": frozenset(),
    "broker_sigkill": frozenset({"broker"}),
    "streaming_sigkill": frozenset({"streaming"}),
    "moto_outage": frozenset({"moto"}),
}
