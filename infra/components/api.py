"""API: the Chalice app as a Lambda function behind the API Gateway REST API Chalice defines for it.

The REST API is the definition Chalice generates for the app (``infra.chalice_config``): one resource
per route with an ``aws_proxy`` integration to the function, so API Gateway sends each request with
``requestContext.resourcePath`` set to the route's template (``/v1/alerts/{alert_id}/ack``) and the
route's ``pathParameters``, which is what Chalice dispatches on. It is imported through
``RestApi.body`` (API Gateway's PutRestApi, mode ``overwrite``, as ``chalice deploy`` does); what
Chalice sets outside the document is set here from the same Chalice config: endpoint type, minimum
compression size, binary media types, the stage's name and X-Ray tracing. The function's memory,
timeout and architecture come from that config as well (``.chalice/config.json``, the one source).

Around the definition the component adds what Chalice leaves to its deployer: the Lambda permission
for API Gateway (source ARN scoped to this API's stage), the deployment (redeployed when the definition
changes), the stage with access logs, throttling, and, when the app's routes require API keys, the usage
plan and the key the dashboard uses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from infra import artifacts, iam
from infra.chalice_config import ChaliceApi, canonical
from infra.components.functions import Function, FunctionArgs
from infra.errors import InfraConfigError
from infra.refs import FunctionRuntime
from infra.settings import ApiSettings

API_FUNCTION: Final = "api"  # the name of the API's code in its ``FunctionRuntime``
ACCESS_LOG_FORMAT: Final = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "method": "$context.httpMethod",
    "path": "$context.resourcePath", "status": "$context.status", "latencyMs": "$context.responseLatency"},
    sort_keys=True)


@dataclass(frozen=True, slots=True)
class ApiArgs:
    base_name: str
    settings: ApiSettings
    runtime: FunctionRuntime  # the API's zip as ``code``, its environment
    statements: Sequence[iam.Statement]  # what the API may read and write
    chalice: ChaliceApi  # Chalice's definition of the API and its deployment settings for this stage
    # The account's API Gateway settings (``aws.apigateway.Account``: the CloudWatch Logs role). A stage
    # with access logging is refused while the account has no such role, so the stage waits for it.
    account_settings: pulumi.Resource | None = None


def check(chalice: ChaliceApi, settings: ApiSettings) -> None:
    """What the stack needs of Chalice's definition and settings: the functions' architecture (the core
    layer's third-party packages are built for it), and the authorization ``api.auth`` names."""
    if chalice.architecture != artifacts.ARM64.name:
        raise InfraConfigError(
            f"{chalice.config_file}: lambda_architecture for stage {chalice.stage} is {chalice.architecture!r}; "
            f"the API imports the core layer's packages, built for {artifacts.ARM64.name}")
    if settings.auth == "api_key" and not chalice.requires_api_key:
        raise InfraConfigError(
            "dataforge:api.auth is api_key, but no route of the Chalice app requires an API key "
            "(api_key_required=True in chalice_api/app.py)")
    if settings.auth == "iam" and (chalice.requires_api_key or not chalice.requires_sigv4):
        raise InfraConfigError(
            "dataforge:api.auth is iam, but the Chalice app's routes require API keys, not IAM authorization: "
            "IAM needs authorizer=IAMAuthorizer() on the routes in chalice_api/app.py")


class Api(pulumi.ComponentResource):
    url: pulumi.Output[str]
    rest_api_name: pulumi.Output[str]
    function_name: pulumi.Output[str]
    api_key_value: pulumi.Output[str] | None

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:api:Api", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api, runtime, chalice = args.settings, args.runtime, args.chalice
        check(chalice, api)
        function = Function(f"{name}-handler", FunctionArgs(
            function_name=f"{args.base_name}-api", handler=chalice.handler, code=runtime.code_of(API_FUNCTION),
            layers=[runtime.core_layer_arn], environment=runtime.environment, statements=args.statements,
            log_retention_days=runtime.log_retention_days, kms_key_arn=runtime.kms_key_arn,
            memory_mb=chalice.memory_mb, timeout_seconds=chalice.timeout_seconds,
            reserved_concurrency=-1 if chalice.reserved_concurrency is None else chalice.reserved_concurrency,
            description="DataForge analytics API (Chalice)"), opts=child)
        body = function.function.invoke_arn.apply(chalice.body)
        # Values given here override the document's (pulumi-aws RestApi: "If the argument value is provided
        # and is different than the OpenAPI value, the argument value will override"); Chalice's own
        # deployers set the same ones outside its document.
        rest = aws.apigateway.RestApi(
            f"{name}-rest", name=f"{args.base_name}-api", body=body, put_rest_api_mode="overwrite",
            endpoint_configuration={"types": chalice.endpoint_type}, api_key_source="HEADER",
            binary_media_types=chalice.binary_media_types,
            minimum_compression_size=None if chalice.minimum_compression_size is None
            else str(chalice.minimum_compression_size), opts=child)
        # API Gateway invokes the function only from this API's stage: the permission's source ARN is
        # arn:aws:execute-api:<region>:<account>:<api id>/<stage>/<method>/<resource path>.
        permission = aws.lambda_.Permission(
            f"{name}-invoke", action="lambda:InvokeFunction", function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=pulumi.Output.concat(rest.execution_arn, "/", chalice.api_gateway_stage, "/*/*"), opts=child)
        # A stage serves the snapshot of its deployment: a new one whenever the body would change (Chalice's
        # document, or the function it integrates).
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment", rest_api=rest.id,
            triggers={"definition": hashlib.sha256(canonical(chalice.definition).encode()).hexdigest(),
                      "integration": function.function.invoke_arn}, opts=child)
        access_logs = aws.cloudwatch.LogGroup(f"{name}-access-logs", name=f"/aws/apigateway/{args.base_name}-api",
                                              retention_in_days=runtime.log_retention_days, opts=child)
        stage = aws.apigateway.Stage(
            f"{name}-stage", rest_api=rest.id, deployment=deployment.id, stage_name=chalice.api_gateway_stage,
            xray_tracing_enabled=chalice.xray,
            access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[
                permission, *([args.account_settings] if args.account_settings is not None else [])]))
        aws.apigateway.MethodSettings(f"{name}-settings", rest_api=rest.id, stage_name=stage.stage_name,
                                      method_path="*/*", settings={
                                          "metrics_enabled": True, "throttling_rate_limit": api.throttle_rate,
                                          "throttling_burst_limit": api.throttle_burst}, opts=child)
        self.api_key_value = None
        if chalice.requires_api_key:
            plan = aws.apigateway.UsagePlan(f"{name}-usage-plan", name=f"{args.base_name}-api",
                                            api_stages=[{"api_id": rest.id, "stage": stage.stage_name}],
                                            throttle_settings={"rate_limit": api.throttle_rate,
                                                               "burst_limit": api.throttle_burst}, opts=child)
            key = aws.apigateway.ApiKey(f"{name}-key", name=f"{args.base_name}-dashboard", enabled=True, opts=child)
            aws.apigateway.UsagePlanKey(f"{name}-plan-key", key_id=key.id, key_type="API_KEY", usage_plan_id=plan.id,
                                        opts=child)
            self.api_key_value = pulumi.Output.secret(key.value)
        self.url = stage.invoke_url
        self.rest_api_name = rest.name
        self.function_name = function.name
        self.register_outputs({"url": self.url, "function": self.function_name})
