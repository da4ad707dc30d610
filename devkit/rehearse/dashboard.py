"""The dashboard container run the way ECS runs it: the image's command and environment
(``panel_dashboard/Dockerfile``), overlaid with the task definition's environment and secrets, serving on
the task's port; probed as the load balancer probes a target and as a browser opens a session.

``wiring`` reads what the rendered stack declares: the task definition's container definition (image,
port mappings, environment, secrets), the service's load balancer mapping, health-check grace period
and circuit breaker, the target group's port and health check, the HTTPS listener and the public URL
(the ``dashboard_url`` output, the hostname browsers open). ``static_problems`` checks what needs no
process: one port everywhere, an image named by a content-derived tag, a grace period, and a route from
the tasks' subnets to the internet (the API's public endpoint): their route tables' default route to a
NAT gateway that sits in a subnet whose default route is the internet gateway, and a task security
group that lets HTTPS out.

``rehearse`` then runs the Dockerfile's ``CMD`` (``/bin/sh -c`` for the shell form, as Docker does) in a
copy of the image's ``WORKDIR`` holding what the Dockerfile's ``COPY`` instructions take from the
build context, with the image's ``ENV`` then the task's environment and secrets (ECS: the task's
variables override the image's), the API URL pointed at a given local API, and:

- probes the target group's health-check path on the target's port (``traffic-port``: the port the
  service registers, the container port) and expects the target group's matcher;
- opens the Bokeh WebSocket (``/app/ws``, the session token of a page load as its subprotocol, as
  Bokeh's client does) with the headers a browser sends through the ALB (which passes ``Host`` on):
  from a page of the public URL (``Origin`` and ``Host`` the public host, ``Sec-Fetch-Site:
  same-origin``; accepted expected) and from a foreign page (``Origin`` elsewhere, ``Sec-Fetch-Site:
  cross-site``; refused expected);
- checks Bokeh's own allowlist (``--allow-websocket-origin``): the public origin with a ``Host`` that
  is not the public host and no fetch metadata, the one case where Tornado asks Bokeh. Tornado 6.6 and
  later accept a handshake they can tell is same-origin before asking Bokeh, so a browser behind the
  ALB would get in even with a wrong allowlist; the allowlist decides for other origins, for proxies
  that rewrite ``Host``, and for older Tornado releases.

Differences from the container, on purpose: Python and its packages are the venv's (``/opt/venv`` of the
image maps to the venv: the same versions, since both come from ``uv.lock``; ``locked_versions_match``
checks the ones the dashboard serves with), the server binds 127.0.0.1 instead of the command's
``0.0.0.0`` (checked to be ``0.0.0.0``: the ALB reaches the task's network interface, not its
loopback), it runs as the current user instead of the image's ``USER``, and the venv's editable install
of the project stays importable behind the copied sources (``PYTHONPATH`` puts the copy first; the
copy's own modules are the ones imported, checked by ``imported_from_copy``).

Not rehearsed: the image build itself (base image, ``pip install`` of the arm64 wheels), Fargate,
the ALB (TLS, stickiness, idle timeout), the NAT gateways carrying packets, SSM resolving the secret,
IAM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from dataforge import envvars
from dataforge.errors import ServiceError
from devkit.dashboard_image import DOCKERFILE, Dockerfile, Stage, context_files
from devkit.local import file_lock, port_open
from devkit.paths import project_root
from infra.plan import Rendered, Resource
from infra.settings import DASHBOARD_IMAGE_TAG

TASK: Final = "dashboard-task"
SERVICE: Final = "dashboard-service"
TARGETS: Final = "dashboard-targets"
HTTPS_LISTENER: Final = "dashboard-https"
URL_OUTPUT: Final = "dashboard_url"
EGRESS_RULE: Final = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
HTTPS_PORT: Final = 443
FOREIGN_ORIGIN: Final = "https://dashboard.attacker.example"
LOCAL_ADDRESS: Final = "127.0.0.1"
ALL_INTERFACES: Final = "0.0.0.0"  # noqa: S104 - what the image's command must bind (checked, never bound here)
START_TIMEOUT_SECONDS: Final = 90.0
#: The packages the server runs on whose venv versions must be uv.lock's (the image installs the lock's).
SERVING_PACKAGES: Final = ("panel", "bokeh", "tornado", "param", "httpx")
_TOKEN: Final = re.compile(r'"token"\s*:\s*"([^"]+)"')
_ADDRESS: Final = re.compile(r"--address\s+(\S+)")
_API_FAILURE: Final = re.compile(r"API \S+ \S+ failed|refresh failed")


class DashboardRehearsalError(ServiceError):
    """The stack or the Dockerfile cannot be rehearsed as declared (missing resource, busy port, no start)."""


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the rendered stack declares for the dashboard's container and its load balancer."""

    image: str
    container_port: int
    environment: dict[str, str]
    secrets: tuple[str, ...]
    service_container_port: int
    grace_seconds: int
    circuit_breaker: bool
    target_port: int
    health_path: str
    health_port: int
    health_matcher: str
    listener_port: int
    listener_protocol: str
    public_url: str
    subnets: tuple[str, ...]
    security_groups: tuple[str, ...]

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_url).hostname or ""

    @property
    def browser_origin(self) -> str:
        """The ``Origin`` a browser sends for a page of the public URL: scheme and host, and the port only
        when it is not the scheme's default (RFC 6454 serialization)."""
        parts = urlsplit(self.public_url)
        default = {"https": 443, "http": 80}.get(parts.scheme)
        port = parts.port or self.listener_port
        return f"{parts.scheme}://{parts.hostname}" + ("" if port == default else f":{port}")


