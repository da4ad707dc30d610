"""Reachability over the rendered network of every stack: security groups and their rules, subnets, route tables,
gateway and interface endpoints, NAT and internet gateways.

For each consumer -> dependency pair the stack implies, a path exists:

- the MSK event source mapping -> the brokers on the IAM port, and -> the service of its on-failure destination.
  Its network interfaces take the cluster's subnets and security groups (Lambda developer guide, "Creating a
  Lambda event source mapping for an Amazon MSK event source"); the destination's service needs an endpoint in
  the cluster's VPC ("Capturing discarded batches ..."); in on-demand mode the pollers also need STS and Lambda
  (endpoints or NAT), in provisioned mode they do not ("Configuring your Amazon MSK cluster and Amazon VPC
  network for Lambda").
- a Glue job's network connection -> its security group's own members on every TCP port (AWS Glue developer
  guide: a self-referencing inbound rule), the brokers, and the AWS services its role uses (S3, the Glue API,
  DynamoDB, logs, metrics ...).
- a Lambda function in the VPC -> the AWS services its role uses (S3, DynamoDB, SNS, ...), and -> the brokers
  on the IAM port when its environment names them (the kafka-topics function on MSK Serverless).
- the internet -> the dashboard's load balancer (80, 443) -> its tasks (container port); the tasks -> the API's
  public endpoint (HTTPS to 0.0.0.0/0 through a NAT gateway whose subnet routes to an internet gateway).

And nothing else is open: every rule of every security group is one some path above uses, and the VPC's default
group has none. A service a role uses is found from its role's policy: the action prefix names the service.

The model is what the mock engine renders: a resource's ID is ``<name>-id`` and a gateway endpoint's prefix list
``pl-<name>``.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest

from dataforge import envvars
from infra.components.network import KAFKA_IAM_PORT
from infra.plan import Rendered, Resource

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
HTTPS = 443
WORLD = "0.0.0.0/0"
# IAM action prefix -> the VPC endpoint service a call with that prefix goes to
SERVICE_OF_PREFIX = {"s3": "s3", "dynamodb": "dynamodb", "sns": "sns", "sqs": "sqs", "glue": "glue", "logs": "logs",
                     "cloudwatch": "monitoring", "kms": "kms", "athena": "athena", "ssm": "ssm", "sts": "sts"}


@dataclass(frozen=True, slots=True)
class Rule:
    """One security-group rule, whatever form declares it."""

    source: str  # the resource that declares it
    group: str  # the ID of the group it belongs to
    egress: bool
    protocol: str  # "tcp", "udp", "-1" (all)
    low: int
    high: int
    peer_group: str | None = None
    cidr: str | None = None
    prefix_list: str | None = None

    def allows(self, port: int) -> bool:
        return self.protocol == "-1" or (self.protocol in ("tcp", "6") and self.low <= port <= self.high)


def _inline(group: Resource, key: str) -> Iterator[Rule]:
    gid = f"{group.name}-id"
    for index, item in enumerate(group.inputs.get(key) or []):
        common = {"source": f"{group.name}.{key}[{index}]", "group": gid, "egress": key == "egress",
                  "protocol": str(item.get("protocol")), "low": int(item.get("fromPort") or 0),
                  "high": int(item.get("toPort") or 0)}
        peers = [{"peer_group": g} for g in item.get("securityGroups") or []]
        peers += [{"peer_group": gid}] if item.get("self") else []
        peers += [{"cidr": c} for c in item.get("cidrBlocks") or []]
        peers += [{"prefix_list": p} for p in item.get("prefixListIds") or []]
        for peer in peers:
            yield Rule(**common, **peer)  # type: ignore[arg-type]


def rules(stack: Rendered) -> list[Rule]:
    found: list[Rule] = []
    for group in stack.of_type(SG):
        found += [*_inline(group, "ingress"), *_inline(group, "egress")]
    for r in stack.of_type(SG_RULE):
        i = r.inputs
        common = {"source": r.name, "group": i["securityGroupId"], "egress": i.get("type") == "egress",
                  "protocol": str(i.get("protocol")), "low": int(i.get("fromPort") or 0),
                  "high": int(i.get("toPort") or 0)}
        peers = [{"peer_group": i["sourceSecurityGroupId"]}] if i.get("sourceSecurityGroupId") else []
        peers += [{"peer_group": i["securityGroupId"]}] if i.get("self") else []
        peers += [{"cidr": c} for c in i.get("cidrBlocks") or []]
        peers += [{"prefix_list": p} for p in i.get("prefixListIds") or []]
        found += [Rule(**common, **peer) for peer in peers]
    for r in [*stack.of_type(INGRESS), *stack.of_type(EGRESS)]:
        i = r.inputs
        found.append(Rule(source=r.name, group=i["securityGroupId"], egress=r.type == EGRESS,
                          protocol=str(i.get("ipProtocol")), low=int(i.get("fromPort") or 0),
                          high=int(i.get("toPort") or 0), peer_group=i.get("referencedSecurityGroupId"),
                          cidr=i.get("cidrIpv4"), prefix_list=i.get("prefixListId")))
    return found


class Network:
    """The rendered network, and the rules each path found uses (``used``)."""

    def __init__(self, stack: Rendered) -> None:
        self.stack = stack
        self.rules = rules(stack)
        self.used: set[Rule] = set()
        self.by_id = {f"{r.name}-id": r for r in stack.resources}
        self.subnet_cidr = {f"{s.name}-id": s.inputs["cidrBlock"] for s in stack.of_type("aws:ec2/subnet:Subnet")}
        self.table_of = {a.inputs["subnetId"]: a.inputs["routeTableId"]
                         for a in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")}
        # com.amazonaws.<region>.<service>: "s3", "sqs", "ecr.api", ...
        self.endpoints = {e.inputs["serviceName"].split(".", 3)[-1]: e
                          for e in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}

    # --- rules ----------------------------------------------------------------------------------------------
    def _covers(self, rule: Rule, groups: Iterable[str], subnets: Iterable[str]) -> bool:
        """Whether ``rule``'s peer is one of ``groups`` or a CIDR block holding every one of ``subnets``."""
        if rule.peer_group is not None:
            return rule.peer_group in set(groups)
        if rule.cidr is not None:
            block = ipaddress.ip_network(rule.cidr)
            cidrs = [self.subnet_cidr.get(s) for s in subnets]
            return bool(cidrs) and all(
                c is not None and ipaddress.ip_network(c).subnet_of(block)  # type: ignore[arg-type]
                for c in cidrs)
        return False

    def _first(self, candidates: Iterable[Rule]) -> bool:
        for rule in candidates:
            self.used.add(rule)
            return True
        return False

    def egress_to(self, groups: Iterable[str], port: int, peer_groups: Iterable[str], peer_subnets: Iterable[str],
                  ) -> bool:
        groups, peer_groups, peer_subnets = list(groups), list(peer_groups), list(peer_subnets)
        return self._first(r for r in self.rules if r.egress and r.group in groups and r.allows(port)
                           and self._covers(r, peer_groups, peer_subnets))

    def ingress_from(self, groups: Iterable[str], port: int, peer_groups: Iterable[str],
                     peer_subnets: Iterable[str]) -> bool:
        groups, peer_groups, peer_subnets = list(groups), list(peer_groups), list(peer_subnets)
        return self._first(r for r in self.rules if not r.egress and r.group in groups and r.allows(port)
                           and self._covers(r, peer_groups, peer_subnets))

    # --- paths ----------------------------------------------------------------------------------------------
    def to_groups(self, groups: list[str], subnets: list[str], port: int, targets: list[str],
                  target_subnets: list[str]) -> list[str]:
        """Within the VPC (its local route): out of ``groups`` and into ``targets`` on ``port``."""
        problems = []
        if not self.egress_to(groups, port, targets, target_subnets):
            problems.append(f"no egress rule of {groups} lets tcp {port} out to {targets}")
        if not self.ingress_from(targets, port, groups, subnets):
            problems.append(f"no ingress rule of {targets} lets tcp {port} in from {groups}")
        return problems

    def to_service(self, groups: list[str], subnets: list[str], service: str) -> list[str]:
        """An AWS service's API over HTTPS: a gateway endpoint on every subnet's route table (and egress to its
        prefix list), or an interface endpoint (egress to it, its group's ingress from the consumer)."""
        endpoint = self.endpoints.get(service)
        if endpoint is None:
            return [f"no VPC endpoint for {service}"]
        if endpoint.inputs.get("vpcEndpointType") == "Gateway":
            tables = set(endpoint.inputs.get("routeTableIds") or [])
            problems = [f"subnet {s}: its route table has no route to the {service} gateway endpoint"
                        for s in subnets if self.table_of.get(s) not in tables]
            prefix = f"pl-{endpoint.name}"
            if not self._first(r for r in self.rules if r.egress and r.group in groups and r.allows(HTTPS)
                               and (r.prefix_list == prefix or r.cidr == WORLD)):
                problems.append(f"no egress rule of {groups} lets HTTPS out to the {service} prefix list")
            return problems
        if not endpoint.inputs.get("privateDnsEnabled"):
            return [f"{endpoint.name}: no private DNS, so the service's name does not resolve to it"]
        return self.to_groups(groups, subnets, HTTPS, list(endpoint.inputs.get("securityGroupIds") or []),
                              list(endpoint.inputs.get("subnetIds") or []))

    def _default_route(self, table_id: str | None) -> dict[str, str] | None:
        table = self.by_id.get(table_id or "")
        routes = [*(table.inputs.get("routes") or [] if table else []),
                  *(r.inputs for r in self.stack.of_type("aws:ec2/route:Route")
                    if r.inputs["routeTableId"] == table_id)]
        return next(({k: str(v) for k, v in r.items()} for r in routes
                     if (r.get("cidrBlock") or r.get("destinationCidrBlock")) == WORLD), None)

    def from_world(self, groups: list[str], port: int) -> bool:
        return self._first(r for r in self.rules if not r.egress and r.group in groups and r.allows(port)
                           and r.cidr == WORLD)

    def to_internet(self, groups: list[str], subnets: list[str], port: int) -> list[str]:
        problems = []
        for subnet in subnets:
            route = self._default_route(self.table_of.get(subnet))
            nat = self.by_id.get(route.get("natGatewayId", "")) if route else None
            if nat is None:
                problems.append(f"subnet {subnet}: no default route to a NAT gateway")
                continue
            upstream = self._default_route(self.table_of.get(nat.inputs["subnetId"]))
            if not upstream or not upstream.get("gatewayId", "").endswith("igw-id"):
                problems.append(f"{nat.name}: its subnet has no default route to an internet gateway")
        if not self._first(r for r in self.rules if r.egress and r.group in groups and r.allows(port)
                           and r.cidr == WORLD):
            problems.append(f"no egress rule of {groups} lets tcp {port} out to {WORLD}")
        return problems


