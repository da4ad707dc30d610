"""Offline plan and diff: deterministic output, expected environment differences only."""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra import plan as engine
from infra.artifacts import deterministic_zip
from infra.plan import Rendered

ROOT = Path(__file__).resolve().parents[2]

# Leaf properties allowed to differ between dev and prod: each is a Pulumi.<env>.yaml setting
# (sizes, retention, protections, zones/CIDRs, thresholds) or follows from one.
EXPECTED_DEV_PROD = re.compile(
    r"^(protect|dependsOn\..*"
    r"|inputs\.(retentionInDays|forceDestroy|cidrBlock|availabilityZone|workerType|numberOfWorkers|memorySize"
    r"|batchSize|maximumBatchingWindowInSeconds|reservedConcurrentExecutions|partitionCount|desiredCount|cpu|memory"
    r"|deletionProtectionEnabled|pointInTimeRecovery\.enabled|threshold|configs\.retention\.ms"
    r"|configuration\.bytesScannedCutoffPerQuery|throttleSettings\.(rateLimit|burstLimit)"
    r"|settings\.throttling(Rate|Burst)Limit|certificateArn"
    r"|rules\[\d+\]\.(expiration\.days|noncurrentVersionExpiration\.noncurrentDays)"
    r"|(egress|ingress)\[\d+\]\.cidrBlocks\[\d+\]"
    r"|cidrIpv4"  # the endpoints' group admits HTTPS from the VPC's CIDR block
    r"|(subnetIds|subnets|vpcConfig\.subnetIds|networkConfiguration\.subnets|vpcConfigs\[0\]\.subnetIds"
    r"|routeTableIds)\[\d+\]"
    r"|defaultArguments\.--DATAFORGE_KAFKA_BOOTSTRAP_SERVERS"
    r"|policy\.Statement\[\d+\]\.Resource\[\d+\])$)")


def test_plan_is_byte_identical_on_two_runs(source_snapshot: Path, stacks: dict[str, Rendered]) -> None:
    again = engine.render("prod", source_snapshot)
    assert again.dumps() == stacks["prod"].dumps()
    plan = json.loads(again.dumps())
    first = plan["resources"][0]
    assert set(first) == {"type", "name", "parent", "custom", "protect", "dependencies", "inputs"}
    assert str(source_snapshot) not in again.dumps(), "no checkout paths in the plan"


def test_summary_lists_every_resource(stacks: dict[str, Rendered]) -> None:
    text = engine.summary(stacks["dev"])
    assert text.startswith(f"stack dev: {len(stacks['dev'].resources)} resources")
    assert "lake-bronze-bucket" in text


def test_diff_dev_to_prod_shows_the_configured_differences_and_nothing_else(stacks: dict[str, Rendered]) -> None:
    result = engine.diff(stacks["dev"], stacks["prod"])
    assert set(result.added) == {
        "aws:msk/cluster:Cluster::streaming-cluster", "aws:cloudwatch/logGroup:LogGroup::streaming-broker-logs",
        "aws:ec2/subnet:Subnet::network-private-2", "aws:ec2/subnet:Subnet::network-public-2",
        "aws:ec2/routeTableAssociation:RouteTableAssociation::network-private-2-rta",
        "aws:ec2/routeTableAssociation:RouteTableAssociation::network-public-2-rta",
        # the third zone's route table and NAT gateway (one per zone)
        "aws:ec2/routeTable:RouteTable::network-private-2-rt", "aws:ec2/eip:Eip::network-nat-2-eip",
        "aws:ec2/natGateway:NatGateway::network-nat-2", "aws:ec2/route:Route::network-private-2-egress",
        "aws:sns/topicSubscription:TopicSubscription::observability-email-0",
        "aws:msk/topic:Topic::streaming-topic-transactions",  # MSK's topic API: provisioned clusters only
    }
    # serverless: the topics are created by the kafka-topics function, run by an Invocation
    topics_function = {"aws:cloudwatch/logGroup:LogGroup::streaming-topics-logs",
                       "aws:iam/role:Role::streaming-topics-role",
                       "aws:iam/rolePolicy:RolePolicy::streaming-topics-role-policy",
                       "aws:lambda/function:Function::streaming-topics-function",
                       "aws:lambda/layerVersion:LayerVersion::streaming-topics-layer",
                       "aws:lambda/invocation:Invocation::streaming-topics-invocation",
                       "dataforge:functions:Function::streaming-topics"}
    # dev declares the FIS experiment templates (dataforge:chaos fis: true), prod does not
    fis = {"dataforge:chaos:Chaos::chaos", "aws:cloudwatch/logGroup:LogGroup::chaos-logs",
           "aws:cloudwatch/logResourcePolicy:LogResourcePolicy::chaos-log-delivery",
           "aws:iam/role:Role::chaos-role", "aws:iam/rolePolicy:RolePolicy::chaos-role-policy",
           "aws:fis/experimentTemplate:ExperimentTemplate::chaos-dashboard-stop-task",
           "aws:fis/experimentTemplate:ExperimentTemplate::chaos-subnet-disrupt"}
    assert set(result.removed) == {"aws:msk/serverlessCluster:ServerlessCluster::streaming-cluster",
                                   *topics_function, *fis}
    unexpected = [(c.address, path) for c in result.changed for path, _, _ in c.properties
                  if not EXPECTED_DEV_PROD.match(path)]
    assert unexpected == []
    changed = {c.address.split("::")[1] for c in result.changed}
    assert {"serving-alerts", "serving-workgroup", "ingestion-msk-mapping", "network-vpc"} <= changed
    public_access = next(c for c in result.changed if c.address.endswith("::lake-bronze-public-access"))
    assert public_access.properties == (("protect", False, True),)  # security settings do not vary by stack
    text = engine.markdown(result)
    assert text.startswith("## Stack diff: `dev` → `prod`")
    assert "| `inputs.deletionProtectionEnabled` | `false` | `true` |" in text


def test_a_stack_against_itself_has_no_diff(stacks: dict[str, Rendered]) -> None:
    result = engine.diff(stacks["staging"], stacks["staging"])
    assert result.empty
    assert "No changes" in engine.markdown(result)


def test_diff_against_a_revision_without_the_program_adds_everything() -> None:
    head_has_infra = (ROOT / ".git").exists()
    before = engine.Rendered(project="dataforge", stack="dev", resources=[], outputs={})
    if head_has_infra:
        with engine.checkout("HEAD", ROOT) as tree:
            if not (tree / "infra" / "program.py").is_file():
                before = engine.render_in_subprocess("dev", tree)
    after = Rendered(project="dataforge", stack="dev", resources=[
        engine.Resource("aws:s3/bucket:Bucket", "b", None, True, False, {"bucket": "x"})], outputs={})
    result = engine.diff(before, after, "dev@HEAD", "dev@.")
    assert result.added == ("aws:s3/bucket:Bucket::b",)


def test_artifacts_are_deterministic_and_follow_content(tmp_path: Path) -> None:
    src = tmp_path / "pkg"
    src.mkdir()
    (src / "a.py").write_text("x = 1\n")
    first = deterministic_zip([("pkg", src)])
    assert deterministic_zip([("pkg", src)]) == first
    (src / "a.py").write_text("x = 2\n")
    assert deterministic_zip([("pkg", src)]) != first
    assert deterministic_zip([("pkg", tmp_path / "missing")])  # a valid, empty archive