def _container(task: Resource) -> dict[str, Any]:
    definitions = task.inputs["containerDefinitions"]
    containers: list[dict[str, Any]] = json.loads(definitions) if isinstance(definitions, str) else definitions
    if len(containers) != 1:
        raise DashboardRehearsalError(f"{TASK}: expected one container definition, found {len(containers)}")
    return containers[0]


def _resolve_port(value: object, traffic_port: int) -> int:
    return traffic_port if value in (None, "traffic-port") else int(str(value))


def wiring(rendered: Rendered) -> Wiring:
    """The dashboard's wiring as the rendered stack declares it."""
    try:
        task, service = rendered.by_name(TASK), rendered.by_name(SERVICE)
        targets, listener = rendered.by_name(TARGETS), rendered.by_name(HTTPS_LISTENER)
    except KeyError as exc:
        raise DashboardRehearsalError(f"stack {rendered.stack!r} declares no {exc.args[0]}") from exc
    container = _container(task)
    mappings = container.get("portMappings") or []
    if len(mappings) != 1:
        raise DashboardRehearsalError(f"{TASK}: expected one port mapping, found {mappings}")
    balancers = service.inputs.get("loadBalancers") or []
    if len(balancers) != 1:
        raise DashboardRehearsalError(f"{SERVICE}: expected one load balancer mapping, found {balancers}")
    service_port = int(balancers[0]["containerPort"])
    health = targets.inputs.get("healthCheck") or {}
    network = service.inputs.get("networkConfiguration") or {}
    breaker = service.inputs.get("deploymentCircuitBreaker") or {}
    return Wiring(
        image=str(container["image"]), container_port=int(mappings[0]["containerPort"]),
        environment={e["name"]: str(e["value"]) for e in container.get("environment") or []},
        secrets=tuple(s["name"] for s in container.get("secrets") or []),
        service_container_port=service_port,
        grace_seconds=int(service.inputs.get("healthCheckGracePeriodSeconds") or 0),
        circuit_breaker=bool(breaker.get("enable")) and bool(breaker.get("rollback")),
        target_port=int(targets.inputs["port"]),
        # ECS registers each task's IP with the service's container port; "traffic-port" probes that port.
        health_path=str(health.get("path") or "/"), health_port=_resolve_port(health.get("port"), service_port),
        health_matcher=str(health.get("matcher") or "200"),
        listener_port=int(listener.inputs["port"]), listener_protocol=str(listener.inputs["protocol"]),
        public_url=str(rendered.outputs[URL_OUTPUT]),
        subnets=tuple(network.get("subnets") or ()), security_groups=tuple(network.get("securityGroups") or ()))


def matches(status: int, matcher: str) -> bool:
    """An ALB ``matcher``: codes and ranges separated by commas ("200", "200-299", "200,302")."""
    for part in matcher.split(","):
        low, _, high = part.strip().partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