def _services_of_role(stack: Rendered, role_arn: str, skip: frozenset[str] = frozenset()) -> set[str]:
    role_id = f"{role_arn.rsplit('/', 1)[-1]}-id"
    services = set()
    for policy in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.inputs["role"] != role_id:
            continue
        document = json.loads(policy.inputs["policy"])
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                prefix = action.split(":", 1)[0]
                if prefix in SERVICE_OF_PREFIX and prefix not in skip:
                    services.add(SERVICE_OF_PREFIX[prefix])
    return services


def _cluster(stack: Rendered) -> tuple[list[str], list[str]]:
    """The MSK cluster's security groups and subnets (serverless or provisioned)."""
    for r in stack.of_type("aws:msk/serverlessCluster:ServerlessCluster"):
        config = r.inputs["vpcConfigs"][0]
        return list(config["securityGroupIds"]), list(config["subnetIds"])
    for r in stack.of_type("aws:msk/cluster:Cluster"):
        info = r.inputs["brokerNodeGroupInfo"]
        return list(info["securityGroups"]), list(info["clientSubnets"])
    raise AssertionError("no MSK cluster")


def _mapping_paths(stack: Rendered, net: Network, found: dict[str, list[str]]) -> None:
    brokers, broker_subnets = _cluster(stack)
    for mapping in stack.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
        found[f"{mapping.name} -> MSK:{KAFKA_IAM_PORT}"] = net.to_groups(
            brokers, broker_subnets, KAFKA_IAM_PORT, brokers, broker_subnets)
        destination = (mapping.inputs.get("destinationConfig") or {}).get("onFailure", {}).get("destinationArn")
        services = {destination.split(":")[2]} if destination else set()
        if not mapping.inputs.get("provisionedPollerConfig"):
            services |= {"sts", "lambda"}
        for service in sorted(services):
            found[f"{mapping.name} -> {service}"] = net.to_service(brokers, broker_subnets, service)


