"""The names of the custom CloudWatch metrics the deployables emit and the stacks' alarms watch.

One definition for both sides of the contract: the landing Lambdas emit these (CloudWatch embedded
metric format, ``lambdas.common.observability``) and ``infra.components.observability`` declares the
alarms and the dashboard on them. The rehearsal's alarm test (tests/rehearsal/test_alarms.py) compares
what the functions print with what the alarms name.
"""

from __future__ import annotations

from typing import Final

METRICS_NAMESPACE: Final = "DataForge"
"""The namespace of every custom metric."""
FUNCTION_NAME_DIMENSION: Final = "FunctionName"
"""The default dimension every Lambda metric carries: the function's name (``AWS_LAMBDA_FUNCTION_NAME``)."""
FRESHNESS_METRIC: Final = "FreshnessLagSeconds"
"""Seconds from the newest event time of a landed MSK batch to its landing (the data-freshness alarm)."""
