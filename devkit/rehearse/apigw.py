"""API Gateway's side of the rehearsal: the requests the API's clients make, routed through the REST API
the stack declares, and the Lambda proxy event API Gateway sends the function for each.

The declared API is read from the rendered stack: the OpenAPI/Swagger document of ``RestApi.body`` (what
Chalice generates for the app), or, for an API declared resource by resource, its ``Resource``,
``Method`` and ``Integration`` resources. The requests are the API's contract: one per operation of the
app's OpenAPI document (``chalicelib.openapi``), with path and required query parameters from the
document's examples (or ``rehearsal-<name>`` values), a JSON body built from the request schema's
examples, and the API key in ``x-api-key`` when the operation is not public; plus one per concrete
operation of the declared definition the document does not list (the CORS preflights among them).

For each request the module decides what API Gateway does, in the order it does it:

1. routing: the most specific resource whose template matches the path (literal segments before
   ``{param}`` before greedy ``{proxy+}``), then the method or ``ANY``; no match is API Gateway's own
   ``403 {"message": "Missing Authentication Token"}``;
2. API keys: a method that requires one answers ``403 Forbidden`` unless the request carries a key of a
   usage plan that covers the API's stage (the usage plan, its key and its stages as declared);
3. ``mock`` integrations (Chalice's CORS preflights) are answered by API Gateway itself;
4. ``aws_proxy`` integrations invoke the function named by the integration URI, which API Gateway may do
   only when a Lambda permission for ``apigateway.amazonaws.com`` has a source ARN matching
   ``arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<METHOD>/<resource path>``; without one,
   API Gateway answers 500 ("Invalid permissions on Lambda function");
5. otherwise the event, in the REST API proxy integration's input format (API Gateway Developer Guide,
   "Input format of a Lambda function for proxy integration"): ``resource``, ``path``, ``httpMethod``,
   ``headers`` and ``multiValueHeaders`` (the client's plus ``Host``, ``X-Amzn-Trace-Id`` and
   ``X-Forwarded-*``; CloudFront's for an EDGE endpoint), ``queryStringParameters`` (the last value of a
   repeated name) and ``multiValueQueryStringParameters``, ``pathParameters`` and ``stageVariables``
   (``null`` when empty), ``requestContext`` (``resourcePath`` = the resource's template, ``path`` with
   the stage prefix, ``stage``, ``identity`` with ``sourceIp`` and, for key-required methods,
   ``apiKey``/``apiKeyId``, ``requestId``, ``accountId``, ``apiId``, ...), ``body`` and
   ``isBase64Encoded`` (true only for a request content type among the API's binary media types).

``judge`` accepts an answer when its status is one the OpenAPI document declares for the operation,
below 500, and not one of Chalice's own routing errors (405 ``MethodNotAllowedError``, 415, its
``Unknown request`` 500).

Not rehearsed: API Gateway's request validation and throttling, authorizers other than API keys,
payload limits, the stage's method settings, and the exact resource-path form API Gateway puts in the
source ARN it checks (a permission is matched against the resource's template, which wildcard
permissions cover either way). The offline renderer's resource ids (``<name>-id``, a REST API's root
``<name>-root``) link a resource-by-resource declaration together.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from dataforge.errors import ServiceError
from infra.plan import Rendered, Resource

if TYPE_CHECKING:
    from devkit.rehearse.lambdas import FunctionSpec
    from devkit.rehearse.run import Trigger

REST_API: Final = "aws:apigateway/restApi:RestApi"
RESOURCE: Final = "aws:apigateway/resource:Resource"
METHOD: Final = "aws:apigateway/method:Method"
INTEGRATION: Final = "aws:apigateway/integration:Integration"
STAGE: Final = "aws:apigateway/stage:Stage"
USAGE_PLAN: Final = "aws:apigateway/usagePlan:UsagePlan"
USAGE_PLAN_KEY: Final = "aws:apigateway/usagePlanKey:UsagePlanKey"
API_KEY: Final = "aws:apigateway/apiKey:ApiKey"
PERMISSION: Final = "aws:lambda/permission:Permission"

API_KEY_HEADER: Final = "x-api-key"
DEFAULT_API_KEY: Final = "rehearsal-api-key"
SOURCE_IP: Final = "198.51.100.7"  # TEST-NET-2 (RFC 5737)
USER_AGENT: Final = "dataforge-rehearsal"
HTTP_METHODS: Final = ("get", "put", "post", "delete", "options", "head", "patch")
ANY_METHOD: Final = "x-amazon-apigateway-any-method"
# Chalice's own answers when routing inside the function fails (chalice/app.py RestAPIEventHandler).
CHALICE_ROUTING_ERRORS: Final = frozenset({"MethodNotAllowedError", "UnsupportedMediaType", "InternalServerError"})
NO_ROUTE_BODY: Final = '{"message":"Missing Authentication Token"}'  # API Gateway's answer: no route
FORBIDDEN_BODY: Final = '{"message":"Forbidden"}'


@dataclass(frozen=True, slots=True)
class Operation:
    """One method of one resource of the declared REST API."""

    resource: str  # the resource's path template: /v1/alerts/{alert_id}/ack, /{proxy+}
    method: str  # GET, POST, ..., or ANY
    integration: str  # aws_proxy, mock, ... (lower case)
    uri: str  # the integration's URI ("" for a mock)
    api_key_required: bool

    @property
    def function(self) -> str | None:
        """The name of the function an ``aws_proxy`` integration invokes (from its invoke ARN)."""
        marker = ":function:"
        if self.integration != "aws_proxy" or marker not in self.uri:
            return None
        return self.uri.split(marker, 1)[1].split("/", 1)[0].split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class DeclaredApi:
    """A REST API and one of its stages, as the stack declares them."""

    name: str
    api_id: str
    stage: str
    region: str
    account: str
    endpoint_type: str
    binary_media_types: tuple[str, ...]
    operations: tuple[Operation, ...]
    keyed: bool  # a usage plan covers this stage and has an API key
    api_key_id: str | None
    permissions: Mapping[str, tuple[str, ...]]  # function name -> source ARN patterns for API Gateway

    def source_arn(self, operation: Operation, method: str) -> str:
        """The execute-api ARN API Gateway presents as the source when it invokes ``operation``'s function
        for a ``method`` request: ``.../<api id>/<stage>/<METHOD>/<resource path>``."""
        return f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}/{method.upper()}" \
               f"{operation.resource}"

    def may_invoke(self, operation: Operation, method: str | None = None) -> bool:
        """Whether a Lambda permission lets API Gateway invoke the operation's function from this stage."""
        function = operation.function
        if function is None:
            return False
        arn = self.source_arn(operation, method or operation.method)
        return any(fnmatch.fnmatchcase(arn, pattern) for pattern in self.permissions.get(function, ()))