# --- what needs no process ---------------------------------------------------------------------------------
def _by_id(rendered: Rendered) -> dict[str, Resource]:
    """Resources by the id the mock engine gives them (``<name>-id``), as other inputs reference them."""
    return {f"{r.name}-id": r for r in rendered.resources if r.custom}


def _default_route(rendered: Rendered, table: Resource) -> dict[str, Any] | None:
    routes = [route for route in table.inputs.get("routes") or [] if route.get("cidrBlock") == "0.0.0.0/0"]
    table_id = f"{table.name}-id"
    routes += [{"natGatewayId": r.inputs.get("natGatewayId"), "gatewayId": r.inputs.get("gatewayId")}
               for r in rendered.of_type("aws:ec2/route:Route")
               if r.inputs.get("routeTableId") == table_id and r.inputs.get("destinationCidrBlock") == "0.0.0.0/0"]
    return routes[0] if len(routes) == 1 else None


def _route_table_of(rendered: Rendered, subnet_id: str) -> Resource | None:
    by_id = _by_id(rendered)
    for association in rendered.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        if association.inputs.get("subnetId") == subnet_id:
            return by_id.get(str(association.inputs.get("routeTableId")))
    return None


def internet_route_problems(rendered: Rendered, w: Wiring) -> list[str]:
    """Why a task in the service's subnets could not reach a public HTTPS endpoint, if it could not."""
    problems: list[str] = []
    by_id = _by_id(rendered)
    if not w.subnets:
        problems.append(f"{SERVICE}: no subnets")
    for subnet in w.subnets:
        table = _route_table_of(rendered, subnet)
        route = _default_route(rendered, table) if table is not None else None
        nat = by_id.get(str(route.get("natGatewayId"))) if route else None
        if nat is None or nat.type != "aws:ec2/natGateway:NatGateway":
            problems.append(f"subnet {subnet}: no default route to a NAT gateway")
            continue
        nat_table = _route_table_of(rendered, str(nat.inputs.get("subnetId")))
        upstream = _default_route(rendered, nat_table) if nat_table is not None else None
        gateway = by_id.get(str(upstream.get("gatewayId"))) if upstream else None
        if gateway is None or gateway.type != "aws:ec2/internetGateway:InternetGateway":
            problems.append(f"{nat.name}: its subnet has no default route to an internet gateway")
        if not nat.inputs.get("allocationId"):
            problems.append(f"{nat.name}: no Elastic IP")
    # The stack declares every security-group rule as a standalone aws.vpc rule (no inline rules).
    allowed = any(
        rule.inputs.get("securityGroupId") in w.security_groups and rule.inputs.get("cidrIpv4") == "0.0.0.0/0"
        and (rule.inputs.get("ipProtocol") == "-1"
             or (rule.inputs.get("ipProtocol") == "tcp"
                 and rule.inputs.get("fromPort", 0) <= HTTPS_PORT <= rule.inputs.get("toPort", 0)))
        for rule in rendered.of_type(EGRESS_RULE))
    if not allowed:
        problems.append(f"{SERVICE}: no security group lets HTTPS (tcp 443) out to 0.0.0.0/0")
    api_url = w.environment.get(envvars.API_URL, "")
    if urlsplit(api_url).scheme != "https" or (urlsplit(api_url).port or 443) != 443:
        problems.append(f"{envvars.API_URL}={api_url!r} is not an https URL on port 443")
    return problems


