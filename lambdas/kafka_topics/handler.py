"""kafka-topics (Lambda, run by the stack's ``aws.lambda_.Invocation``): the declared topics -> the cluster.

Thin: parse the payload ``{"topics": [{name, partitions, configs}, ...]}``, connect with the
environment's bootstrap brokers and auth mode, ``reconcile`` each topic, return what was done. A refused
change (fewer partitions, a create-only config) raises: the invocation fails, and with it the deployment.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.common.kafka_topics import TopicsConfig, kafka_admin, parse_payload, reconcile
from lambdas.common.observability import logger as make_logger

SERVICE = "kafka-topics"
logger = make_logger(SERVICE)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    specs = parse_payload(event)
    config = TopicsConfig.from_env(os.environ)
    with kafka_admin(config) as admin:
        outcomes = [reconcile(admin, spec).as_dict() for spec in specs]
    logger.info("topics reconciled", extra={"topics": outcomes, "auth": config.auth})
    return {"topics": outcomes, "changed": any(o["changed"] for o in outcomes)}
