"""Clock skew for the chaos experiments: run a process with its wall clock shifted, with libfaketime.

libfaketime (Debian packages ``libfaketime`` and ``faketime``; ``make faketime`` installs them, the .deb
files cached in ``.cache/apt``) is a preload library that intercepts the C library's time calls
(``time``, ``gettimeofday``, ``clock_gettime``, file timestamps) of a dynamically linked process. Its
README ("4d) Using offsets for relative dates") documents the relative form used here: ``FAKETIME``
starting with ``+`` or ``-``, a number and an optional multiplier (``m``, ``h``, ``d``, ``y``), e.g.
``FAKETIME="-10m"``. CPython reads the wall clock with ``clock_gettime(CLOCK_REALTIME)`` (``time.time()``,
``datetime.now()``), and librdkafka, loaded into the same process, reads it the same way for a message's
CreateTime, so a producer or a landing process started this way lives ``offset`` away from the others.

What a real skewed host has, and so what ``skewed_env`` sets besides:

- ``FAKETIME_DONT_FAKE_MONOTONIC=1``: NTP skew moves the wall clock, not ``CLOCK_MONOTONIC``; timeouts,
  sleeps and backoffs (Python's and librdkafka's) keep running on real monotonic time (the README names
  this variable as the one JVM-based programs need too);
- ``NO_FAKE_STAT=1``: file timestamps stay real, so the process's view of the shared bytecode cache and
  of the files other processes write is not shifted (README, "file timestamps");
- ``libfaketimeMT.so.1``, the library variant with the pthread synchronisation (README: "libfaketime
  supports the pthreads environment"): the producer and the mapping run Kafka client threads.

``measure_offset`` checks that a given environment really shifts ``time.time()`` and
``datetime.now()`` in a Python child (the experiments and their tests call it before relying on it).

Two defects of Debian's libfaketime (0.9.10) decide what may run under it:

- with ``FAKETIME_DONT_FAKE_MONOTONIC=1`` its ``clock_nanosleep`` hands the kernel a negative time for an
  absolute ``CLOCK_MONOTONIC`` deadline, which is how Python 3.11's ``time.sleep`` sleeps: ``OSError:
  [Errno 22] Invalid argument`` (wolfcw/libfaketime issue 426); without it, every timed wait on the
  monotonic clock (``sem_clockwait``: ``threading.Event.wait``, lock timeouts) waits forever (issues 390,
  469). So the monotonic clock stays real, and ``python -m devkit.chaos.clock run MODULE ARGS...`` runs a
  module with ``time.sleep`` made of a timed ``threading.Event`` wait, which works;
- librdkafka's timed waits misbehave under it in every mode (a producer's ``poll(0.5)`` returns at once,
  a consumer's ``poll`` never returns), so no Kafka client runs under it: a skewed Kafka producer is a
  process that reads its clock under libfaketime (event times and the record timestamps it would set)
  and hands the records to a client outside it, which sends them with those timestamps; a skewed MSK
  landing is the landing function in a child under libfaketime, invoked batch by batch by a mapping
  outside it (``devkit.chaos.worker``, ``mapping --landing-skew``).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final, SupportsIndex

from dataforge.errors import ServiceError

#: Where Debian's ``libfaketime`` package installs the library (its multiarch directory).
LIBRARY_GLOB: Final = "/usr/lib/*/faketime/libfaketimeMT.so.1"
INSTALL_HINT: Final = "run `make faketime` (installs Debian's libfaketime and faketime packages)"

_PROBE: Final = (
    "import datetime, json, time\n"
    "print(json.dumps({'time': time.time(), 'datetime': datetime.datetime.now(datetime.UTC).timestamp(),"
    " 'monotonic': time.monotonic()}))\n"
)


class FaketimeUnavailableError(ServiceError):
    """libfaketime is not installed, or does not shift a child process's clock on this machine."""


def find_library(pattern: str = LIBRARY_GLOB) -> Path | None:
    """The installed libfaketime (multi-threaded variant), or None."""
    found = sorted(glob.glob(pattern))
    return Path(found[0]) if found else None


def require_library() -> Path:
    """The installed libfaketime, or ``FaketimeUnavailableError`` saying how to install it."""
    library = find_library()
    if library is None:
        raise FaketimeUnavailableError(f"libfaketime is not installed ({LIBRARY_GLOB} not found): {INSTALL_HINT}")
    return library