def static_problems(rendered: Rendered, dockerfile: Dockerfile, port_variable: str = "PORT",
                    origin_variable: str = "DASHBOARD_ALLOWED_ORIGIN") -> list[str]:
    """What is wrong with the declared wiring before anything runs (empty when nothing is)."""
    w = wiring(rendered)
    problems = []
    ports = {"task port mapping": w.container_port, "service load balancer mapping": w.service_container_port,
             "target group": w.target_port, "health check": w.health_port,
             f"task environment {port_variable}": int(w.environment.get(port_variable, "0") or 0)}
    if len(set(ports.values())) != 1:
        problems.append(f"the container's port differs: {ports}")
    final = dockerfile.final
    if w.container_port not in final.exposed:
        problems.append(f"{dockerfile.path}: EXPOSE {final.exposed} lacks the task's port {w.container_port}")
    command = " ".join(final.cmd)
    for variable in (port_variable, origin_variable):
        if f"${variable}" not in command and f"${{{variable}" not in command:
            problems.append(f"{dockerfile.path}: CMD does not read ${variable}")
    address = _ADDRESS.search(command)
    if address is None or address.group(1).strip("'\"") != ALL_INTERFACES:
        problems.append(f"{dockerfile.path}: CMD does not listen on 0.0.0.0 (the ALB reaches the task's interface)")
    if w.environment.get(origin_variable) != w.public_host:
        problems.append(f"task environment {origin_variable}={w.environment.get(origin_variable)!r}, but browsers "
                        f"open {w.public_url} (host {w.public_host!r})")
    tag = w.image.rpartition(":")[2] if "@" not in w.image else ""
    if not DASHBOARD_IMAGE_TAG.fullmatch(tag):
        problems.append(f"{TASK}: image {w.image!r} is not named by a content-derived tag")
    if w.grace_seconds <= 0:
        problems.append(f"{SERVICE}: no health-check grace period")
    if not w.circuit_breaker:
        problems.append(f"{SERVICE}: the deployment circuit breaker (with rollback) is off")
    if (w.listener_protocol, w.listener_port) != ("HTTPS", 443) or urlsplit(w.public_url).scheme != "https":
        problems.append(f"{HTTPS_LISTENER}: {w.listener_protocol}:{w.listener_port} does not serve {w.public_url}")
    return problems + internet_route_problems(rendered, w)


def locked_versions_match(lock: Path | None = None, packages: Sequence[str] = SERVING_PACKAGES) -> list[str]:
    """The serving packages whose venv version is not uv.lock's (the image installs the lock's)."""
    data = tomllib.loads((lock or project_root() / "uv.lock").read_text())
    locked = {p["name"]: p.get("version") for p in data.get("package", [])}
    return [f"{name}: venv {metadata.version(name)}, uv.lock {locked.get(name)}" for name in packages
            if metadata.version(name) != locked.get(name)]


# --- the process -------------------------------------------------------------------------------------------
def _map_paths(value: str, mapping: Mapping[str, Path]) -> str:
    """Image paths (``/opt/venv/bin``, ``/app``) in a path or path list, replaced by their local copies."""
    def one(item: str) -> str:
        for image_path, local in mapping.items():
            if item == image_path or item.startswith(image_path.rstrip("/") + "/"):
                return str(local) + item[len(image_path.rstrip("/")):]
        return item

    return ":".join(one(item) for item in value.split(":"))


def materialize(dockerfile: Dockerfile, context: Path, app_dir: Path) -> dict[str, Path]:
    """Lay out the final stage's build-context ``COPY`` destinations under ``app_dir`` (the image's
    ``WORKDIR``), minus what the ignore file excludes. Returns image path -> local path for the
    ``WORKDIR`` and for what the final stage copies from other stages (the venv)."""
    final = dockerfile.final
    taken = set(context_files(dockerfile, context))
    workdir = PurePosixPath(final.workdir)
    for copy in final.copies:
        if copy.source_stage is not None:
            continue
        destination = workdir / copy.destination
        for source in copy.sources:
            base = context / source
            files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
            for file in files:
                relative = PurePosixPath(file.relative_to(context).as_posix())
                if relative not in taken:  # excluded by the ignore file
                    continue
                inner = relative.relative_to(source) if base.is_dir() else PurePosixPath(relative.name)
                target = app_dir / (destination / inner).relative_to(workdir)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(file, target)
    mapping = {final.workdir: app_dir}
    for copy in final.copies:
        if copy.source_stage is not None:
            mapping[copy.destination] = Path(sys.prefix)
    return mapping


