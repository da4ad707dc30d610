"""API Gateway's proxy events for every route of the REST API each stack declares, dispatched in-process
through the Chalice app object: every documented request reaches its view with its path parameters
(``devkit.rehearse.apigw`` builds the events from the rendered definition the way API Gateway would).

The last tests show the same checks fail on an API fronted by one ``{proxy+}`` resource: API Gateway
then sends ``resourcePath: /{proxy+}`` and Chalice answers 405 on every route.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("pulumi_aws")

from chalice.app import Chalice, Response

from devkit.fakes import LambdaContext
from devkit.rehearse import apigw
from infra import plan as engine
from infra.plan import Rendered, Resource

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pulumi_aws.*")

STACKS = ("dev", "staging", "prod")
REST_EVENT_KEYS = {"resource", "path", "httpMethod", "headers", "multiValueHeaders", "queryStringParameters",
                   "multiValueQueryStringParameters", "pathParameters", "stageVariables", "requestContext", "body",
                   "isBase64Encoded"}
CONTEXT_KEYS = {"resourceId", "resourcePath", "httpMethod", "extendedRequestId", "requestTime", "path", "accountId",
                "protocol", "stage", "domainPrefix", "requestTimeEpoch", "requestId", "identity", "domainName", "apiId"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, Rendered]:
    engine.enable_bytecode_cache()
    return {stack: engine.render(stack) for stack in STACKS}


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, rendered: dict[str, Rendered]) -> Rendered:
    return rendered[request.param]


@pytest.fixture(scope="module")
def chalice_app() -> Chalice:
    import app  # chalice_api/app.py, as Lambda imports it (handler app.app)

    chalice: Chalice = app.app
    return chalice


@dataclass
class _Views:
    """Every view of the app replaced by one that records how it was called (routing only: no services)."""

    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def recorded(chalice_app: Chalice, monkeypatch: pytest.MonkeyPatch) -> _Views:
    views = _Views()
    for path, methods in chalice_app.routes.items():
        for method, entry in methods.items():
            def view(*, _path: str = path, _method: str = method, **kwargs: str) -> Response:
                views.calls.append((_path, _method, kwargs))
                return Response(body={"routed": True}, status_code=299)

            monkeypatch.setattr(entry, "view_function", view)
    return views


def _dispatch(chalice_app: Chalice, event: dict[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = chalice_app(copy.deepcopy(event), LambdaContext("dataforge-api"))
    return response


def test_every_documented_request_reaches_its_view_with_its_path_parameters(
        stack: Rendered, chalice_app: Chalice, recorded: _Views) -> None:
    results = apigw.outcomes(stack)
    documented = [r for r in results if r.request.expected is not None]
    assert len(documented) == sum(len(m) for m in chalice_app.routes.values())
    for result in documented:
        assert result.event is not None, f"{result.name}: {result.gateway_status} from API Gateway: {result.detail}"
        recorded.calls.clear()
        response = _dispatch(chalice_app, result.event)
        assert response["statusCode"] == 299, f"{result.name}: {response['statusCode']} {response['body']}"
        assert recorded.calls == [(result.request.template, result.request.method, dict(result.request.path_values))]


def test_every_operation_of_the_declared_definition_is_exercised(stack: Rendered) -> None:
    api = apigw.declared_api(stack)
    results = apigw.outcomes(stack)
    proxied = {(o.resource, o.method) for o in api.operations if o.integration == "aws_proxy"}
    reached = {(r.operation.resource, r.operation.method) for r in results if r.event is not None and r.operation}
    assert proxied
    assert proxied == reached
    assert {o.function for o in api.operations if o.integration == "aws_proxy"} == {
        stack.by_name("api-handler-function").inputs["name"]}


def test_the_events_have_the_rest_api_proxy_format(stack: Rendered) -> None:
    api = apigw.declared_api(stack)
    results = {(r.request.method, r.request.template): r for r in apigw.outcomes(stack)}
    ack = results[("POST", "/v1/alerts/{alert_id}/ack")].event
    health = results[("GET", "/v1/health")].event
    daily = results[("GET", "/v1/kpis/daily")].event
    assert ack is not None
    assert health is not None
    assert daily is not None
    for event in (ack, health, daily):
        assert set(event) == REST_EVENT_KEYS
        context = event["requestContext"]
        assert set(context) >= CONTEXT_KEYS
        assert context["resourcePath"] == event["resource"]
        assert context["path"] == f"/{api.stage}{event['path']}"
        assert (context["stage"], context["apiId"], context["accountId"]) == (api.stage, api.api_id, api.account)
        assert event["multiValueHeaders"] == {k: [v] for k, v in event["headers"].items()}
        assert event["headers"]["Host"] == f"{api.api_id}.execute-api.{api.region}.amazonaws.com"
        assert event["stageVariables"] is None
        assert event["isBase64Encoded"] is False
    assert ack["resource"] == "/v1/alerts/{alert_id}/ack"
    assert ack["pathParameters"] == {"alert_id": "rehearsal-alert-id"}
    assert ack["path"] == "/v1/alerts/rehearsal-alert-id/ack"
    assert json.loads(ack["body"]) == {"by": "rehearsal-by"}
    assert ack["headers"]["Content-Type"] == "application/json"
    assert (health["pathParameters"], health["body"]) == (None, None)
    assert (health["queryStringParameters"], health["multiValueQueryStringParameters"]) == (None, None)
    assert daily["queryStringParameters"] == {"from": "2024-01-02", "to": "2024-01-02"}
    assert daily["multiValueQueryStringParameters"] == {"from": ["2024-01-02"], "to": ["2024-01-02"]}


def test_the_api_key_flow_is_the_usage_plans(stack: Rendered) -> None:
    api = apigw.declared_api(stack)
    plan_key = stack.by_name("api-plan-key").inputs
    assert api.keyed
    assert api.api_key_id == plan_key["keyId"]
    results = {(r.request.method, r.request.template): r for r in apigw.outcomes(stack, api_key="k-1")}
    daily, health = results[("GET", "/v1/kpis/daily")], results[("GET", "/v1/health")]
    assert daily.operation is not None
    assert daily.operation.api_key_required
    assert daily.event is not None
    assert daily.event["headers"]["x-api-key"] == "k-1"
    assert daily.event["requestContext"]["identity"]["apiKey"] == "k-1"
    assert daily.event["requestContext"]["identity"]["apiKeyId"] == plan_key["keyId"]
    assert health.operation is not None
    assert not health.operation.api_key_required
    assert health.event is not None
    assert health.event["requestContext"]["identity"]["apiKey"] is None
    without_key = apigw.Request(**{**_fields(daily.request), "headers": {"Accept": "application/json"}})
    assert apigw.outcome(api, without_key).gateway_status == 403
    unplanned = _without(stack, "aws:apigateway/usagePlan:UsagePlan")
    refused = {(r.request.method, r.request.template): r for r in apigw.outcomes(unplanned)}
    assert refused[("GET", "/v1/kpis/daily")].gateway_status == 403
    assert refused[("GET", "/v1/health")].event is not None


def test_api_gateway_may_invoke_the_function_only_from_this_apis_stage(stack: Rendered) -> None:
    api = apigw.declared_api(stack)
    permission = stack.by_name("api-invoke").inputs
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["sourceArn"] == f"arn:aws:execute-api:{api.region}:{api.account}:{api.api_id}/{api.stage}/*/*"
    operation = next(o for o in api.operations if o.integration == "aws_proxy")
    assert api.may_invoke(operation)
    elsewhere = apigw.DeclaredApi(**{**_fields(api), "stage": "other"})
    assert not elsewhere.may_invoke(operation)
    unpermitted = apigw.outcomes(_without(stack, "aws:lambda/permission:Permission", "api-invoke"))
    assert {r.gateway_status for r in unpermitted if r.request.expected is not None} == {500}


# --- the same checks against an API fronted by one {proxy+} resource ------------------------------------


def _fields(value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


def _without(stack: Rendered, type_: str, name: str | None = None) -> Rendered:
    return Rendered(project=stack.project, stack=stack.stack, outputs=stack.outputs,
                    resources=[r for r in stack.resources if not (r.type == type_ and name in (None, r.name))])


def _proxy_plus(stack: Rendered) -> Rendered:
    """``stack`` with its API declared as one ``{proxy+}`` resource and the root, each with an ``ANY``
    method (API key required) and a Lambda proxy integration: the shape of an API that lets the app route."""
    rest = stack.by_name("api-rest")
    uri = apigw.declared_api(stack).operations[0].uri
    resources = [r for r in stack.resources if r.name != "api-rest"]
    resources.append(Resource(type=rest.type, name=rest.name, parent=rest.parent, custom=True, protect=False,
                              inputs={k: v for k, v in rest.inputs.items() if k != "body"}))
    resources.append(Resource(type=apigw.RESOURCE, name="api-proxy", parent=rest.parent, custom=True, protect=False,
                              inputs={"restApi": "api-rest-id", "parentId": "api-rest-root", "pathPart": "{proxy+}"}))
    for role, resource_id in (("root", "api-rest-root"), ("proxy", "api-proxy-id")):
        resources.append(Resource(type=apigw.METHOD, name=f"api-{role}-any", parent=rest.parent, custom=True,
                                  protect=False, inputs={"restApi": "api-rest-id", "resourceId": resource_id,
                                                         "httpMethod": "ANY", "authorization": "NONE",
                                                         "apiKeyRequired": True}))
        resources.append(Resource(type=apigw.INTEGRATION, name=f"api-{role}-lambda", parent=rest.parent, custom=True,
                                  protect=False, inputs={"restApi": "api-rest-id", "resourceId": resource_id,
                                                         "httpMethod": "ANY", "type": "AWS_PROXY", "uri": uri}))
    return Rendered(project=stack.project, stack=stack.stack, resources=resources, outputs=stack.outputs)


@pytest.fixture
def proxy_plus(rendered: dict[str, Rendered]) -> Rendered:
    return _proxy_plus(rendered["dev"])


def test_a_proxy_plus_api_sends_every_route_as_proxy_plus_and_chalice_answers_405(
        proxy_plus: Rendered, chalice_app: Chalice, recorded: _Views) -> None:
    documented = [r for r in apigw.outcomes(proxy_plus) if r.request.expected is not None]
    public = [r for r in documented if "x-api-key" not in r.request.headers]
    assert {(r.gateway_status, r.gateway_body) for r in public} == {(403, apigw.FORBIDDEN_BODY)}  # ANY requires a key
    keyed = [r for r in documented if r not in public]
    assert keyed
    for result in keyed:
        assert result.event is not None
        assert result.event["requestContext"]["resourcePath"] == "/{proxy+}"
        assert result.event["pathParameters"] == {"proxy": result.request.path.lstrip("/")}
        response = _dispatch(chalice_app, result.event)
        assert response["statusCode"] == 405
        ok, detail = apigw.judge(result, response)
        assert not ok
        assert "MethodNotAllowedError" in detail
    assert recorded.calls == []


def test_the_routing_check_fails_on_a_proxy_plus_api(proxy_plus: Rendered, chalice_app: Chalice,
                                                     recorded: _Views) -> None:
    with pytest.raises(AssertionError, match="405"):
        test_every_documented_request_reaches_its_view_with_its_path_parameters(proxy_plus, chalice_app, recorded)


# --- with the app's real services on the embedded platform ----------------------------------------------


def test_every_route_answers_a_documented_status_from_the_real_services(rendered: dict[str, Rendered],
                                                                        api_app: Chalice) -> None:
    from tests.fixtures.api import API_KEY

    for stack in STACKS:
        for result in apigw.outcomes(rendered[stack], api_key=API_KEY):
            if result.event is None:
                assert result.request.expected is None, f"{stack} {result.name}: {result.detail}"
                continue
            response = _dispatch(api_app, result.event)
            ok, detail = apigw.judge(result, response)
            assert ok, f"{stack}: {detail}"
            if not result.request.path_values and result.request.method == "GET":
                assert response["statusCode"] == result.request.expected, f"{stack}: {detail}"


# --- what the deployment rehearsal runs against the built artifact -------------------------------------


def test_the_rehearsal_gets_one_trigger_per_route_for_the_api_function_only(stack: Rendered,
                                                                            chalice_app: Chalice) -> None:
    from devkit.rehearse.lambdas import function_specs
    from infra import artifacts

    specs = {spec.name: spec for spec in function_specs(stack, artifacts.build_dir())}
    api_function = stack.by_name("api-handler-function").inputs["name"]
    found = list(apigw.triggers(stack, specs[api_function]))
    assert len(found) == sum(len(m) for m in chalice_app.routes.values())
    assert all(len(trigger.events) == 1 for trigger in found)
    assert not [t for name, spec in specs.items() if name != api_function for t in apigw.triggers(stack, spec)]
    health = next(t for t in found if t.name == "API GET /v1/health")
    answer = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}
    assert health.judge([{"ok": True, "result": answer}])[0]
    assert not health.judge([{"ok": True, "result": {**answer, "statusCode": 503}}])[0]
    assert not health.judge([{"ok": False, "error": "ImportError", "message": "no module named app"}])[0]
