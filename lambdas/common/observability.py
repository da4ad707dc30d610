"""Powertools logger and metrics of the landing Lambdas (structured JSON logs, CloudWatch EMF).

Every metric carries Powertools' ``service`` dimension and a ``FunctionName`` default dimension (the
name Lambda sets in ``AWS_LAMBDA_FUNCTION_NAME``), so the same metric of two stacks in one account
stays apart. The alarms in ``infra/components/observability.py`` name exactly these dimensions; the
rehearsal's alarm test (tests/rehearsal/test_alarms.py) compares them with what each function prints.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

from dataforge.telemetry import FUNCTION_NAME_DIMENSION, METRICS_NAMESPACE


def logger(service: str) -> Logger:
    return Logger(service=service)


def metrics(service: str) -> Metrics:
    emitter = Metrics(namespace=METRICS_NAMESPACE, service=service)
    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")  # set by Lambda; absent in unit tests
    if function_name:
        emitter.set_default_dimensions(**{FUNCTION_NAME_DIMENSION: function_name})
    return emitter
