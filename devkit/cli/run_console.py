"""What ``dataforge run`` shows on the console, and where everything else goes.

The console shows the stages, the end-of-run table, and then one live status line. Everything the
services and runtimes print goes to files under ``logs_dir()`` instead:

- ``run.log``: this process's Python logging (ours and third-party libraries', with tracebacks);
  WARNING and up from DataForge's own loggers also reach the console, one line each
  (:class:`ConsoleWarnings`);
- ``lambda.log``: what the in-process Lambda handlers print to stdout, as Lambda sends a function's
  stdout to its CloudWatch log stream: Powertools' structured logs and EMF metric blobs
  (:func:`stdout_to`);
- ``spark.log``: the local Spark driver JVM (log4j2, ``devkit.local.spark.log4j2_config``);
- ``moto.log``, ``kafka.log``, ``dashboard.log``: the service processes (they write there already).

:class:`StatusProbe` samples the live figures (events/s in, consumer lag, the realtime API's
``freshness_seconds``, open alerts) and logs the changes that matter (the API stops answering, a new
alert opens) as warnings, which :class:`ConsoleWarnings` shows.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Final, TextIO

from rich.console import Console
from rich.text import Text

logger = logging.getLogger(__name__)

#: The loggers whose warnings reach the console: this repository's packages, except the Lambda
#: functions' (``lambdas``): their log is the function's log, as in CloudWatch Logs, and what matters
#: in it reaches the console another way (an alert the evaluator raises is announced from the API's
#: open alerts; a failed invocation fails the mapping, which logs it). Third-party loggers (py4j,
#: botocore, uvicorn, Powertools, ...) write to ``run.log`` only.
OWN_LOGGERS: Final = ("dataforge", "devkit", "spark", "chalicelib", "app", "panel_dashboard")
RUN_LOG: Final = "run.log"
LAMBDA_LOG: Final = "lambda.log"
SPARK_LOG: Final = "spark.log"
MAX_LINE: Final = 300
MAX_ALERTS_SHOWN: Final = 5

_QUIET_THIRD_PARTY: Final = ("py4j", "botocore", "urllib3", "s3transfer", "bokeh", "tornado")
_WHITESPACE: Final = re.compile(r"\s+")
# No proxy, ever, for the local API on 127.0.0.1 (HTTP_PROXY in the environment must not capture it).
_DIRECT: Final = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def is_own(name: str) -> bool:
    """Whether logger ``name`` belongs to one of :data:`OWN_LOGGERS` (the package or a child). The
    ``*.librdkafka`` children carry librdkafka's own log lines (transient broker retries): third-party."""
    if name.rsplit(".", 1)[-1] == "librdkafka":
        return False
    return any(name == package or name.startswith(package + ".") for package in OWN_LOGGERS)


def one_line(record: logging.LogRecord) -> str:
    """``record`` as one readable line: its message, then the exception's type and message (the
    traceback stays in ``run.log``), whitespace collapsed, at most :data:`MAX_LINE` characters."""
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text += f": {type(exc).__name__}: {exc}"
    text = _WHITESPACE.sub(" ", text).strip()
    if len(text) > MAX_LINE:
        text = text[: MAX_LINE - 1] + "…"
    return text


