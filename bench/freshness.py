"""Produce-to-visible latency of the realtime path (ADR 0014): the API, and (sampled) the dashboard page.

    .venv/bin/python bench/freshness.py [--rate 1000] [--seconds 60] [--no-search] [--no-dashboard]

The embedded platform the way ``dataforge run`` serves it, minus Spark (the speed path does not wait
for it; Spark's final minutes only replace what this measures): a moto server and a Kafka broker
(``devkit.local``), ``bootstrap``, the local event source mapping running the real MSK landing
function (``devkit.local.platform.msk_mapping``: its speed path on), the Chalice API served locally
(``devkit.cli.api.load_app`` + ``RestartableApi``, real clock), and the dashboard (``panel serve``,
one-second shared poller) in Chromium through Playwright.

A producer thread sends ``--rate`` valid payment events a second (event time = now, keyed by account)
for ``--seconds`` seconds, plus marker events:

- API markers, one every ``--marker-every`` seconds after a warm-up (``WARMUP_S``) (the mapping's cold start and
  first, larger batches are not the steady state this measures): a payment whose event time lies in a minute of its
  own, hours back in the API's 1440-minute window, that no other event touches; it is visible when
  ``GET /v1/realtime?minutes=1440`` returns that minute (a reader polls every 50 ms);
- dashboard markers, every 3 s: the same kind of payment in a minute of its own within the dashboard's
  60-minute chart (about 55 minutes back, one minute per marker); it is visible when the realtime
  chart's Bokeh data source in the page holds that minute with a count (polled in the page every 50 ms).

Latency = visible - the moment the marker was handed to the producer. Prints p50/p95/p99 for each,
the goals (API p95 <= 2 s, moonshot 1 s; dashboard p95 <= 3 s), then a short search for the highest
rate whose API p95 stays within 2 s (``--search-seconds`` per step, at most ``--search-steps`` steps;
``--no-search`` skips it). Last lines: each figure, its goal and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Producer

from dataforge import serving
from dataforge.settings import Settings
from devkit.cli.api import RestartableApi, load_app
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.kafka import KafkaBroker, create_topics
from devkit.local.moto_server import MotoServer
from devkit.local.platform import msk_mapping
from tests.fixtures.dashboard import CHROMIUM_ARGS, CHROMIUM_MISSING, chromium_path, start_dashboard

API_GOAL_S, API_MOONSHOT_S, DASHBOARD_GOAL_S = 2.0, 1.0, 3.0
PARTITIONS = 3
WARMUP_S = 5.0  # traffic before the first marker: the mapping's cold start is not the steady state
API_KEY = "bench-freshness-key"
MERCHANTS = [f"mrc_{n:04d}" for n in range(1, 41)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def payment(event_time: datetime, n: int, *, amount: str = "12.34", account: str | None = None) -> tuple[bytes, bytes]:
    account_id = account or f"acc_{n % 5000:05d}"
    value = json.dumps({
        "event_id": str(uuid.uuid4()), "event_type": "payment", "schema_version": 1,
        "event_time": event_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "transaction_id": f"txn_{n}", "account_id": account_id, "merchant_id": MERCHANTS[n % len(MERCHANTS)],
        "amount": amount, "currency": "USD", "status": "approved" if n % 10 else "declined",
        "decline_reason": None if n % 10 else "insufficient_funds", "channel": "web", "country": "US",
        "payment_method": "card", "risk_score": None,
    }, separators=(",", ":")).encode()
    return account_id.encode(), value


@dataclass
class Run:
    """One producing run: what was sent, and when each marker was produced and seen."""

    rate: float
    seconds: float
    marker_every: float
    api_base: datetime  # the first API marker minute
    warmup: float = 0.0
    sent: int = 0
    api_produced: dict[str, float] = field(default_factory=dict)  # marker minute -> produce time
    api_seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def api_latencies(self) -> list[float]:
        with self.lock:
            return [self.api_seen[m] - t for m, t in self.api_produced.items() if m in self.api_seen]


def produce(run: Run, producer: Producer, topic: str, stop: threading.Event) -> None:
    """``run.rate`` events a second in 10 ms slices, with the API markers."""
    started = time.monotonic()
    next_marker = started + run.warmup  # markers measure the steady state, after the mapping's first batches
    marker = 0
    n = 0
    while not stop.is_set():
        now_mono = time.monotonic()
        elapsed = now_mono - started
        if elapsed >= run.seconds:
            break
        due = int(elapsed * run.rate) - n
        now = datetime.now(UTC)
        for _ in range(max(0, due)):
            key, value = payment(now, n)
            producer.produce(topic, key=key, value=value)
            n += 1
        if now_mono >= next_marker:
            minute = run.api_base + timedelta(minutes=marker)
            key, value = payment(minute + timedelta(seconds=30), n, amount="0.01", account=f"marker_{marker}")
            with run.lock:
                run.api_produced[serving.realtime_sk(minute)] = time.monotonic()
            producer.produce(topic, key=key, value=value)
            marker += 1
            next_marker += run.marker_every
        producer.poll(0)
        time.sleep(max(0.0, 0.01 - (time.monotonic() - now_mono)))
    producer.flush(30)
    run.sent = n


def watch_api(run: Run, api_url: str, stop: threading.Event) -> None:
    """Poll the realtime route every 50 ms and note when each marker minute first appears."""
    with httpx.Client(base_url=api_url, headers={"x-api-key": API_KEY}, timeout=10) as client:
        while not stop.is_set():
            try:
                body = client.get("/v1/realtime", params={"minutes": 1440}).json()
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            seen_at = time.monotonic()
            with run.lock:
                for row in body.get("items", []):
                    minute = row["minute"]
                    if minute in run.api_produced and minute not in run.api_seen and row["txn_count"] >= 1:
                        run.api_seen[minute] = seen_at
            time.sleep(0.05)


def measure(rate: float, seconds: float, *, topic: str, bootstrap_servers: str, api_url: str, base: datetime,
            marker_every: float, page: Any | None) -> tuple[Run, list[float], list[float]]:
    run = Run(rate, seconds + WARMUP_S, marker_every, base, WARMUP_S)
    stop = threading.Event()
    config = {"bootstrap.servers": bootstrap_servers, "linger.ms": 5, "acks": "all", "enable.idempotence": True}
    watcher = threading.Thread(target=watch_api, args=(run, api_url, stop), daemon=True)
    sender = threading.Thread(target=produce, args=(run, Producer(config), topic, stop), daemon=True)
    watcher.start()
    sender.start()
    if page is not None:
        time.sleep(WARMUP_S)
    dash = [] if page is None else watch_dashboard(page, Producer({**config, "linger.ms": 0}), topic, seconds)
    sender.join()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(run.api_seen) < len(run.api_produced):
        time.sleep(0.1)
    stop.set()
    watcher.join()
    missing = len(run.api_produced) - len(run.api_seen)
    if missing:
        print(f"  {missing} API markers not seen within 20 s after the run: counted as 20 s")
    return run, run.api_latencies() + [20.0] * missing, dash


CHART_HAS_MINUTE = """(target) => {
  for (const doc of Bokeh.documents) {
    for (const model of doc.all_models) {
      const data = model.data;
      if (!data) continue;
      const get = (k) => (data instanceof Map ? data.get(k) : data[k]);
      const minutes = get("minute"), counts = get("txn_count");
      if (!minutes || !counts) continue;
      for (let i = 0; i < minutes.length; i++) {
        if (Math.abs(Number(minutes[i]) - target) < 1 && counts[i] >= 1) return true;
      }
    }
  }
  return false;
}"""


def watch_dashboard(page: Any, producer: Producer, topic: str, seconds: float) -> list[float]:
    """Every 3 s, a marker in a minute of its own within the chart's hour; the time until the chart has it."""
    base = (datetime.now(UTC) - timedelta(minutes=55)).replace(second=0, microsecond=0)
    latencies: list[float] = []
    started = time.monotonic()
    marker = 0
    while time.monotonic() - started < seconds - 4:
        minute = base + timedelta(minutes=marker)
        key, value = payment(minute + timedelta(seconds=30), marker, amount="0.02", account=f"marker_dash_{marker}")
        produced = time.monotonic()
        producer.produce(topic, key=key, value=value)
        producer.flush(10)
        try:
            page.wait_for_function(CHART_HAS_MINUTE, arg=minute.timestamp() * 1000, polling=50, timeout=20_000)
            latencies.append(time.monotonic() - produced)
        except Exception:  # a marker not seen within 20 s counts as 20 s (never silently dropped)
            latencies.append(20.0)
            print(f"dashboard marker {serving.realtime_sk(minute)} not seen within 20 s")
        marker += 1
        time.sleep(max(0.0, produced + 3.0 - time.monotonic()))
    return latencies


