"""Dashboard: the image repository and the Panel server, hosted on ECS Fargate behind an ALB
(WebSockets, sticky sessions; the default) or on App Runner (ADR 0002)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws

from dataforge import envvars
from infra import iam
from infra.refs import NetworkRefs
from infra.settings import DashboardSettings

PANEL_PORT: Final = 5006
HEALTH_PATH: Final = "/liveness"
TLS_POLICY: Final = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True, slots=True)
class DashboardArgs:
    base_name: str
    region: str
    settings: DashboardSettings
    environment: Mapping[str, pulumi.Input[str]]
    api_key: pulumi.Input[str] | None  # kept in an SSM SecureString, handed to the container as a secret
    network: NetworkRefs
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int


class Dashboard(pulumi.ComponentResource):
    url: pulumi.Output[str]
    repository_url: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:dashboard:Dashboard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repo = aws.ecr.Repository(f"{name}-repo", name=f"{args.base_name}-dashboard", image_tag_mutability="MUTABLE",
                                  image_scanning_configuration={"scan_on_push": True},
                                  encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
                                  opts=child)
        aws.ecr.LifecyclePolicy(f"{name}-repo-lifecycle", repository=repo.name, policy=pulumi.Output.json_dumps({
            "rules": [{"rulePriority": 1, "description": "keep the last 20 images",
                       "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
                       "action": {"type": "expire"}}]}), opts=child)
        image = pulumi.Output.concat(repo.repository_url, ":", args.settings.image_tag)
        self.repository_url = repo.repository_url
        secret_arn: pulumi.Output[str] | None = None
        if args.api_key is not None:
            parameter = aws.ssm.Parameter(f"{name}-api-key", name=f"/{args.base_name}/dashboard/api-key",
                                          type="SecureString", value=args.api_key, key_id=args.kms_key_arn,
                                          opts=child)
            secret_arn = parameter.arn
        if args.settings.hosting == "ecs":
            self.url = self._ecs(name, args, image, secret_arn)
        else:
            self.url = self._apprunner(name, args, image, repo.arn, secret_arn)
        self.register_outputs({"url": self.url, "repository_url": self.repository_url})

    def _ecs(self, name: str, args: DashboardArgs, image: pulumi.Output[str],
             secret_arn: pulumi.Output[str] | None) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/ecs/{args.base_name}-dashboard",
                                       retention_in_days=args.log_retention_days, opts=child)
        execution_statements = [
            iam.allow(["ecr:GetAuthorizationToken"], ["*"], sid="EcrToken"),
            iam.allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                      [pulumi.Output.concat("arn:aws:ecr:", args.region, ":*:repository/", args.base_name,
                                            "-dashboard")], sid="EcrPull"),
            iam.logs_write(logs.arn), iam.kms_use(args.kms_key_arn),
        ]
        if secret_arn is not None:
            execution_statements.append(iam.allow(["ssm:GetParameters"], [secret_arn], sid="ApiKey"))
        execution = iam.role(f"{name}-execution-role", ["ecs-tasks.amazonaws.com"], execution_statements, self,
                             "dashboard task execution")
        task_role = iam.role(f"{name}-task-role", ["ecs-tasks.amazonaws.com"],
                             [iam.allow(["cloudwatch:PutMetricData"], ["*"], sid="Metrics")], self,
                             "dashboard task (calls the API over HTTPS only)")
        cluster = aws.ecs.Cluster(f"{name}-cluster", name=f"{args.base_name}-dashboard",
                                  settings=[{"name": "containerInsights", "value": "enabled"}], opts=child)
        container = {
            "name": "dashboard", "image": image, "essential": True,
            "portMappings": [{"containerPort": PANEL_PORT, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(args.environment.items())],
            "secrets": [{"name": envvars.API_KEY, "valueFrom": secret_arn}] if secret_arn is not None else [],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": logs.name, "awslogs-region": args.region, "awslogs-stream-prefix": "dashboard"}},
            "readonlyRootFilesystem": False,
        }
        task = aws.ecs.TaskDefinition(
            f"{name}-task", family=f"{args.base_name}-dashboard", cpu=str(args.settings.cpu),
            memory=str(args.settings.memory_mb),
            network_mode="awsvpc", requires_compatibilities=["FARGATE"], execution_role_arn=execution.arn,
            task_role_arn=task_role.arn, container_definitions=pulumi.Output.json_dumps([container]),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "ARM64"}, opts=child)
        alb_sg = aws.ec2.SecurityGroup(f"{name}-alb-sg", vpc_id=args.network.vpc_id,
                                       description="dashboard load balancer",
                                       ingress=[{"protocol": "tcp", "from_port": port, "to_port": port,
                                                 "cidr_blocks": ["0.0.0.0/0"], "description": f"HTTP(S) {port}"}
                                                for port in (80, 443)], opts=child)
        task_sg = aws.ec2.SecurityGroup(f"{name}-task-sg", vpc_id=args.network.vpc_id, description="dashboard tasks",
                                        ingress=[{"protocol": "tcp", "from_port": PANEL_PORT, "to_port": PANEL_PORT,
                                                  "security_groups": [alb_sg.id], "description": "from the ALB"}],
                                        egress=[{"protocol": "tcp", "from_port": 443, "to_port": 443,
                                                 "cidr_blocks": ["0.0.0.0/0"], "description": "HTTPS"}], opts=child)
        aws.ec2.SecurityGroupRule(f"{name}-alb-egress", type="egress", protocol="tcp", from_port=PANEL_PORT,
                                  to_port=PANEL_PORT, security_group_id=alb_sg.id,
                                  source_security_group_id=task_sg.id, description="to the tasks", opts=child)
        alb = aws.lb.LoadBalancer(f"{name}-alb", name=f"{args.base_name}-dash"[:32], load_balancer_type="application",
                                  internal=False, security_groups=[alb_sg.id],
                                  subnets=list(args.network.public_subnet_ids),
                                  drop_invalid_header_fields=True, idle_timeout=3600, opts=child)
        target = aws.lb.TargetGroup(
            f"{name}-targets", name=f"{args.base_name}-dash"[:32], port=PANEL_PORT, protocol="HTTP",
            target_type="ip", vpc_id=args.network.vpc_id,
            stickiness={"enabled": True, "type": "lb_cookie", "cookie_duration": 86_400},
            health_check={"path": HEALTH_PATH, "matcher": "200", "interval": 30}, opts=child)
        aws.lb.Listener(f"{name}-http", load_balancer_arn=alb.arn, port=80, protocol="HTTP",
                        default_actions=[{"type": "redirect", "redirect": {
                            "port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}}], opts=child)
        https = aws.lb.Listener(f"{name}-https", load_balancer_arn=alb.arn, port=443, protocol="HTTPS",
                                ssl_policy=TLS_POLICY, certificate_arn=args.settings.certificate_arn,
                                default_actions=[{"type": "forward", "target_group_arn": target.arn}], opts=child)
        aws.ecs.Service(
            f"{name}-service", name=f"{args.base_name}-dashboard", cluster=cluster.arn, task_definition=task.arn,
            desired_count=args.settings.desired_count, launch_type="FARGATE",
            network_configuration={"subnets": list(args.network.private_subnet_ids), "security_groups": [task_sg.id],
                                   "assign_public_ip": False},
            load_balancers=[{"target_group_arn": target.arn, "container_name": "dashboard",
                             "container_port": PANEL_PORT}],
            deployment_circuit_breaker={"enable": True, "rollback": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[https]))
        return pulumi.Output.concat("https://", alb.dns_name)

    def _apprunner(self, name: str, args: DashboardArgs, image: pulumi.Output[str],
                   repo_arn: pulumi.Output[str], secret_arn: pulumi.Output[str] | None) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        access = iam.role(f"{name}-ecr-access-role", ["build.apprunner.amazonaws.com"], [
            iam.allow(["ecr:GetAuthorizationToken"], ["*"], sid="EcrToken"),
            iam.allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                       "ecr:DescribeImages"], [repo_arn], sid="EcrPull"),
        ], self, "App Runner image pull")
        instance_statements = [iam.allow(["cloudwatch:PutMetricData"], ["*"], sid="Metrics"),
                               iam.kms_use(args.kms_key_arn)]
        secrets: dict[str, pulumi.Input[str]] = {}
        if secret_arn is not None:
            instance_statements.append(iam.allow(["ssm:GetParameters"], [secret_arn], sid="ApiKey"))
            secrets[envvars.API_KEY] = secret_arn
        instance = iam.role(f"{name}-instance-role", ["tasks.apprunner.amazonaws.com"], instance_statements, self,
                            "dashboard instance")
        service = aws.apprunner.Service(
            f"{name}-service", service_name=f"{args.base_name}-dashboard",
            source_configuration={
                "authentication_configuration": {"access_role_arn": access.arn},
                "auto_deployments_enabled": False,
                "image_repository": {"image_identifier": image, "image_repository_type": "ECR",
                                     "image_configuration": {"port": str(PANEL_PORT),
                                                             "runtime_environment_variables": dict(
                                                                 sorted(args.environment.items())),
                                                             "runtime_environment_secrets": secrets}},
            },
            instance_configuration={"cpu": str(args.settings.cpu), "memory": str(args.settings.memory_mb),
                                    "instance_role_arn": instance.arn},
            encryption_configuration={"kms_key": args.kms_key_arn},
            health_check_configuration={"protocol": "HTTP", "path": HEALTH_PATH},
            opts=child)
        return pulumi.Output.concat("https://", service.service_url)