@dataclass(frozen=True, slots=True)
class Request:
    """An HTTP request a client of the API makes."""

    method: str
    template: str  # the documented (or declared) path template
    path: str
    query: Mapping[str, tuple[str, ...]]
    headers: Mapping[str, str]
    body: str | None
    path_values: Mapping[str, str]
    expected: int | None  # the documented success status (None: not in the OpenAPI document)
    documented: frozenset[int]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What API Gateway does with one request: the event it sends a function, or its own answer."""

    request: Request
    operation: Operation | None
    event: dict[str, Any] | None = None
    function: str | None = None
    gateway_status: int | None = None
    gateway_body: str = ""
    detail: str = ""

    @property
    def name(self) -> str:
        return f"API {self.request.method} {self.request.template}"


# --- the declared API --------------------------------------------------------------------------------


def _security_requires_key(document: Mapping[str, Any], operation: Mapping[str, Any]) -> bool:
    definitions: Mapping[str, Any] = document.get("securityDefinitions") or \
        (document.get("components") or {}).get("securitySchemes") or {}
    requirements = operation.get("security", document.get("security")) or []
    for requirement in requirements:
        for name in requirement:
            scheme = definitions.get(name) or {}
            if scheme.get("type") == "apiKey" and scheme.get("in") == "header" \
                    and str(scheme.get("name", "")).lower() == API_KEY_HEADER \
                    and "x-amazon-apigateway-authtype" not in scheme:
                return True
    return False


def operations_of_document(document: Mapping[str, Any]) -> list[Operation]:
    """The operations of an OpenAPI/Swagger document with API Gateway integrations (``RestApi.body``)."""
    found = []
    for path, item in sorted((document.get("paths") or {}).items()):
        for key, operation in sorted(item.items()):
            method = "ANY" if key == ANY_METHOD else key.upper() if key in HTTP_METHODS else None
            if method is None:
                continue
            integration = operation.get("x-amazon-apigateway-integration") or {}
            found.append(Operation(resource=path, method=method, integration=str(integration.get("type", "")).lower(),
                                   uri=str(integration.get("uri", "")),
                                   api_key_required=_security_requires_key(document, operation)))
    return found


def _resource_paths(rendered: Rendered, rest: Resource) -> dict[str, str]:
    """The paths of a resource-by-resource declaration by the renderer's resource ids (parent id + path
    part)."""
    paths = {f"{rest.name}-root": "/"}
    pending = [r for r in rendered.of_type(RESOURCE) if r.inputs.get("restApi") == f"{rest.name}-id"]
    while pending:
        placed = [r for r in pending if r.inputs.get("parentId") in paths]
        if not placed:
            raise ServiceError(f"API Gateway resources without a declared parent: {[r.name for r in pending]}")
        for resource in placed:
            parent = paths[resource.inputs["parentId"]]
            paths[f"{resource.name}-id"] = f"{parent.rstrip('/')}/{resource.inputs['pathPart']}"
            pending.remove(resource)
    return paths


def _operations_of_resources(rendered: Rendered, rest: Resource) -> list[Operation]:
    paths = _resource_paths(rendered, rest)
    integrations = {(i.inputs.get("resourceId"), i.inputs.get("httpMethod")): i.inputs
                    for i in rendered.of_type(INTEGRATION) if i.inputs.get("restApi") == f"{rest.name}-id"}
    found = []
    for method in rendered.of_type(METHOD):
        inputs = method.inputs
        if inputs.get("restApi") != f"{rest.name}-id" or inputs.get("resourceId") not in paths:
            continue
        integration = integrations.get((inputs["resourceId"], inputs["httpMethod"]), {})
        found.append(Operation(resource=paths[inputs["resourceId"]], method=str(inputs["httpMethod"]).upper(),
                               integration=str(integration.get("type", "")).lower(),
                               uri=str(integration.get("uri", "")),
                               api_key_required=bool(inputs.get("apiKeyRequired"))))
    return sorted(found, key=lambda o: (o.resource, o.method))


def _region_account(operations: Sequence[Operation]) -> tuple[str, str]:
    for operation in operations:
        if operation.function is not None:
            function_arn = operation.uri.split("/functions/", 1)[1]
            parts = function_arn.split(":")
            return parts[3], parts[4]
    return "us-east-1", "123456789012"


def _permissions(rendered: Rendered) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for permission in rendered.of_type(PERMISSION):
        inputs = permission.inputs
        if inputs.get("principal") != "apigateway.amazonaws.com" or inputs.get("action") != "lambda:InvokeFunction":
            continue
        function = str(inputs.get("function", "")).rsplit(":function:", 1)[-1].split(":", 1)[0]
        # No source ARN: any API of any account may invoke the function (the confused deputy); the
        # rehearsal does not treat that as a permission for this API.
        if inputs.get("sourceArn"):
            found.setdefault(function, []).append(str(inputs["sourceArn"]))
    return {name: tuple(arns) for name, arns in found.items()}


def _keyed(rendered: Rendered, api_id: str, stage: str) -> tuple[bool, str | None]:
    """Whether a usage plan covers ``stage`` of ``api_id`` and has an enabled API key (and that key's id)."""
    enabled = {f"{k.name}-id" for k in rendered.of_type(API_KEY) if k.inputs.get("enabled", True)}
    for plan in rendered.of_type(USAGE_PLAN):
        stages = plan.inputs.get("apiStages") or []
        if not any(s.get("apiId") == api_id and s.get("stage") == stage for s in stages):
            continue
        for link in rendered.of_type(USAGE_PLAN_KEY):
            if link.inputs.get("usagePlanId") == f"{plan.name}-id" and link.inputs.get("keyType") == "API_KEY" \
                    and link.inputs.get("keyId") in enabled:
                return True, str(link.inputs["keyId"])
    return False, None


def declared_apis(rendered: Rendered) -> list[DeclaredApi]:
    """Every stage of every REST API the rendered stack declares."""
    apis = []
    rests = rendered.of_type(REST_API)
    for stage in rendered.of_type(STAGE):
        api_id = str(stage.inputs.get("restApi"))
        matching = [r for r in rests if f"{r.name}-id" == api_id] or (rests if len(rests) == 1 else [])
        if not matching:
            raise ServiceError(f"stage {stage.name} names REST API {api_id}, which the stack does not declare")
        rest = matching[0]
        body = rest.inputs.get("body")
        document: Mapping[str, Any] = json.loads(body) if isinstance(body, str) and body else {}
        operations = operations_of_document(document) if document else _operations_of_resources(rendered, rest)
        region, account = _region_account(operations)
        types = (rest.inputs.get("endpointConfiguration") or {}).get("types") or "EDGE"
        binary = rest.inputs.get("binaryMediaTypes") or document.get("x-amazon-apigateway-binary-media-types") or []
        keyed, key_id = _keyed(rendered, api_id, str(stage.inputs["stageName"]))
        apis.append(DeclaredApi(
            name=str(rest.inputs.get("name", rest.name)), api_id=api_id, stage=str(stage.inputs["stageName"]),
            region=region, account=account, endpoint_type=str(types[0] if isinstance(types, list) else types),
            binary_media_types=tuple(binary), operations=tuple(operations), keyed=keyed, api_key_id=key_id,
            permissions=_permissions(rendered)))
    return apis


def declared_api(rendered: Rendered) -> DeclaredApi:
    """The one REST API stage of the stack."""
    apis = declared_apis(rendered)
    if len(apis) != 1:
        raise ServiceError(f"the stack declares {len(apis)} REST API stages, expected one")
    return apis[0]


# --- API Gateway's routing ---------------------------------------------------------------------------


def _match(template: str, path: str) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """How specifically ``template`` matches ``path`` (per segment: 2 literal, 1 ``{param}``, 0 greedy) and
    the path parameters it captures; None when it does not match."""
    want = [s for s in template.split("/") if s]
    have = [s for s in path.split("/") if s]
    score: list[int] = []
    captured: dict[str, str] = {}
    for index, segment in enumerate(want):
        if segment.startswith("{") and segment.endswith("+}"):
            if index >= len(have) or index != len(want) - 1:
                return None
            captured[segment[1:-2]] = "/".join(have[index:])
            return (*score, 0), captured
        if index >= len(have):
            return None
        if segment.startswith("{") and segment.endswith("}"):
            captured[segment[1:-1]] = have[index]
            score.append(1)
        elif segment == have[index]:
            score.append(2)
        else:
            return None
    return (tuple(score), captured) if len(want) == len(have) else None


def route(api: DeclaredApi, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
    """The operation API Gateway selects for ``method path`` and the path parameters it extracts."""
    best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
    for template in sorted({o.resource for o in api.operations}):
        found = _match(template, path)
        if found is not None and (best is None or found[0] > best[0]):
            best = (found[0], template, found[1])
    if best is None:
        return None
    on_resource = {o.method: o for o in api.operations if o.resource == best[1]}
    operation = on_resource.get(method.upper()) or on_resource.get("ANY")
    return (operation, best[2]) if operation is not None else None


# --- the clients' requests ---------------------------------------------------------------------------


def _example(schema: Mapping[str, Any], name: str, components: Mapping[str, Any]) -> Any:
    """A value for ``schema``: its example, default or first enum value, else a sensible one of its type."""
    if "$ref" in schema:
        return _example(components.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), name, components)
    given = [schema[key] for key in ("example", "default") if key in schema] + list(schema.get("enum") or [])[:1]
    if given:
        return given[0]
    kind = schema.get("type")
    if kind == "object":
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = schema.get("required", list(properties))
        return {key: _example(value, key, components) for key, value in properties.items() if key in required}
    if kind == "array":
        return [_example(schema.get("items") or {}, name, components)]
    by_type: dict[str, Any] = {"integer": int(schema.get("minimum", 1)), "number": schema.get("minimum", 1),
                               "boolean": True}
    if kind in by_type:
        return by_type[kind]
    return "2024-01-02" if schema.get("format") == "date" else f"rehearsal-{name.replace('_', '-')}"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _statuses(operation: Mapping[str, Any]) -> tuple[int | None, frozenset[int]]:
    documented = frozenset(int(code) for code in (operation.get("responses") or {}) if str(code).isdigit())
    success = sorted(code for code in documented if 200 <= code < 300)
    return (success[0] if success else None), documented


def _concrete(template: str, values: Mapping[str, str]) -> str:
    path = template
    for name, value in values.items():
        path = path.replace(f"{{{name}}}", quote(value, safe=""))
    return path


def documented_requests(openapi: Mapping[str, Any], *, api_key: str = DEFAULT_API_KEY,
                        path_values: Mapping[str, str] | None = None) -> list[Request]:
    """One request per operation of the app's OpenAPI document, as a client following it makes it."""
    components: Mapping[str, Any] = (openapi.get("components") or {}).get("schemas") or {}
    overrides = dict(path_values or {})
    requests = []
    for template, item in sorted((openapi.get("paths") or {}).items()):
        for method, operation in sorted(item.items()):
            if method not in HTTP_METHODS:
                continue
            params = [*item.get("parameters", []), *operation.get("parameters", [])]
            values: dict[str, str] = {}
            query: dict[str, tuple[str, ...]] = {}
            for param in params:
                name, where = param["name"], param.get("in")
                value = overrides.get(name) if where == "path" and name in overrides else None
                if value is None:
                    value = _text(param.get("example", _example(param.get("schema") or {}, name, components)))
                if where == "path":
                    values[name] = value
                elif where == "query" and param.get("required"):
                    query[name] = (value,)
            headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
            if operation.get("security", openapi.get("security")):
                headers[API_KEY_HEADER] = api_key
            body = None
            content = ((operation.get("requestBody") or {}).get("content") or {}).get("application/json")
            if content is not None:
                body = json.dumps(_example(content.get("schema") or {}, "body", components))
                headers["Content-Type"] = "application/json"
            expected, documented = _statuses(operation)
            requests.append(Request(method=method.upper(), template=template, path=_concrete(template, values),
                                    query=query, headers=headers, body=body, path_values=values,
                                    expected=expected, documented=documented))
    return requests


def declared_requests(api: DeclaredApi, known: Sequence[Request], *, api_key: str = DEFAULT_API_KEY,
                      origin: str = "https://dashboard.example.com") -> list[Request]:
    """A request for each concrete operation of the declared API that ``known`` does not cover (greedy
    resources and ``ANY`` methods have no single request: the documented ones exercise them)."""
    covered = {(r.method, r.template) for r in known}
    requests = []
    for operation in api.operations:
        if operation.method == "ANY" or "+}" in operation.resource or (operation.method, operation.resource) in covered:
            continue
        values = {segment[1:-1]: f"rehearsal-{segment[1:-1].replace('_', '-')}"
                  for segment in operation.resource.split("/") if segment.startswith("{")}
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if operation.method == "OPTIONS":  # a browser's CORS preflight
            headers |= {"Origin": origin, "Access-Control-Request-Method": "GET",
                        "Access-Control-Request-Headers": f"{API_KEY_HEADER},content-type"}
        elif operation.api_key_required:
            headers[API_KEY_HEADER] = api_key
        requests.append(Request(method=operation.method, template=operation.resource,
                                path=_concrete(operation.resource, values), query={}, headers=headers, body=None,
                                path_values=values, expected=None, documented=frozenset()))
    return requests


# --- API Gateway's event -----------------------------------------------------------------------------


def _gateway_headers(api: DeclaredApi, request_id: str, epoch_ms: int) -> dict[str, str]:
    headers = {"Host": f"{api.api_id}.execute-api.{api.region}.amazonaws.com",
               "X-Amzn-Trace-Id": f"Root=1-{epoch_ms // 1000:08x}-{request_id.replace('-', '')[:24]}",
               "X-Forwarded-For": SOURCE_IP, "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https"}
    if api.endpoint_type == "EDGE":  # an edge-optimized API is reached through CloudFront
        headers |= {"CloudFront-Forwarded-Proto": "https", "CloudFront-Is-Desktop-Viewer": "true",
                    "CloudFront-Is-Mobile-Viewer": "false", "CloudFront-Is-SmartTV-Viewer": "false",
                    "CloudFront-Is-Tablet-Viewer": "false", "CloudFront-Viewer-Country": "US",
                    "Via": "2.0 0123456789abcdef0123456789abcdef.cloudfront.net (CloudFront)",
                    "X-Amz-Cf-Id": base64.urlsafe_b64encode(request_id.encode()).decode()[:56],
                    "X-Forwarded-For": f"{SOURCE_IP}, 130.176.0.1"}
    return headers


def proxy_event(api: DeclaredApi, operation: Operation, request: Request, captured: Mapping[str, str], *,
                api_key: str | None, now: datetime | None = None) -> dict[str, Any]:
    """The event API Gateway sends an ``aws_proxy`` integration for ``request`` (REST API, format 1.0)."""
    moment = now or datetime.now(UTC)
    epoch_ms = int(moment.timestamp() * 1000)
    seed = f"{api.api_id}/{api.stage}/{request.method} {request.path}"
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))
    headers = {**request.headers, **_gateway_headers(api, request_id, epoch_ms)}
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    binary = any(fnmatch.fnmatchcase(content_type.split(";")[0].strip(), t) for t in api.binary_media_types)
    body = request.body
    if body is not None and binary:
        body = base64.b64encode(body.encode()).decode()
    keyed = operation.api_key_required
    identity = {
        "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
        "sourceIp": SOURCE_IP, "principalOrgId": None, "accessKey": None, "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None, "userArn": None, "userAgent": headers.get("User-Agent"),
        "user": None, "apiKey": api_key if keyed else None, "apiKeyId": api.api_key_id if keyed else None,
    }
    resource_id = hashlib.sha256(f"{api.api_id}{operation.resource}".encode()).hexdigest()[:6]
    return {
        "resource": operation.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": {name: values[-1] for name, values in request.query.items()} or None,
        "multiValueQueryStringParameters": {name: list(values) for name, values in request.query.items()} or None,
        "pathParameters": dict(captured) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": resource_id, "resourcePath": operation.resource, "httpMethod": request.method,
            "extendedRequestId": base64.b64encode(request_id.encode()).decode()[:16],
            "requestTime": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"), "path": f"/{api.stage}{request.path}",
            "accountId": api.account, "protocol": "HTTP/1.1", "stage": api.stage,
            "domainPrefix": api.api_id, "requestTimeEpoch": epoch_ms, "requestId": request_id,
            "identity": identity, "domainName": f"{api.api_id}.execute-api.{api.region}.amazonaws.com",
            "apiId": api.api_id,
        },
        "body": body,
        "isBase64Encoded": bool(body is not None and binary),
    }


