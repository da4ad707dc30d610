"""Network: a VPC with private subnets over the chosen AZs, VPC endpoints for the AWS services, and NAT gateways
for the one route beyond AWS (the dashboard to the API's public endpoint, ADR 0012)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from infra.errors import InfraConfigError, InfraError
from infra.refs import NetworkRefs
from infra.settings import NAMESPACE, NetworkSettings

INTERFACE_ENDPOINTS: Final = ("logs", "monitoring", "sts", "kms", "glue", "sns", "sqs", "athena", "ecr.api",
                              "ecr.dkr", "ssm", "lambda")
GATEWAY_ENDPOINTS: Final = ("s3", "dynamodb")
KAFKA_IAM_PORT: Final = 9098


def choose_zones(count: int, env: str) -> tuple[str, ...]:
    """The first ``count`` (by name) of the Availability Zones the deploying account sees as available in the
    provider's region, asked of EC2 (DescribeAvailabilityZones) when the program runs, so a stack file names no
    zone: AZ names map to different physical zones in every account, and a region or account may offer fewer.
    Only zones of type ``availability-zone`` count: Local Zones and Wavelength Zones (opt-in) lack the
    services the VPC's subnets serve (MSK brokers, interface endpoints, the load balancer). More zones asked
    than offered is refused here, before anything is created (``pulumi preview`` already fails)."""
    found = aws.get_availability_zones(state="available",
                                       filters=[{"name": "zone-type", "values": ["availability-zone"]}])
    names = sorted(found.names)
    if count > len(names):
        raise InfraConfigError(
            f"Pulumi.{env}.yaml, {NAMESPACE}:network.availabilityZoneCount: {count} zones asked, but the account "
            f"has {len(names)} available Availability Zones in {found.id}: {', '.join(names) or 'none'}")
    return tuple(names[:count])


def ingress_rule(name: str, group_id: pulumi.Input[str], protocol: str, port: int | None, description: str, *,
                 cidr: str | None = None, from_group: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> aws.vpc.SecurityGroupIngressRule:
    """One inbound rule of ``group_id`` as its own resource: ``port`` None with protocol "-1" means every port
    (EC2 refuses ports on an all-protocols rule); the source is a CIDR block or another security group."""
    return aws.vpc.SecurityGroupIngressRule(
        name, security_group_id=group_id, ip_protocol=protocol, from_port=port, to_port=port, cidr_ipv4=cidr,
        referenced_security_group_id=from_group, description=description, opts=opts)


def egress_rule(name: str, group_id: pulumi.Input[str], protocol: str, port: int | None, description: str, *,
                to_group: pulumi.Input[str] | None = None, prefix_list: pulumi.Input[str] | None = None,
                opts: pulumi.ResourceOptions | None = None) -> aws.vpc.SecurityGroupEgressRule:
    """One outbound rule of ``group_id`` as its own resource, to a security group or a prefix list (a gateway
    endpoint's): nothing in the platform's network leaves for a CIDR block."""
    return aws.vpc.SecurityGroupEgressRule(
        name, security_group_id=group_id, ip_protocol=protocol, from_port=port, to_port=port,
        referenced_security_group_id=to_group, prefix_list_id=prefix_list, description=description, opts=opts)


@dataclass(frozen=True, slots=True)
class NetworkArgs:
    base_name: str
    region: str
    settings: NetworkSettings
    availability_zones: Sequence[str]  # ``choose_zones``: the zones the subnets go to, one subnet each
    public_subnets: bool = False  # only for an internet-facing load balancer
    # Internet egress for the private subnets: one NAT gateway per zone, in that zone's public subnet (needs
    # ``public_subnets``). The dashboard's tasks reach the API's public endpoint through them (ADR 0012);
    # security groups decide who may use the route (only the dashboard's tasks allow egress beyond the VPC).
    nat_gateways: bool = False


class Network(pulumi.ComponentResource):
    refs: NetworkRefs

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cidr, zones = args.settings.cidr, args.availability_zones
        slices = list(ipaddress.ip_network(cidr).subnets(new_prefix=20))
        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cidr, enable_dns_hostnames=True, enable_dns_support=True,
                          tags={"Name": f"{args.base_name}-vpc"}, opts=child)
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, opts=child)  # no rules: deny all
        if args.nat_gateways and not args.public_subnets:
            raise InfraError("NAT gateways live in public subnets: NetworkArgs.nat_gateways needs public_subnets")
        # One route table per zone: a zone's default route goes to the NAT gateway of the same zone, so a
        # zone's outage leaves the others' egress alone and no traffic crosses zones to leave the VPC.
        private_route_tables: list[aws.ec2.RouteTable] = []
        private_subnet_ids: list[pulumi.Output[str]] = []
        for index, zone in enumerate(zones):
            subnet = aws.ec2.Subnet(f"{name}-private-{index}", vpc_id=vpc.id, cidr_block=str(slices[index]),
                                    availability_zone=zone, map_public_ip_on_launch=False,
                                    tags={"Name": f"{args.base_name}-private-{zone}"}, opts=child)
            route_table = aws.ec2.RouteTable(f"{name}-private-{index}-rt", vpc_id=vpc.id,
                                             tags={"Name": f"{args.base_name}-private-{zone}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{index}-rta", subnet_id=subnet.id,
                                          route_table_id=route_table.id, opts=child)
            private_route_tables.append(route_table)
            private_subnet_ids.append(subnet.id)
        public_subnet_ids: list[pulumi.Output[str]] = []
        if args.public_subnets:
            igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
            public_rt = aws.ec2.RouteTable(f"{name}-public-rt", vpc_id=vpc.id,
                                           routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
                                           tags={"Name": f"{args.base_name}-public"}, opts=child)
            for index, zone in enumerate(zones):
                subnet = aws.ec2.Subnet(f"{name}-public-{index}", vpc_id=vpc.id,
                                        cidr_block=str(slices[8 + index]), availability_zone=zone,
                                        map_public_ip_on_launch=False,
                                        tags={"Name": f"{args.base_name}-public-{zone}"}, opts=child)
                aws.ec2.RouteTableAssociation(f"{name}-public-{index}-rta", subnet_id=subnet.id,
                                              route_table_id=public_rt.id, opts=child)
                public_subnet_ids.append(subnet.id)
                if args.nat_gateways:
                    # A public NAT gateway needs an Elastic IP and a subnet whose default route is the internet
                    # gateway (Amazon VPC user guide, "NAT gateways"); the private subnets of its zone route
                    # 0.0.0.0/0 to it with a route of their own (a Route resource, not an inline route: the
                    # gateway endpoints below add their prefix-list routes to the same table).
                    eip = aws.ec2.Eip(f"{name}-nat-{index}-eip", domain="vpc",
                                      tags={"Name": f"{args.base_name}-nat-{zone}"}, opts=child)
                    nat = aws.ec2.NatGateway(f"{name}-nat-{index}", allocation_id=eip.id,
                                             subnet_id=subnet.id, connectivity_type="public",
                                             tags={"Name": f"{args.base_name}-nat-{zone}"},
                                             opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]))
                    aws.ec2.Route(f"{name}-private-{index}-egress", route_table_id=private_route_tables[index].id,
                                  destination_cidr_block="0.0.0.0/0", nat_gateway_id=nat.id, opts=child)

        # Every rule is its own aws.vpc.SecurityGroupIngressRule / SecurityGroupEgressRule resource and no group
        # declares inline ``ingress``/``egress``: the pulumi-aws docs for aws.ec2.SecurityGroup warn that inline
        # rules and standalone rule resources on one group conflict and overwrite each other (a refresh reads
        # the standalone rules into the inline list, and the next update deletes them). A group created without
        # inline egress has AWS's default allow-all egress rule removed by the provider, so the rules below are
        # all there is.
        compute_sg = aws.ec2.SecurityGroup(f"{name}-compute-sg", vpc_id=vpc.id,
                                           description="DataForge Lambdas, Glue jobs and tasks", opts=child)
        kafka_sg = aws.ec2.SecurityGroup(f"{name}-kafka-sg", vpc_id=vpc.id, description="DataForge MSK brokers",
                                         opts=child)
        endpoint_sg = aws.ec2.SecurityGroup(f"{name}-endpoint-sg", vpc_id=vpc.id,
                                            description="DataForge interface endpoints", opts=child)
        # Glue: a job's connection needs a self-referencing inbound rule for all TCP ports (AWS Glue developer
        # guide, "Setting up a VPC to connect to JDBC data stores"); its workers' traffic to each other needs the
        # matching egress.
        ingress_rule(f"{name}-compute-from-self", compute_sg.id, "-1", None, "Glue workers talk to each other",
                     from_group=compute_sg.id, opts=child)
        egress_rule(f"{name}-compute-to-self", compute_sg.id, "-1", None, "Glue workers", to_group=compute_sg.id,
                    opts=child)
        egress_rule(f"{name}-compute-to-endpoints", compute_sg.id, "tcp", 443, "interface endpoints",
                    to_group=endpoint_sg.id, opts=child)
        egress_rule(f"{name}-compute-to-kafka", compute_sg.id, "tcp", KAFKA_IAM_PORT, "MSK (IAM auth, TLS)",
                    to_group=kafka_sg.id, opts=child)
        ingress_rule(f"{name}-kafka-from-compute", kafka_sg.id, "tcp", KAFKA_IAM_PORT, "clients, IAM auth over TLS",
                     from_group=compute_sg.id, opts=child)
        # The MSK event source mapping's network interfaces take the cluster's subnets and security groups, not
        # the function's (Lambda developer guide, "Creating a Lambda event source mapping for an Amazon MSK event
        # source"): the Kafka group lets itself in and out on the IAM port, and out on 443 to the interface
        # endpoints (STS and Lambda for the pollers, SQS for the on-failure destination: "You must deploy a VPC
        # endpoint for your on-failure destination service inside your Amazon MSK cluster VPC").
        ingress_rule(f"{name}-kafka-from-self", kafka_sg.id, "tcp", KAFKA_IAM_PORT,
                     "event source mapping interfaces", from_group=kafka_sg.id, opts=child)
        egress_rule(f"{name}-kafka-to-self", kafka_sg.id, "tcp", KAFKA_IAM_PORT, "event source mapping to brokers",
                    to_group=kafka_sg.id, opts=child)
        egress_rule(f"{name}-kafka-to-endpoints", kafka_sg.id, "tcp", 443, "interface endpoints (STS, Lambda, SQS)",
                    to_group=endpoint_sg.id, opts=child)
        # The interface endpoints answer HTTPS from anywhere in the VPC: the dashboard's tasks use them too
        # (ECR, logs, SSM), and what may leave each group is decided by that group's egress rules.
        ingress_rule(f"{name}-endpoints-from-vpc", endpoint_sg.id, "tcp", 443, "HTTPS from the VPC", cidr=cidr,
                     opts=child)
        # S3 and DynamoDB gateway endpoints are reached through prefix lists on the route table.
        for service in GATEWAY_ENDPOINTS:
            endpoint = aws.ec2.VpcEndpoint(f"{name}-{service}-endpoint", vpc_id=vpc.id,
                                           service_name=f"com.amazonaws.{args.region}.{service}",
                                           vpc_endpoint_type="Gateway",
                                           route_table_ids=[table.id for table in private_route_tables], opts=child)
            egress_rule(f"{name}-{service}-egress", compute_sg.id, "tcp", 443, f"{service} gateway endpoint",
                        prefix_list=endpoint.prefix_list_id, opts=child)
        for service in INTERFACE_ENDPOINTS:
            aws.ec2.VpcEndpoint(f"{name}-{service.replace('.', '-')}-endpoint", vpc_id=vpc.id,
                                service_name=f"com.amazonaws.{args.region}.{service}",
                                vpc_endpoint_type="Interface", private_dns_enabled=True,
                                subnet_ids=private_subnet_ids, security_group_ids=[endpoint_sg.id], opts=child)
        self.refs = NetworkRefs(vpc_id=vpc.id, private_subnet_ids=tuple(private_subnet_ids),
                                public_subnet_ids=tuple(public_subnet_ids), compute_sg_id=compute_sg.id,
                                kafka_sg_id=kafka_sg.id)
        self.register_outputs({"vpc_id": vpc.id, "private_subnet_ids": private_subnet_ids,
                               "compute_sg_id": compute_sg.id, "kafka_sg_id": kafka_sg.id})
