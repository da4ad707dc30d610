"""Powertools logger and metrics of the landing Lambdas (structured JSON logs, CloudWatch EMF)."""

from __future__ import annotations

from typing import Final

from aws_lambda_powertools import Logger, Metrics

NAMESPACE: Final = "DataForge"


def logger(service: str) -> Logger:
    return Logger(service=service)


def metrics(service: str) -> Metrics:
    return Metrics(namespace=NAMESPACE, service=service)
