"""Central tagging: one stack transform adds the stack's tags to every taggable AWS resource.

Whether a resource type takes tags is read from pulumi-aws itself (its ``*Args`` class has a
``tags`` parameter), so the rule needs no hand-kept list; ``is_taggable`` is also what the
required-tags policy check uses.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Mapping

import pulumi

_MODULE_ALIASES = {"lambda": "lambda_"}


@functools.cache
def is_taggable(type_token: str) -> bool:
    """True when ``aws:<module>/<x>:<Class>`` accepts a ``tags`` input."""
    try:
        package, middle, cls_name = type_token.split(":")
    except ValueError:
        return False
    if package != "aws":
        return False
    module = middle.split("/")[0]
    try:
        mod = importlib.import_module(f"pulumi_aws.{_MODULE_ALIASES.get(module, module)}")
        args_cls = getattr(mod, f"{cls_name}Args")
    except (ImportError, AttributeError):
        return False
    return "tags" in inspect.signature(args_cls.__init__).parameters


def tag_transform(tags: Mapping[str, str]) -> pulumi.ResourceTransform:
    """A resource transform merging ``tags`` under each taggable resource's own tags."""
    fixed = dict(sorted(tags.items()))

    def transform(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if not args.custom or not is_taggable(args.type_):
            return None
        own = args.props.get("tags")
        props = dict(args.props)
        props["tags"] = {**fixed, **(dict(own) if isinstance(own, dict) else {})}
        return pulumi.ResourceTransformResult(props=props, opts=args.opts)

    return transform


def register(tags: Mapping[str, str]) -> None:
    pulumi.runtime.register_resource_transform(tag_transform(tags))