def _refusal(api: DeclaredApi, request: Request, operation: Operation) -> Outcome | None:
    """API Gateway's own answer to a routed request (API key, mock, integration, permission), if any."""
    sent_key = next((v for k, v in request.headers.items() if k.lower() == API_KEY_HEADER), None)
    if operation.api_key_required and (sent_key is None or not api.keyed):
        why = "no x-api-key header" if sent_key is None else f"no usage plan with a key covers stage {api.stage}"
        return Outcome(request, operation, gateway_status=403, gateway_body=FORBIDDEN_BODY, detail=why)
    if operation.integration == "mock":
        return Outcome(request, operation, gateway_status=200, detail="answered by API Gateway (mock integration)")
    if operation.integration != "aws_proxy":
        return Outcome(request, operation, gateway_status=500,
                       detail=f"integration {operation.integration or 'missing'}: not a Lambda proxy integration")
    if not api.may_invoke(operation, request.method):
        return Outcome(request, operation, function=operation.function, gateway_status=500,
                       gateway_body='{"message": "Internal server error"}',
                       detail=f"no Lambda permission lets API Gateway invoke {operation.function} as "
                              f"{api.source_arn(operation, request.method)}")
    return None


def outcome(api: DeclaredApi, request: Request, *, now: datetime | None = None) -> Outcome:
    """What API Gateway does with ``request`` (the module docstring's steps)."""
    routed = route(api, request.method, request.path)
    if routed is None:
        return Outcome(request, None, gateway_status=403, gateway_body=NO_ROUTE_BODY,
                       detail=f"no resource and method of the API match {request.method} {request.path}")
    operation, captured = routed
    refused = _refusal(api, request, operation)
    if refused is not None:
        return refused
    sent_key = next((v for k, v in request.headers.items() if k.lower() == API_KEY_HEADER), None)
    event = proxy_event(api, operation, request, captured, api_key=sent_key, now=now)
    return Outcome(request, operation, event=event, function=operation.function,
                   detail=f"-> {operation.function} as {operation.method} {operation.resource}")


