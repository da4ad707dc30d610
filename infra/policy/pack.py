"""The policy rules of ``checks`` as a Pulumi policy pack (``pulumi preview --policy-pack infra/policy``).

``pulumi_policy`` is imported only here, when the pack is built, so the rules themselves (and the
tests that run them on rendered stacks) need nothing beyond the program's own dependencies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infra.errors import InfraError
from infra.policy.checks import RULES, StackView


@dataclass(frozen=True, slots=True)
class PolicyResourceView:
    """A ``pulumi_policy.PolicyResource`` seen through the ``ResourceView`` protocol."""

    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool
    urn: str


def _stack_of(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<type>::<name>
    return urn.split(":", 2)[2].split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""


def validator(rule: str) -> Callable[[Any, Callable[[str, str | None], None]], None]:
    """The ``validate`` callback of one rule's ``StackValidationPolicy``."""
    check = RULES[rule][0]

    def validate(args: Any, report_violation: Callable[[str, str | None], None]) -> None:
        views = [PolicyResourceView(type=r.resource_type, name=r.name, inputs=dict(r.props),
                                    protect=bool(getattr(r.opts, "protect", False)), urn=r.urn)
                 for r in args.resources]
        stack = _stack_of(views[0].urn) if views else ""
        by_address = {f"{v.type}::{v.name}": v.urn for v in views}
        for violation in check(StackView(stack, views)):
            report_violation(violation.message, by_address.get(violation.resource))

    return validate


def _pulumi_policy() -> Any:
    try:
        import pulumi_policy  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:  # depends on the optional dependency
        raise InfraError("the policy pack needs the pulumi-policy package (pip install pulumi-policy)") from exc
    return pulumi_policy


def policies() -> list[Any]:
    """One ``StackValidationPolicy`` per rule of ``checks.RULES``."""
    pulumi_policy = _pulumi_policy()
    return [pulumi_policy.StackValidationPolicy(name=rule, description=description, validate=validator(rule))
            for rule, (_, description) in RULES.items()]


def build_pack(name: str = "dataforge") -> Any:
    """Build AND serve the pack: ``PolicyPack`` starts the analyzer the Pulumi engine connects to,
    so only the pack's entry point (``__main__``) calls this."""
    pulumi_policy = _pulumi_policy()
    return pulumi_policy.PolicyPack(name=name, enforcement_level=pulumi_policy.EnforcementLevel.MANDATORY,
                                    policies=policies())