def _glue_paths(stack: Rendered, net: Network, found: dict[str, list[str]]) -> None:
    brokers, broker_subnets = _cluster(stack)
    connections = {c.inputs["name"]: c for c in stack.of_type("aws:glue/connection:Connection")}
    for job in stack.of_type("aws:glue/job:Job"):
        for name in job.inputs.get("connections") or []:
            requirements = connections[name].inputs["physicalConnectionRequirements"]
            groups, subnets = list(requirements["securityGroupIdLists"]), [requirements["subnetId"]]
            # Glue's own requirement: the connection's group lets its members in on every TCP port.
            selfish = net.ingress_from(groups, 0, groups, subnets) and net.egress_to(groups, 0, groups, subnets)
            found[f"{job.name} -> its workers"] = [] if selfish else [
                f"{groups}: no self-referencing rule for all TCP ports"]
            found[f"{job.name} -> MSK:{KAFKA_IAM_PORT}"] = net.to_groups(groups, subnets, KAFKA_IAM_PORT, brokers,
                                                                         broker_subnets)
            for service in sorted(_services_of_role(stack, job.inputs["roleArn"]) | {"s3", "glue"}):
                found[f"{job.name} -> {service}"] = net.to_service(groups, subnets, service)


def _function_paths(stack: Rendered, net: Network, found: dict[str, list[str]]) -> None:
    brokers, broker_subnets = _cluster(stack)
    for function in stack.of_type("aws:lambda/function:Function"):
        vpc = function.inputs.get("vpcConfig")
        if not vpc:
            continue  # outside the VPC the function reaches AWS services over Lambda's own network
        groups, subnets = list(vpc["securityGroupIds"]), list(vpc["subnetIds"])
        # A function told the bootstrap brokers connects to them itself (the kafka-topics function).
        if envvars.KAFKA_BOOTSTRAP_SERVERS in ((function.inputs.get("environment") or {}).get("variables") or {}):
            found[f"{function.name} -> MSK:{KAFKA_IAM_PORT}"] = net.to_groups(groups, subnets, KAFKA_IAM_PORT,
                                                                              brokers, broker_subnets)
        # The role's sqs (the on-failure destination) and kafka-cluster actions are the event source mapping's,
        # checked above; its logs go out through Lambda's own network, not the function's interfaces.
        for service in sorted(_services_of_role(stack, function.inputs["role"], skip=frozenset({"sqs", "logs"}))):
            found[f"{function.name} -> {service}"] = net.to_service(groups, subnets, service)