def outcomes(rendered: Rendered, *, openapi: Mapping[str, Any] | None = None, api_key: str = DEFAULT_API_KEY,
             path_values: Mapping[str, str] | None = None, now: datetime | None = None) -> list[Outcome]:
    """Every request of the API's contract and of the declared definition, through API Gateway."""
    if openapi is None:
        from chalicelib.openapi import document

        openapi = document()
    api = declared_api(rendered)
    documented = documented_requests(openapi, api_key=api_key, path_values=path_values)
    requests = [*documented, *declared_requests(api, documented, api_key=api_key)]
    return [outcome(api, request, now=now) for request in requests]


# --- judging an answer -------------------------------------------------------------------------------


def judge(result: Outcome, response: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the function's proxy response to ``result.event`` is one the API's contract allows."""
    status = response.get("statusCode")
    body = response.get("body") or ""
    try:
        parsed = json.loads(base64.b64decode(body) if response.get("isBase64Encoded") else body) if body else None
    except ValueError:
        parsed = None
    code = parsed.get("Code") if isinstance(parsed, dict) else None
    where = f"{result.request.method} {result.request.path}"
    if code in CHALICE_ROUTING_ERRORS:
        return False, f"{where}: {status} {code} from Chalice's routing (resourcePath " \
                      f"{result.event['requestContext']['resourcePath'] if result.event else '?'})"
    if not isinstance(status, int) or status >= 500:
        return False, f"{where}: {status} {body[:160]}"
    allowed = result.request.documented
    if allowed and status not in allowed:
        return False, f"{where}: {status}, the OpenAPI document declares {sorted(allowed)}"
    if not allowed and status >= 400:
        return False, f"{where}: {status} {body[:160]}"
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return True, f"{where}: {status}" + (f" {error.get('code')}" if isinstance(error, dict) else "")


def triggers(rendered: Rendered, spec: FunctionSpec) -> Iterator[Trigger]:
    """The rehearsal's API Gateway triggers of ``spec``: one per request whose route the declared API sends
    to the function (and one failing trigger per documented request API Gateway refuses before it)."""
    from devkit.rehearse.run import Trigger

    results = outcomes(rendered)
    served = {r.function for r in results if r.function is not None}
    if spec.name not in served:
        return
    for result in results:
        if result.event is not None and result.function == spec.name:
            def decide(answers: Sequence[dict[str, Any]], result: Outcome = result) -> tuple[bool, str]:
                if len(answers) != 1 or not answers[0].get("ok"):
                    first = answers[0] if answers else {}
                    return False, f"{first.get('error')}: {str(first.get('message'))[:160]}"
                return judge(result, answers[0]["result"])

            yield Trigger(result.name, [result.event], decide)
        elif result.event is None and result.request.expected is not None and result.gateway_status != 200:
            def refused(_answers: Sequence[dict[str, Any]], result: Outcome = result) -> tuple[bool, str]:
                return False, f"API Gateway answers {result.gateway_status} itself: {result.detail}"

            yield Trigger(result.name, [], refused)