def faketime_offset(offset: timedelta) -> str:
    """``offset`` in libfaketime's relative form: a sign, then whole seconds (``+600``, ``-600``)."""
    seconds = offset.total_seconds()
    if seconds != int(seconds):
        raise ValueError(f"libfaketime offsets are whole seconds, got {offset}")
    return f"{'-' if seconds < 0 else '+'}{abs(int(seconds))}"


def skewed_env(offset: timedelta, base: Mapping[str, str] | None = None, *,
               library: Path | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) for a child whose wall clock is ``offset`` away
    from the real one; libfaketime goes first in ``LD_PRELOAD``, ahead of anything already there."""
    env = dict(os.environ if base is None else base)
    preload = str(library or require_library())
    env["LD_PRELOAD"] = f"{preload} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else preload
    env["FAKETIME"] = faketime_offset(offset)
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    env["NO_FAKE_STAT"] = "1"
    env["FAKETIME_DONT_RESET"] = "1"  # children of the child keep the same offset (README, 4e)
    return env


@dataclass(frozen=True, slots=True)
class MeasuredOffset:
    """How far a child's clocks were from this process's, in seconds (wall clock and monotonic)."""

    time_time: float
    datetime_now: float
    monotonic: float


def measure_offset(env: Mapping[str, str], *, python: str = sys.executable, timeout: float = 30.0) -> MeasuredOffset:
    """Run a Python child with ``env`` and compare its ``time.time()``, ``datetime.now()`` and
    ``time.monotonic()`` with this process's (read just before and after it; the difference of the two
    readings bounds the error)."""
    import json
    import time

    before, mono_before = time.time(), time.monotonic()
    try:
        done = subprocess.run([python, "-c", _PROBE], env=dict(env), capture_output=True, timeout=timeout,
                              check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise FaketimeUnavailableError(f"a Python child under libfaketime did not run: {exc}") from exc
    after, mono_after = time.time(), time.monotonic()
    seen = json.loads(done.stdout)
    middle, mono_middle = (before + after) / 2, (mono_before + mono_after) / 2
    return MeasuredOffset(seen["time"] - middle, seen["datetime"] - middle, seen["monotonic"] - mono_middle)


def check_skew(offset: timedelta, *, base: Mapping[str, str] | None = None,
               tolerance: float = 5.0) -> dict[str, str]:
    """``skewed_env(offset, base)``, after checking that it shifts a Python child's ``time.time()`` and
    ``datetime.now()`` by ``offset`` (within ``tolerance`` seconds) and leaves its monotonic clock
    alone; ``FaketimeUnavailableError`` otherwise."""
    env = skewed_env(offset, base)
    seen = measure_offset(env)
    wanted = offset.total_seconds()
    if abs(seen.time_time - wanted) > tolerance or abs(seen.datetime_now - wanted) > tolerance:
        raise FaketimeUnavailableError(
            f"libfaketime did not shift the clock by {wanted:+.0f} s: time.time() {seen.time_time:+.1f} s, "
            f"datetime.now() {seen.datetime_now:+.1f} s")
    if abs(seen.monotonic) > tolerance:  # (CLOCK_MONOTONIC is one clock for every process of the machine)
        raise FaketimeUnavailableError(f"libfaketime shifted the monotonic clock by {seen.monotonic:+.1f} s "
                                       "(FAKETIME_DONT_FAKE_MONOTONIC is ignored by this libfaketime)")
    return env


_NEVER: Final = threading.Event()


def _sleep(seconds: float | SupportsIndex) -> None:
    """``time.sleep`` for a process under libfaketime (see the module docstring)."""
    value = float(seconds)
    if value < 0:
        raise ValueError("sleep length must be non-negative")
    _NEVER.wait(value)


#: The interpreter arguments that run a module through ``run`` (``[python, *RUN_MODULE, module, ...]``).
RUN_MODULE: Final = ("-m", "devkit.chaos.clock", "run")


def main(argv: list[str] | None = None) -> None:
    """``run MODULE [ARGS...]``: run MODULE as ``__main__`` with the ``time.sleep`` libfaketime allows."""
    import runpy
    import time

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "run":
        raise SystemExit("usage: python -m devkit.chaos.clock run MODULE [ARGS...]")
    time.sleep = _sleep
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
