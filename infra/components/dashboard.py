"""Dashboard: the image repository and the Panel server on ECS Fargate (arm64) behind an internet-facing
ALB with WebSockets and sticky sessions (ADR 0002).

One port, defined here (``CONTAINER_PORT``), reaches every place that names it: the container's ``PORT``
variable (the image's command serves on ``$PORT``), the task's port mapping, the service's load balancer
mapping, the target group, its health check (``traffic-port``) and the security groups. The browser's
origin is the public hostname (``dashboard.domainName``): it is the ``DASHBOARD_ALLOWED_ORIGIN`` the
image's command hands to ``panel serve --allow-websocket-origin``, since Bokeh refuses a WebSocket whose
``Origin`` is not allowed. The tasks run in private subnets and reach the API (a public regional API
Gateway endpoint) through the NAT gateways of ``infra.components.network`` (ADR 0012).

The image is built and pushed outside the program (``make dashboard-image``, docs/dashboard.md) under a
content-derived tag; the repository refuses to overwrite a tag, and the task names the image by the tag
the stack's settings hold (``dashboard.imageTag``, validated in ``infra.settings``).
"""

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

CONTAINER_NAME: Final = "dashboard"
CONTAINER_PORT: Final = 5006
"""The one definition of the dashboard's port (panel serve's default port, too)."""
PORT_VARIABLE: Final = "PORT"
"""What the image's command serves on (``--port "$PORT"`` in panel_dashboard/Dockerfile)."""
ORIGIN_VARIABLE: Final = "DASHBOARD_ALLOWED_ORIGIN"
"""What the image's command allows as WebSocket origin (``--allow-websocket-origin`` in the Dockerfile)."""
HEALTH_PATH: Final = "/liveness"  # panel serve --liveness --liveness-endpoint liveness
HEALTH_MATCHER: Final = "200"
# ECS ignores failing load balancer health checks of a new task for this long ("healthCheckGracePeriodSeconds",
# Amazon ECS API Reference, CreateService). A task pulls the image, starts Python and imports the app before
# it serves (`panel serve --warm` runs the app once before it listens); 0.5 vCPU on arm64 takes tens of
# seconds. Without a grace period the scheduler stops such tasks as unhealthy and the deployment circuit
# breaker rolls the deployment back.
HEALTH_CHECK_GRACE_SECONDS: Final = 180
TLS_POLICY: Final = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# One hour: a browser's WebSocket stays open across the ALB while a user keeps the page open.
IDLE_TIMEOUT_SECONDS: Final = 3600


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
    domain_name: str  # the public hostname browsers open: the allowed WebSocket origin and the URL
    certificate_arn: pulumi.Input[str]  # an ACM certificate for ``domain_name`` in ``region``


def container_environment(args: DashboardArgs) -> dict[str, pulumi.Input[str]]:
    """The task's environment: what the program hands over, plus the port and the allowed origin."""
    return {**args.environment, PORT_VARIABLE: str(CONTAINER_PORT), ORIGIN_VARIABLE: args.domain_name}


