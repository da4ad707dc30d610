"""The deploying account: who it is, what its Lambda concurrency quota allows, and API Gateway's
account-level CloudWatch role.

- ``caller``: the account id and partition of the credentials ``pulumi up`` runs with (STS
  GetCallerIdentity), so a stack file carries no account id; bucket names and ARNs derive from it.
- ``check_reserved_concurrency``: an opted-in reserved concurrency is checked against the account's
  Lambda quota (Service Quotas) before anything is created.
- ``ApiGatewayAccount``: the role API Gateway assumes to write a stage's access and execution logs,
  set as the region's API Gateway account setting. A fresh account has none, and a stage with access
  logging fails to deploy without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from infra.errors import InfraConfigError
from infra.settings import NAMESPACE, StackSettings

# Lambda's "Concurrent executions" quota (per account and region) in Service Quotas.
LAMBDA_SERVICE_CODE: Final = "lambda"
LAMBDA_CONCURRENCY_QUOTA_CODE: Final = "L-B99A9384"
# Lambda keeps this much of the account's concurrency unreserved, for the functions without a reservation:
# "you can reserve up to the Unreserved account concurrency value minus 100"
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html).
LAMBDA_UNRESERVED_MINIMUM: Final = 100
# The AWS managed policy API Gateway's logging role uses (logs:CreateLogGroup, CreateLogStream, PutLogEvents,
# Describe*, GetLogEvents, FilterLogEvents on *): API Gateway writes every API's logs of the region with it.
PUSH_TO_CLOUDWATCH_POLICY: Final = "policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
# The trust policy AWS documents for that role: API Gateway assumes it for whichever API of the account and
# region writes logs, so no source condition narrows it.
TRUST_POLICY: Final = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@dataclass(frozen=True, slots=True)
class Caller:
    account_id: str
    partition: str  # aws, aws-cn, aws-us-gov


def caller() -> Caller:
    """The account the program deploys into, from the credentials it runs with."""
    identity = aws.get_caller_identity()
    return Caller(account_id=identity.account_id, partition=identity.arn.split(":")[1])


def check_reserved_concurrency(s: StackSettings) -> None:
    """Refuse ``ingestion.reservedConcurrency`` when the account's concurrency quota cannot grant it.

    Nothing is asked of the account when no reservation is configured (-1, the default) or when it is 0
    (the function is stopped; that takes nothing from the pool). The check is the part of Lambda's rule
    that the stack alone decides: the reservation must leave the account at least
    ``LAMBDA_UNRESERVED_MINIMUM`` unreserved; reservations other functions of the account already hold
    in the region come on top and are left to Lambda to refuse (PutFunctionConcurrency)."""
    reserved = s.ingestion.reserved_concurrency
    if reserved <= 0:
        return
    quota = aws.servicequotas.get_service_quota(service_code=LAMBDA_SERVICE_CODE,
                                                quota_code=LAMBDA_CONCURRENCY_QUOTA_CODE)
    limit = int(quota.value)
    if reserved > limit - LAMBDA_UNRESERVED_MINIMUM:
        most = max(limit - LAMBDA_UNRESERVED_MINIMUM, 0)
        raise InfraConfigError(
            f"Pulumi.{s.env}.yaml, {NAMESPACE}:ingestion.reservedConcurrency: {reserved} cannot be reserved: the "
            f"account's Lambda concurrency quota in {s.region} is {limit} and Lambda keeps "
            f"{LAMBDA_UNRESERVED_MINIMUM} of it unreserved, so at most {most} can be. Remove the setting (the "
            f"function then shares the unreserved pool) or request a higher quota first: aws service-quotas "
            f"request-service-quota-increase --service-code {LAMBDA_SERVICE_CODE} --quota-code "
            f"{LAMBDA_CONCURRENCY_QUOTA_CODE} --desired-value <n> --region {s.region}")


@dataclass(frozen=True, slots=True)
class ApiGatewayAccountArgs:
    base_name: str
    partition: str = "aws"


class ApiGatewayAccount(pulumi.ComponentResource):
    """API Gateway's CloudWatch role for the region, and the account setting that names it.

    ``aws.apigateway.Account`` is a singleton per account and region: every stack and every other tool
    that manages it overwrites the same setting, and all APIs of the region log through the role it
    names. With pulumi-aws 7 (Terraform AWS provider 6), deleting the resource resets the setting
    (``cloudwatchRoleArn`` emptied; hashicorp/terraform-provider-aws#42226), which would stop the
    logging of every other stack's API in the region and fail their next stage update. The setting,
    the role and its policy attachment are therefore kept on ``pulumi destroy`` (``retain_on_delete``):
    the region's last API keeps logging, and a retained role is removed by hand once no API of the
    region logs any more (docs/infra.md)."""

    account: aws.apigateway.Account  # the stage that logs depends on it
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ApiGatewayAccountArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:account:ApiGatewayAccount", name, None, opts)
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        role = aws.iam.Role(f"{name}-cloudwatch-role", assume_role_policy=TRUST_POLICY,
                            description=f"API Gateway writes API logs of the region to CloudWatch ({args.base_name})",
                            opts=kept)
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-cloudwatch-policy", role=role.name,
            policy_arn=f"arn:{args.partition}:iam::aws:{PUSH_TO_CLOUDWATCH_POLICY}", opts=kept)
        self.account = aws.apigateway.Account(
            f"{name}-settings", cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, depends_on=[attachment]))
        self.role_arn = role.arn
        self.register_outputs({"cloudwatch_role_arn": self.role_arn})