def line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name}: no samples"
    return (f"{name}: n={len(values)} p50={percentile(values, 50):.3f} s p95={percentile(values, 95):.3f} s "
            f"p99={percentile(values, 99):.3f} s max={max(values):.3f} s mean={statistics.fmean(values):.3f} s")


@dataclass
class Platform:
    settings: Settings
    api_url: str
    workdir: Path


@contextmanager
def embedded_platform() -> Iterator[Platform]:
    """moto + Kafka + the local mapping running the real MSK landing function + the API served locally."""
    workdir = Path(tempfile.mkdtemp(prefix="dataforge-freshness-"))
    moto = MotoServer(logs_dir=workdir / "moto")
    broker = KafkaBroker(workdir / "kafka", logs_dir=workdir / "kafka-logs")
    stop_esm = threading.Event()
    api: RestartableApi | None = None
    try:
        moto.start()
        broker.start()
        moto.wait_ready()
        broker.wait_ready()
        env = local_environment(endpoint_url=moto.endpoint_url, kafka_bootstrap_servers=broker.bootstrap_servers,
                                prefix="dffresh", api_key=API_KEY)
        os.environ.update(env)  # boto3 clients of the landing function and the API read the fake credentials
        settings = Settings.from_env(env)
        bootstrap(settings)
        create_topics(broker.bootstrap_servers, {settings.kafka_topic: PARTITIONS})
        esm = msk_mapping(settings)
        threading.Thread(target=esm.run, kwargs={"stop": stop_esm}, daemon=True).start()
        api = RestartableApi(load_app())
        api.start()
        print(f"platform up: moto {moto.endpoint_url}, kafka {broker.bootstrap_servers}, API {api.url}")
        yield Platform(settings, api.url, workdir)
        print(f"mapping: {esm.stats.invocations} invocations, {esm.stats.records:,} records, "
              f"{esm.stats.failures} failures")
    finally:
        stop_esm.set()
        if api is not None:
            api.stop()
        broker.stop()
        moto.stop()