class Dashboard(pulumi.ComponentResource):
    url: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    load_balancer_dns_name: pulumi.Output[str]  # the alias record's target (infra.components.dns)
    load_balancer_zone_id: pulumi.Output[str]
    cluster_name: pulumi.Output[str]  # the ECS cluster and service the FIS stop-task template targets
    service_name: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:dashboard:Dashboard", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # IMMUTABLE: a pushed tag can never point at other content (ECR user guide, "Preventing image tags
        # from being overwritten"); scan on push: basic scanning of every pushed image.
        repo = aws.ecr.Repository(f"{name}-repo", name=f"{args.base_name}-dashboard", image_tag_mutability="IMMUTABLE",
                                  image_scanning_configuration={"scan_on_push": True},
                                  encryption_configurations=[{"encryption_type": "KMS", "kms_key": args.kms_key_arn}],
                                  opts=child)
        aws.ecr.LifecyclePolicy(f"{name}-repo-lifecycle", repository=repo.name, policy=pulumi.Output.json_dumps({
            "rules": [{"rulePriority": 1, "description": "keep the last 20 images",
                       "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20},
                       "action": {"type": "expire"}}]}), opts=child)
        self.repository_url = repo.repository_url
        image = pulumi.Output.concat(repo.repository_url, ":", args.settings.image_tag)
        secret_arn: pulumi.Output[str] | None = None
        if args.api_key is not None:
            parameter = aws.ssm.Parameter(f"{name}-api-key", name=f"/{args.base_name}/dashboard/api-key",
                                          type="SecureString", value=args.api_key, key_id=args.kms_key_arn,
                                          opts=child)
            secret_arn = parameter.arn
        alb = self._service(name, args, image, repo.arn, secret_arn)
        self.load_balancer_dns_name = alb.dns_name
        self.load_balancer_zone_id = alb.zone_id
        self.url = pulumi.Output.from_input(f"https://{args.domain_name}")
        self.register_outputs({"url": self.url, "repository_url": self.repository_url,
                               "load_balancer_dns_name": alb.dns_name})

    def _service(self, name: str, args: DashboardArgs, image: pulumi.Output[str], repo_arn: pulumi.Output[str],
                 secret_arn: pulumi.Output[str] | None) -> aws.lb.LoadBalancer:
        child = pulumi.ResourceOptions(parent=self)
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/ecs/{args.base_name}-dashboard",
                                       retention_in_days=args.log_retention_days, opts=child)
        execution_statements = [
            iam.allow(["ecr:GetAuthorizationToken"], ["*"], sid="EcrToken"),
            iam.allow(["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                      [repo_arn], sid="EcrPull"),
            iam.logs_write(logs.arn), iam.kms_use(args.kms_key_arn),
        ]
        if secret_arn is not None:
            execution_statements.append(iam.allow(["ssm:GetParameters"], [secret_arn], sid="ApiKey"))
        execution = iam.service_role(f"{name}-execution-role", ["ecs-tasks.amazonaws.com"], execution_statements,
                                     self, "dashboard task execution")
        # ECS Developer Guide, "Amazon ECS task IAM role": bind the task role to this account's ECS tasks
        # (aws:SourceAccount, aws:SourceArn). The execution role's documented trust names the principal only.
        task_role = iam.service_role(f"{name}-task-role", ["ecs-tasks.amazonaws.com"],
                                     [iam.allow(["cloudwatch:PutMetricData"], ["*"], sid="Metrics")], self,
                                     "dashboard task (calls the API over HTTPS only)",
                                     trust_conditions=iam.confused_deputy(iam.account_of(logs.arn),
                                                                          iam.arn_like(logs.arn, "ecs", "*")))
        cluster = aws.ecs.Cluster(f"{name}-cluster", name=f"{args.base_name}-dashboard",
                                  settings=[{"name": "containerInsights", "value": "enabled"}], opts=child)
        container = {
            "name": CONTAINER_NAME, "image": image, "essential": True,
            "portMappings": [{"containerPort": CONTAINER_PORT, "protocol": "tcp"}],
            "environment": [{"name": k, "value": v} for k, v in sorted(container_environment(args).items())],
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
        # One form for every rule: standalone aws.vpc rules only (pulumi-aws's aws.ec2.SecurityGroup docs warn
        # that inline rules and rule resources on one group overwrite each other, and AWS recommends the
        # aws.vpc resources: one rule per resource, with its own ID and tags). Both groups exist before their
        # rules, so the load balancer's egress and the tasks' ingress can name each other.
        alb_sg = aws.ec2.SecurityGroup(f"{name}-alb-sg", vpc_id=args.network.vpc_id,
                                       description="dashboard load balancer", opts=child)
        task_sg = aws.ec2.SecurityGroup(f"{name}-task-sg", vpc_id=args.network.vpc_id, description="dashboard tasks",
                                        opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-task-ingress", security_group_id=task_sg.id, ip_protocol="tcp",
                                         from_port=CONTAINER_PORT, to_port=CONTAINER_PORT,
                                         referenced_security_group_id=alb_sg.id, description="from the ALB",
                                         opts=child)
        # Egress 443 anywhere: the API's public endpoint through the NAT gateways, and the VPC endpoints.
        aws.vpc.SecurityGroupEgressRule(f"{name}-task-egress", security_group_id=task_sg.id, ip_protocol="tcp",
                                        from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0", description="HTTPS",
                                        opts=child)
        for port in (80, 443):
            aws.vpc.SecurityGroupIngressRule(f"{name}-alb-ingress-{port}", security_group_id=alb_sg.id,
                                             ip_protocol="tcp", from_port=port, to_port=port, cidr_ipv4="0.0.0.0/0",
                                             description=f"HTTP(S) {port}", opts=child)
        aws.vpc.SecurityGroupEgressRule(f"{name}-alb-egress", security_group_id=alb_sg.id, ip_protocol="tcp",
                                        from_port=CONTAINER_PORT, to_port=CONTAINER_PORT,
                                        referenced_security_group_id=task_sg.id, description="to the tasks",
                                        opts=child)
        alb = aws.lb.LoadBalancer(f"{name}-alb", name=f"{args.base_name}-dash"[:32], load_balancer_type="application",
                                  internal=False, security_groups=[alb_sg.id],
                                  subnets=list(args.network.public_subnet_ids),
                                  drop_invalid_header_fields=True, idle_timeout=IDLE_TIMEOUT_SECONDS, opts=child)
        target = aws.lb.TargetGroup(
            f"{name}-targets", name=f"{args.base_name}-dash"[:32], port=CONTAINER_PORT, protocol="HTTP",
            target_type="ip", vpc_id=args.network.vpc_id,
            stickiness={"enabled": True, "type": "lb_cookie", "cookie_duration": 86_400},
            health_check={"path": HEALTH_PATH, "port": "traffic-port", "protocol": "HTTP",
                          "matcher": HEALTH_MATCHER, "interval": 30, "timeout": 5, "healthy_threshold": 2,
                          "unhealthy_threshold": 3}, opts=child)
        aws.lb.Listener(f"{name}-http", load_balancer_arn=alb.arn, port=80, protocol="HTTP",
                        default_actions=[{"type": "redirect", "redirect": {
                            "port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}}], opts=child)
        https = aws.lb.Listener(f"{name}-https", load_balancer_arn=alb.arn, port=443, protocol="HTTPS",
                                ssl_policy=TLS_POLICY, certificate_arn=args.certificate_arn,
                                default_actions=[{"type": "forward", "target_group_arn": target.arn}], opts=child)
        service = aws.ecs.Service(
            f"{name}-service", name=f"{args.base_name}-dashboard", cluster=cluster.arn, task_definition=task.arn,
            desired_count=args.settings.desired_count, launch_type="FARGATE",
            network_configuration={"subnets": list(args.network.private_subnet_ids), "security_groups": [task_sg.id],
                                   "assign_public_ip": False},
            load_balancers=[{"target_group_arn": target.arn, "container_name": CONTAINER_NAME,
                             "container_port": CONTAINER_PORT}],
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[https, *execution.ready, *task_role.ready]))
        self.cluster_name = cluster.name
        self.service_name = service.name
        return alb
