"""API: the Chalice app as a Lambda behind an API Gateway REST API (proxy), API key or IAM auth,
env vars from outputs, access logs with retention."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from infra import iam
from infra.components.functions import Function, FunctionArgs
from infra.refs import FunctionRuntime
from infra.settings import ApiSettings

STAGE: Final = "api"
CHALICE_HANDLER: Final = "app.app"
API_FUNCTION: Final = "api"  # the name of the API's code in its ``FunctionRuntime``


@dataclass(frozen=True, slots=True)
class ApiArgs:
    base_name: str
    settings: ApiSettings
    runtime: FunctionRuntime  # the API's zip as ``code``, its environment
    statements: Sequence[iam.Statement]  # what the API may read and write


class Api(pulumi.ComponentResource):
    url: pulumi.Output[str]
    rest_api_name: pulumi.Output[str]
    function_name: pulumi.Output[str]
    api_key_value: pulumi.Output[str] | None

    def __init__(self, name: str, args: ApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:api:Api", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        api, runtime = args.settings, args.runtime
        function = Function(f"{name}-handler", FunctionArgs(
            function_name=f"{args.base_name}-api", handler=CHALICE_HANDLER, code=runtime.code_of(API_FUNCTION),
            layers=[runtime.core_layer_arn], environment=runtime.environment, statements=args.statements,
            log_retention_days=runtime.log_retention_days, kms_key_arn=runtime.kms_key_arn, memory_mb=api.memory_mb,
            timeout_seconds=30, description="DataForge analytics API (Chalice)"), opts=child)
        rest = aws.apigateway.RestApi(f"{name}-rest", name=f"{args.base_name}-api",
                                      endpoint_configuration={"types": "REGIONAL"},
                                      api_key_source="HEADER", opts=child)
        proxy = aws.apigateway.Resource(f"{name}-proxy", rest_api=rest.id, parent_id=rest.root_resource_id,
                                        path_part="{proxy+}", opts=child)
        authorization = "AWS_IAM" if api.auth == "iam" else "NONE"
        integrations = []
        for role, resource_id in (("root", rest.root_resource_id), ("proxy", proxy.id)):
            method = aws.apigateway.Method(f"{name}-{role}-any", rest_api=rest.id, resource_id=resource_id,
                                           http_method="ANY", authorization=authorization,
                                           api_key_required=api.auth == "api_key", opts=child)
            integrations.append(aws.apigateway.Integration(
                f"{name}-{role}-lambda", rest_api=rest.id, resource_id=resource_id, http_method=method.http_method,
                integration_http_method="POST", type="AWS_PROXY", uri=function.function.invoke_arn, opts=child))
        aws.lambda_.Permission(f"{name}-invoke", action="lambda:InvokeFunction", function=function.name,
                               principal="apigateway.amazonaws.com",
                               source_arn=pulumi.Output.concat(rest.execution_arn, "/*/*"), opts=child)
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment", rest_api=rest.id,
            triggers={"code": runtime.code_of(API_FUNCTION).sha256, "auth": api.auth},
            opts=pulumi.ResourceOptions(parent=self, depends_on=integrations))
        access_logs = aws.cloudwatch.LogGroup(f"{name}-access-logs", name=f"/aws/apigateway/{args.base_name}-api",
                                              retention_in_days=runtime.log_retention_days, opts=child)
        stage = aws.apigateway.Stage(
            f"{name}-stage", rest_api=rest.id, deployment=deployment.id, stage_name=STAGE,
            xray_tracing_enabled=True,
            access_log_settings={"destination_arn": access_logs.arn, "format": json.dumps({
                "requestId": "$context.requestId", "ip": "$context.identity.sourceIp",
                "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
                "latencyMs": "$context.responseLatency"}, sort_keys=True)},
            opts=child)
        aws.apigateway.MethodSettings(f"{name}-settings", rest_api=rest.id, stage_name=stage.stage_name,
                                      method_path="*/*", settings={
                                          "metrics_enabled": True, "throttling_rate_limit": api.throttle_rate,
                                          "throttling_burst_limit": api.throttle_burst}, opts=child)
        self.api_key_value = None
        if api.auth == "api_key":
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