@contextmanager
def dashboard_page(platform: Platform) -> Iterator[Any | None]:
    """The dashboard served as ``dataforge dashboard`` runs it, open in Chromium; None without Chromium."""
    path = chromium_path()
    if path is None:
        print(CHROMIUM_MISSING)
        yield None
        return
    from playwright.sync_api import sync_playwright

    server = start_dashboard(platform.api_url, API_KEY, platform.workdir / "panel.log", realtime_seconds=1.0)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(server.url)
            page.locator("[data-testid=freshness]", has_text="Last updated").wait_for(timeout=120_000)
            yield page
            browser.close()
    finally:
        server.stop()


def search_rates(platform: Platform, args: argparse.Namespace, base: datetime) -> list[tuple[float, float]]:
    """Double the rate per short step until the API p95 exceeds the goal or the producer falls behind."""
    found: list[tuple[float, float]] = []
    rate = args.rate
    for _ in range(args.search_steps):
        rate *= 2
        step, lat, _ = measure(rate, args.search_seconds, topic=platform.settings.kafka_topic,
                               bootstrap_servers=platform.settings.require("kafka_bootstrap_servers"),
                               api_url=platform.api_url, base=base, marker_every=1.0, page=None)
        base += timedelta(minutes=len(step.api_produced) + 1)
        p95 = percentile(lat, 95) if lat else float("inf")
        achieved = step.sent / (args.search_seconds + WARMUP_S)
        found.append((achieved, p95))
        print(f"  search: asked {rate:,.0f}/s, sent {achieved:,.0f}/s, API p95 {p95:.3f} s")
        if p95 > API_GOAL_S or achieved < 0.9 * rate:
            break
    return found


def report(args: argparse.Namespace, api_lat: list[float], dash: list[float],
           search: list[tuple[float, float]]) -> None:
    print()
    print(line("produce -> realtime API", api_lat))
    if dash:
        print(line("produce -> dashboard page (sampled)", dash))
    api_p95 = percentile(api_lat, 95)
    if search:
        within = [rate for rate, p95 in [(args.rate, api_p95), *search] if p95 <= API_GOAL_S]
        print(f"highest produce rate with API p95 <= {API_GOAL_S:g} s: "
              + (f"{max(within):,.0f} events/s" if within else "none of the rates tried"))
    print(f"goal: API p95 <= {API_GOAL_S:g} s (moonshot {API_MOONSHOT_S:g} s); "
          f"dashboard p95 <= {DASHBOARD_GOAL_S:g} s")
    print(f"API p95 {api_p95:.3f} s / goal {API_GOAL_S:g} s = {api_p95 / API_GOAL_S:.2f} "
          f"(moonshot ratio {api_p95 / API_MOONSHOT_S:.2f})")
    if dash:
        dash_p95 = percentile(dash, 95)
        print(f"dashboard p95 {dash_p95:.3f} s / goal {DASHBOARD_GOAL_S:g} s = {dash_p95 / DASHBOARD_GOAL_S:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--marker-every", type=float, default=0.5)
    parser.add_argument("--no-dashboard", action="store_true")
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--search-seconds", type=float, default=20.0)
    parser.add_argument("--search-steps", type=int, default=4)
    args = parser.parse_args()

    with embedded_platform() as platform, contextlib.ExitStack() as stack:
        page = None if args.no_dashboard else stack.enter_context(dashboard_page(platform))
        base = (datetime.now(UTC) - timedelta(hours=20)).replace(second=0, microsecond=0)
        print(f"producing {args.rate:,.0f} events/s for {args.seconds:.0f} s, API marker every "
              f"{args.marker_every} s" + (", dashboard marker every ~3 s" if page is not None else ""))
        run, api_lat, dash = measure(args.rate, args.seconds, topic=platform.settings.kafka_topic,
                                     bootstrap_servers=platform.settings.require("kafka_bootstrap_servers"),
                                     api_url=platform.api_url, base=base, marker_every=args.marker_every, page=page)
        print(f"sent {run.sent:,} events ({run.sent / (args.seconds + WARMUP_S):,.0f}/s, warm-up included)")
        stack.close()  # the dashboard and the browser stop before the search
        search = [] if args.no_search else search_rates(
            platform, args, base + timedelta(minutes=len(run.api_produced) + 1))
        report(args, api_lat, dash, search)


if __name__ == "__main__":
    main()