def container_environment(stage: Stage, w: Wiring, mapping: Mapping[str, Path], *, api_url: str,
                          secrets: Mapping[str, str]) -> dict[str, str]:
    """The image's ``ENV`` (paths mapped to their local copies), then the task's environment with the API
    URL replaced by ``api_url``, then the secrets' values: what ECS hands the container."""
    missing = sorted(set(w.secrets) - set(secrets))
    if missing:
        raise DashboardRehearsalError(f"no value given for the task's secrets {missing}")
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", str(Path.home())),
            "LANG": "C.UTF-8"}
    env = {key: _map_paths(value, mapping) for key, value in stage.environment(base).items()}
    env.update(w.environment)
    env[envvars.API_URL] = api_url
    env.update({name: secrets[name] for name in w.secrets})
    if "PYTHONPYCACHEPREFIX" in os.environ:  # compiled bytecode cache only: startup time, not behaviour
        env["PYTHONPYCACHEPREFIX"] = os.environ["PYTHONPYCACHEPREFIX"]
    return env


def _port_lock(port: int) -> AbstractContextManager[None]:
    """One rehearsal per port on this machine at a time (several test sessions may run at once)."""
    return file_lock(Path(tempfile.gettempdir()) / f"dataforge-rehearse-dashboard-{port}.lock")


