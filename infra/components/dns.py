"""DNS and TLS for the dashboard's hostname: the public hosted zone that holds it, the ACM certificate
the load balancer's HTTPS listener presents, and the alias record that points the name at the load
balancer.

The certificate is either requested by the program and validated through DNS (``dashboard.domainName``
+ ``dashboard.hostedZoneName`` or ``dashboard.hostedZoneId``) or an existing one named by the stack
(``dashboard.certificateArn``); ``StackSettings._check_dashboard_tls`` refuses a stack with neither.
``hosted_zone`` looks the zone up when the program starts, so a zone the account does not have, a
private zone or a hostname outside the zone fail ``pulumi preview`` before anything is created.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pulumi
import pulumi_aws as aws
from pulumi_aws.acm.outputs import CertificateDomainValidationOption

from infra.errors import InfraConfigError, InfraError
from infra.settings import NAMESPACE, StackSettings, in_zone

VALIDATION_TTL: Final = 60  # seconds: a corrected validation record reaches ACM's resolvers within a minute


@dataclass(frozen=True, slots=True)
class HostedZone:
    zone_id: str
    name: str  # without the trailing dot


def hosted_zone(s: StackSettings) -> HostedZone | None:
    """The public Route 53 hosted zone configured for the dashboard's hostname (None when the stack names an
    existing certificate and no zone): looked up by name among the account's public zones, or by id."""
    d = s.dashboard
    if not (d.hosted_zone_name or d.hosted_zone_id):
        return None
    if d.hosted_zone_id:
        found = aws.route53.get_zone(zone_id=d.hosted_zone_id)
        key = "dashboard.hostedZoneId"
    else:
        found = aws.route53.get_zone(name=d.hosted_zone_name, private_zone=False)
        key = "dashboard.hostedZoneName"
    name = found.name.rstrip(".").lower()
    where = f"Pulumi.{s.env}.yaml, {NAMESPACE}:{key}"
    if found.private_zone:
        raise InfraConfigError(f"{where}: {name} ({found.zone_id}) is a private hosted zone; ACM validates the "
                               "certificate and browsers resolve the dashboard through public DNS")
    if not in_zone(d.domain_name, name):
        raise InfraConfigError(f"{where}: dashboard.domainName {d.domain_name!r} is not in the zone {name!r} "
                               f"({found.zone_id})")
    return HostedZone(zone_id=found.zone_id, name=name)


def validation_record(options: Sequence[CertificateDomainValidationOption], domain: str) -> tuple[str, str, str]:
    """The (name, type, value) of the DNS record ACM asks for to validate ``domain``."""
    for option in options:
        if option.domain_name == domain and option.resource_record_name and option.resource_record_value:
            return option.resource_record_name, option.resource_record_type or "CNAME", option.resource_record_value
    raise InfraError(f"ACM lists no DNS validation record for {domain}")


@dataclass(frozen=True, slots=True)
class CertificateArgs:
    domain_name: str
    zone: HostedZone | None  # where the validation record goes (required when a certificate is requested)
    certificate_arn: str = ""  # an existing certificate for ``domain_name``: nothing is requested


class DashboardCertificate(pulumi.ComponentResource):
    """The certificate for the dashboard's hostname. ``certificate_arn`` resolves only once ACM has issued
    a requested certificate (``aws.acm.CertificateValidation`` waits for it), so the HTTPS listener that
    takes it is created after the certificate is valid."""

    certificate_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CertificateArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:dns:DashboardCertificate", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if args.certificate_arn:
            self.certificate_arn = pulumi.Output.from_input(args.certificate_arn)
            self.register_outputs({"certificate_arn": self.certificate_arn})
            return
        zone = args.zone
        if zone is None:
            raise InfraError("a certificate the program requests needs the hosted zone of its validation record")
        certificate = aws.acm.Certificate(f"{name}-cert", domain_name=args.domain_name, validation_method="DNS",
                                          opts=child)
        # One validation record per domain of the certificate (its domain_validation_options), here the one
        # hostname; the count is known before the certificate exists, so no resource is made inside an apply.
        records = []
        for index, domain in enumerate((args.domain_name,)):
            record = certificate.domain_validation_options.apply(functools.partial(validation_record, domain=domain))
            records.append(aws.route53.Record(
                f"{name}-validation-{index}", zone_id=zone.zone_id,
                name=record.apply(lambda r: r[0]), type=record.apply(lambda r: r[1]),
                records=[record.apply(lambda r: r[2])],
                # ACM derives the CNAME's name and value from the domain and the account, the same for every
                # certificate of that domain in the account: a record an earlier certificate left is taken
                # over (a replacement certificate is created before the old one is deleted).
                ttl=VALIDATION_TTL, allow_overwrite=True, opts=child))
        validation = aws.acm.CertificateValidation(
            f"{name}-validation", certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn for record in records], opts=child)
        self.certificate_arn = validation.certificate_arn
        self.register_outputs({"certificate_arn": self.certificate_arn})


@dataclass(frozen=True, slots=True)
class AliasArgs:
    zone: HostedZone
    domain_name: str
    target_dns_name: pulumi.Input[str]  # the load balancer's DNS name
    target_zone_id: pulumi.Input[str]  # the load balancer's canonical hosted zone (per region, from ELB)


class DashboardAlias(pulumi.ComponentResource):
    """``domain_name`` as an alias A record of the load balancer (Route 53 answers with the load balancer's
    current addresses and follows its health). Only A: the load balancer is IPv4-only (the VPC has no IPv6
    block), and an AAAA alias belongs next to a ``dualstack`` load balancer."""

    fqdn: pulumi.Output[str]

    def __init__(self, name: str, args: AliasArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataforge:dns:DashboardAlias", name, None, opts)
        record = aws.route53.Record(
            f"{name}-a", zone_id=args.zone.zone_id, name=args.domain_name, type="A",
            aliases=[{"name": args.target_dns_name, "zone_id": args.target_zone_id, "evaluate_target_health": True}],
            opts=pulumi.ResourceOptions(parent=self))
        self.fqdn = record.fqdn
        self.register_outputs({"fqdn": self.fqdn})