def _dashboard_paths(stack: Rendered, net: Network, found: dict[str, list[str]]) -> None:
    for service in stack.of_type("aws:ecs/service:Service"):
        network = service.inputs["networkConfiguration"]
        tasks, subnets = list(network["securityGroups"]), list(network["subnets"])
        found[f"{service.name} -> API (public endpoint)"] = net.to_internet(tasks, subnets, HTTPS)
        for balancer in stack.of_type("aws:lb/loadBalancer:LoadBalancer"):
            albs, alb_subnets = list(balancer.inputs["securityGroups"]), list(balancer.inputs["subnets"])
            for target in service.inputs["loadBalancers"]:
                port = int(target["containerPort"])
                found[f"{balancer.name} -> {service.name}:{port}"] = net.to_groups(albs, alb_subnets, port, tasks,
                                                                                  subnets)
            for port in (80, HTTPS):
                found[f"internet -> {balancer.name}:{port}"] = [] if net.from_world(albs, port) else [
                    f"no ingress rule of {albs} lets tcp {port} in from {WORLD}"]


def paths(stack: Rendered) -> tuple[Network, dict[str, list[str]]]:
    """Every consumer -> dependency pair the stack implies, with what blocks each (empty when a path exists)."""
    net = Network(stack)
    found: dict[str, list[str]] = {}
    for add in (_mapping_paths, _glue_paths, _function_paths, _dashboard_paths):
        add(stack, net, found)
    return net, found


# --- tests -------------------------------------------------------------------------------------------------
def test_every_consumer_reaches_every_dependency(stack: Rendered) -> None:
    _, found = paths(stack)
    assert {pair: problems for pair, problems in found.items() if problems} == {}


def test_the_pairs_cover_what_the_stack_implies(stack: Rendered) -> None:
    _, found = paths(stack)
    expected = {f"ingestion-msk-mapping -> MSK:{KAFKA_IAM_PORT}", "ingestion-msk-mapping -> sqs",
                f"processing-streaming-enrichment -> MSK:{KAFKA_IAM_PORT}", "processing-streaming-enrichment -> s3",
                "processing-streaming-enrichment -> glue", "processing-streaming-enrichment -> its workers",
                "ingestion-msk-landing-function -> s3", "ingestion-msk-landing-function -> dynamodb",
                "dashboard-service -> API (public endpoint)", "dashboard-alb -> dashboard-service:5006",
                "internet -> dashboard-alb:443"}
    assert expected <= set(found)