@dataclass(slots=True)
class DashboardRehearsal:
    """What the rehearsal of one stack's dashboard found."""

    stack: str
    problems: list[str] = field(default_factory=list)  # declared wiring and locked versions
    health_status: int | None = None
    health_ok: bool = False
    origin: str = ""
    origin_accepted: bool = False
    origin_detail: str = ""
    allowlisted: bool = False  # Bokeh's --allow-websocket-origin admits the public origin
    allowlist_detail: str = ""
    foreign_refused: bool = False
    foreign_detail: str = ""
    imported_from_copy: bool = False
    api_errors: list[str] = field(default_factory=list)  # the server's log lines of failed API calls
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return (not self.problems and self.health_ok and self.origin_accepted and self.foreign_refused
                and self.allowlisted
                and self.imported_from_copy and not self.api_errors)

    def describe(self) -> str:
        lines = [f"dashboard ({self.stack}): {'ok' if self.ok else 'FAILED'}",
                 f"  health check: {self.health_status} ({'as the target group expects' if self.health_ok else 'no'})",
                 f"  WebSocket from a page of {self.origin}: {self.origin_detail}",
                 f"  Bokeh's allowlist for {self.origin}: {self.allowlist_detail}",
                 f"  WebSocket with Origin {FOREIGN_ORIGIN}: {self.foreign_detail}"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  API call failed: {line}" for line in self.api_errors[:5]]
        if not self.imported_from_copy:
            lines.append("  the app was not imported from the image's copy of the sources")
        return "\n".join(lines)


def _open_websocket(port: int, headers: Mapping[str, str], token: str) -> tuple[bool, str]:
    """Open ``/app/ws`` as Bokeh's client does (subprotocols ``bokeh`` + the session token), with
    ``headers``; True when the server accepts it and sends its first message."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.ioloop import IOLoop
    from tornado.websocket import websocket_connect

    async def attempt() -> tuple[bool, str]:
        request = HTTPRequest(f"ws://{LOCAL_ADDRESS}:{port}/app/ws", headers=dict(headers), request_timeout=20,
                              connect_timeout=5)
        try:
            connection = await websocket_connect(request, subprotocols=["bokeh", token])
        except HTTPClientError as exc:
            return False, f"refused ({exc.code})"
        try:
            message = await connection.read_message()
            return message is not None, "accepted (101, the server's first message received)"
        finally:
            connection.close()

    # A loop of its own in a thread of its own: the caller's thread may already run an event loop (a test
    # session with Playwright or an async fixture), which a second loop on it could not share.
    outcome: list[tuple[bool, str]] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(IOLoop(make_current=False).run_sync(attempt, timeout=30))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(exc)

    worker = threading.Thread(target=run, name="rehearse-websocket", daemon=True)
    worker.start()
    worker.join(timeout=40)
    if failure:
        raise failure[0]
    if not outcome:
        return False, "no answer to the WebSocket handshake within 40 s"
    return outcome[0]


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the workers it forked (its own process group, started by ``rehearse``)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def rehearse(rendered: Rendered, *, api_url: str, secrets: Mapping[str, str], workdir: Path,
             context: Path | None = None, dockerfile: Path = DOCKERFILE,
             timeout: float = START_TIMEOUT_SECONDS) -> DashboardRehearsal:
    """Run the dashboard container of ``rendered`` locally as declared, probe it, stop it."""
    root = context or project_root()
    parsed = Dockerfile.parse(root / dockerfile)
    w = wiring(rendered)
    report = DashboardRehearsal(stack=rendered.stack, origin=w.browser_origin)
    report.problems = static_problems(rendered, parsed) + locked_versions_match(root / "uv.lock")
    final = parsed.final
    if not final.cmd:
        raise DashboardRehearsalError(f"{parsed.path}: no CMD")
    app_dir = workdir / "app"
    shutil.rmtree(app_dir, ignore_errors=True)
    app_dir.mkdir(parents=True)
    mapping = materialize(parsed, root, app_dir)
    env = container_environment(final, w, mapping, api_url=api_url, secrets=secrets)
    command = [*final.cmd[:-1], _ADDRESS.sub(f"--address {LOCAL_ADDRESS}", final.cmd[-1])]
    port = w.health_port
    report.log = workdir / "panel-serve.log"
    with _port_lock(port):
        if port_open(LOCAL_ADDRESS, port):
            raise DashboardRehearsalError(f"port {port} (the task's) is in use on {LOCAL_ADDRESS}: stop what "
                                          "listens there to rehearse the dashboard")
        with report.log.open("wb") as log:
            process = subprocess.Popen(command, cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        try:
            _probe(report, process, w, port, timeout)
            report.imported_from_copy = _imports_from(app_dir, env)
        finally:
            _stop(process)
    # The sessions opened above start the server's poller, which reads the API at once (panel_dashboard.poller).
    report.api_errors = [line for line in report.log.read_text(errors="replace").splitlines()
                         if _API_FAILURE.search(line)]
    return report


def _imports_from(app_dir: Path, env: Mapping[str, str]) -> bool:
    """True when, with the container's environment, the project's packages resolve to the copy in
    ``app_dir`` (not to the venv's editable install of the checkout)."""
    code = "import dataforge, panel_dashboard; print(dataforge.__file__); print(panel_dashboard.__file__)"
    python = shutil.which("python", path=env.get("PATH")) or sys.executable
    done = subprocess.run([python, "-c", code], cwd=app_dir, env=dict(env), capture_output=True, text=True,
                          check=False, timeout=120)
    files = done.stdout.split()
    return done.returncode == 0 and len(files) == 2 and all(Path(f).is_relative_to(app_dir) for f in files)


def _probe(report: DashboardRehearsal, process: subprocess.Popen[bytes], w: Wiring, port: int,
           timeout: float) -> None:
    base = f"http://{LOCAL_ADDRESS}:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log = report.log.read_text(errors="replace")[-3000:] if report.log else ""
            raise DashboardRehearsalError(f"the container's command exited ({process.returncode}):\n{log}")
        try:
            report.health_status = httpx.get(base + w.health_path, timeout=2.0).status_code
            if matches(report.health_status, w.health_matcher):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise DashboardRehearsalError(f"no {w.health_matcher} from {w.health_path} on port {port} within "
                                          f"{timeout:.0f} s (last: {report.health_status})")
        time.sleep(0.3)
    report.health_ok = True
    host = w.public_host
    # Through the ALB a browser's requests carry the public host as Host; the page carries the session token.
    browser = {"Host": host, "Origin": w.browser_origin, "Sec-Fetch-Site": "same-origin"}
    foreign = {"Host": host, "Origin": FOREIGN_ORIGIN, "Sec-Fetch-Site": "cross-site"}
    allowlist = {"Host": f"{LOCAL_ADDRESS}:{port}", "Origin": w.browser_origin}
    tokens = [_session_token(base, host) for _ in range(3)]
    if None in tokens:
        report.origin_detail = "no session token in GET /app"
        return
    report.origin_accepted, report.origin_detail = _open_websocket(port, browser, str(tokens[0]))
    accepted, report.foreign_detail = _open_websocket(port, foreign, str(tokens[1]))
    report.foreign_refused = not accepted
    report.allowlisted, report.allowlist_detail = _open_websocket(port, allowlist, str(tokens[2]))


def _session_token(base: str, host: str) -> str | None:
    """The session token of a page load of ``/app`` (a new session each time)."""
    page = httpx.get(base + "/app", headers={"Host": host}, timeout=60.0)
    token = _TOKEN.search(page.text)
    return token.group(1) if page.status_code == 200 and token else None