class ConsoleWarnings(logging.Handler):
    """WARNING and up from DataForge's own loggers, one line each on ``console`` (printed above a
    running ``rich.live.Live``); everything else is left to the file handler."""

    def __init__(self, console: Console, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.console = console
        self.addFilter(lambda record: is_own(record.name))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
            style = "bold red" if record.levelno >= logging.ERROR else "yellow"
            line = Text.assemble((f"{stamp} {record.levelname.lower()}: ", style), one_line(record))
            self.console.print(line, no_wrap=True, overflow="ellipsis", highlight=False)
        except Exception:  # noqa: BLE001 - a logging handler never raises (logging.Handler.handleError's contract)
            self.handleError(record)


@contextmanager
def run_logging(console: Console, logs: Path) -> Iterator[Path]:
    """Route this process's logging to ``logs/run.log`` (INFO and up, Python warnings included) and
    DataForge's own warnings to ``console`` as well; undone on exit. Yields the log file's path."""
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / RUN_LOG
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"))
    console_handler = ConsoleWarnings(console)
    root = logging.getLogger()
    previous_level = root.level
    quiet = {name: logging.getLogger(name).level for name in _QUIET_THIRD_PARTY}
    root.addHandler(file_handler)
    root.addHandler(console_handler)
    root.setLevel(logging.INFO)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        root.setLevel(previous_level)
        root.removeHandler(console_handler)
        root.removeHandler(file_handler)
        file_handler.close()


@contextmanager
def stdout_to(path: Path) -> Iterator[TextIO]:
    """Point ``sys.stdout`` at ``path`` (appended, line-buffered) while the block runs: whatever the
    in-process runtimes print (the Lambda handlers' Powertools logs and EMF metrics) lands in the
    file, as a Lambda's stdout lands in its log stream. Yields the stream it replaced, which the
    caller's console keeps writing to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = sys.stdout
    with path.open("a", encoding="utf-8", buffering=1) as sink:
        sys.stdout = sink
        try:
            yield previous
        finally:
            sys.stdout = previous


@contextmanager
def spinner(console: Console, message: str) -> Iterator[Callable[[str], None]]:
    """A transient spinner with ``message`` while the block runs; yields the function that changes the
    message. Unlike ``Console.status``, it leaves ``sys.stdout``/``sys.stderr`` alone: rich's ``Live``
    otherwise redirects them onto the console in a terminal, and with them the Lambdas' EMF output."""
    from rich.live import Live
    from rich.spinner import Spinner

    spin = Spinner("dots", text=message)
    with Live(spin, console=console, transient=True, refresh_per_second=12.5,
              redirect_stdout=False, redirect_stderr=False):
        yield lambda text: spin.update(text=text)


# --- the live status line ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StatusSample:
    """One reading of the live figures; ``None``: unknown right now (source off or not answering)."""

    events_per_second: float | None
    lag: int | None
    freshness_seconds: float | None
    open_alerts: int | None
    more_alerts: bool = False  # the API has more open alerts than its first page holds
    api_error: str | None = None


def status_line(sample: StatusSample) -> Text:
    """The live status line: events/s in, consumer lag, data freshness, open alerts."""
    def figure(value: float | None, unit: str = "") -> str:
        return "–" if value is None else f"{value:,.{0 if isinstance(value, int) else 1}f}{unit}"

    rate = "off" if sample.events_per_second is None else f"{sample.events_per_second:,.1f}"
    alerts = figure(sample.open_alerts) + ("+" if sample.more_alerts else "")
    line = Text.assemble(
        ("live ", "bold green"), f"{rate} events/s in · lag {figure(sample.lag)} · ",
        f"freshness {figure(sample.freshness_seconds, ' s')} · ",
        (f"open alerts {alerts}", "bold red" if sample.open_alerts else ""),
    )
    if sample.api_error is not None:
        line.append(" · API not answering", style="bold red")
    line.append(f"  {time.strftime('%H:%M:%S')}  (Ctrl-C stops)", style="dim")
    return line


Fetch = Callable[[str, Mapping[str, str]], Any]


def fetch_json(url: str, headers: Mapping[str, str], timeout: float = 2.0) -> Any:
    """GET ``url`` and decode its JSON body; raises ``OSError`` (``URLError``) or ``ValueError``."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url!r}")
    request = urllib.request.Request(url, headers=dict(headers))  # noqa: S310 - scheme checked above
    with _DIRECT.open(request, timeout=timeout) as response:
        return json.loads(response.read())


class StatusProbe:
    """Samples the live figures; logs a warning when the API stops answering and one per new open alert.

    ``produced``: records sent so far (``None``: no live traffic), turned into a rate over the last
    ``RATE_WINDOW`` seconds (the producer confirms records in bursts); ``lag``: the landing consumer
    group's lag (``None`` when it cannot be read); ``fetch``: a JSON GET (injected in tests).
    """

    RATE_WINDOW: ClassVar[float] = 10.0

    def __init__(self, *, api_url: str, api_key: str, produced: Callable[[], int] | None,
                 lag: Callable[[], int | None], fetch: Fetch = fetch_json,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._api = api_url.rstrip("/")
        self._headers = {"x-api-key": api_key}
        self._produced = produced
        self._lag = lag
        self._fetch = fetch
        self._clock = clock
        self._counts: deque[tuple[float, int]] = deque()
        self._api_down = False
        self._seen_alerts: set[str] = set()

    def sample(self) -> StatusSample:
        rate = self._rate()
        lag = self._lag()
        try:
            realtime = self._fetch(f"{self._api}/v1/realtime?minutes=5", self._headers)
            alerts = self._fetch(f"{self._api}/v1/alerts?status=open", self._headers)
        except (OSError, ValueError) as exc:
            if not self._api_down:
                logger.warning("the API at %s is not answering (%s); the live line waits for it", self._api, exc)
            self._api_down = True
            return StatusSample(rate, lag, None, None, api_error=str(exc))
        if self._api_down:
            logger.info("the API at %s answers again", self._api)
            self._api_down = False
        items = alerts.get("items", []) if isinstance(alerts, dict) else []
        self._announce(items)
        freshness = realtime.get("freshness_seconds") if isinstance(realtime, dict) else None
        if isinstance(freshness, bool) or not isinstance(freshness, (int, float)):
            freshness = None
        return StatusSample(rate, lag, freshness, len(items),
                            more_alerts=bool(isinstance(alerts, dict) and alerts.get("next_token")))

    def _rate(self) -> float | None:
        if self._produced is None:
            return None
        now = self._clock()
        self._counts.append((now, self._produced()))
        while len(self._counts) > 2 and now - self._counts[1][0] >= self.RATE_WINDOW:
            self._counts.popleft()  # keep one reading at or before the window's start
        (first, before), (_, after) = self._counts[0], self._counts[-1]
        return 0.0 if now <= first else max(0.0, (after - before) / (now - first))

    def _announce(self, items: list[Any]) -> None:
        new = [i for i in items if isinstance(i, dict) and i.get("alert_id") not in self._seen_alerts]
        for item in new[:MAX_ALERTS_SHOWN]:
            logger.warning("alert open: %s (%s) %s", item.get("rule"), item.get("severity"), item.get("message"))
        if len(new) > MAX_ALERTS_SHOWN:
            logger.warning("%d more open alerts (GET /v1/alerts, or the dashboard)", len(new) - MAX_ALERTS_SHOWN)
        self._seen_alerts.update(str(i.get("alert_id")) for i in new)