def test_nothing_else_is_open(stack: Rendered) -> None:
    net, _ = paths(stack)
    assert sorted({r.source for r in net.rules} - {r.source for r in net.used}) == []
    default = stack.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert [d.inputs.get("ingress") or d.inputs.get("egress") for d in default] == [None]


def test_every_rule_is_a_standalone_vpc_rule(stack: Rendered) -> None:
    """pulumi-aws, aws.ec2.SecurityGroup: inline rules and standalone rule resources on one group conflict (a
    refresh folds the standalone ones into the inline list and the next update removes them)."""
    standalone = {r.inputs["securityGroupId"] for t in (SG_RULE, INGRESS, EGRESS) for r in stack.of_type(t)}
    inline = {f"{g.name}-id" for g in stack.of_type(SG) if g.inputs.get("ingress") or g.inputs.get("egress")}
    assert inline & standalone == set()
    # One form for every rule: standalone aws.vpc rules, on every group.
    assert inline == set()
    assert stack.of_type(SG_RULE) == []


# --- the check itself fails on broken wiring --------------------------------------------------------------
def _without(stack: Rendered, *names: str) -> Rendered:
    return Rendered(stack.project, stack.stack, [r for r in stack.resources if r.name not in names], stack.outputs)


@pytest.mark.parametrize(("removed", "pair"), [
    (("network-kafka-from-self",), f"ingestion-msk-mapping -> MSK:{KAFKA_IAM_PORT}"),
    (("network-kafka-to-self",), f"ingestion-msk-mapping -> MSK:{KAFKA_IAM_PORT}"),
    (("network-kafka-to-endpoints",), "ingestion-msk-mapping -> sqs"),
    (("network-compute-to-kafka",), f"processing-streaming-enrichment -> MSK:{KAFKA_IAM_PORT}"),
    (("network-kafka-from-compute",), f"streaming-topics-function -> MSK:{KAFKA_IAM_PORT}"),
    (("network-s3-egress",), "ingestion-msk-landing-function -> s3"),
    (("network-dynamodb-egress",), "ingestion-msk-landing-function -> dynamodb"),
    (("network-compute-to-endpoints",), "processing-streaming-enrichment -> glue"),
    (("network-compute-from-self",), "processing-streaming-enrichment -> its workers"),
    (("network-private-0-egress",), "dashboard-service -> API (public endpoint)"),
    (("dashboard-alb-egress",), "dashboard-alb -> dashboard-service:5006"),
])
def test_a_missing_rule_or_route_breaks_its_path(stacks: dict[str, Rendered], removed: tuple[str, ...],
                                                 pair: str) -> None:
    _, found = paths(_without(stacks["dev"], *removed))
    assert found[pair], f"{pair} still has a path without {removed}"


def test_an_extra_open_rule_is_found(stacks: dict[str, Rendered]) -> None:
    stack = stacks["dev"]
    extra = Resource(INGRESS, "extra", None, True, False, {
        "securityGroupId": "network-kafka-sg-id", "ipProtocol": "tcp", "fromPort": 9092, "toPort": 9092,
        "cidrIpv4": "10.0.0.0/8"})
    net, _ = paths(Rendered(stack.project, stack.stack, [*stack.resources, extra], stack.outputs))
    assert {r.source for r in net.rules} - {r.source for r in net.used} == {"extra"}


def test_the_mapping_without_provisioned_pollers_needs_sts_and_lambda(stacks: dict[str, Rendered]) -> None:
    stack = stacks["dev"]
    mapping = stack.by_name("ingestion-msk-mapping")
    inputs = {k: v for k, v in mapping.inputs.items() if k != "provisionedPollerConfig"}
    on_demand = Resource(mapping.type, mapping.name, mapping.parent, True, False, inputs)
    _, found = paths(Rendered(stack.project, stack.stack,
                              [on_demand if r is mapping else r for r in stack.resources], stack.outputs))
    assert {"ingestion-msk-mapping -> sts", "ingestion-msk-mapping -> lambda"} <= set(found)
