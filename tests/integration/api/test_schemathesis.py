"""Property-based run over the OpenAPI document against the API served locally (threaded server):
zero server errors, zero responses outside the documented statuses, schemas and content types."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.api import API_KEY

pytestmark = pytest.mark.integration
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _document() -> Any:
    from chalicelib.openapi import document

    return document()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case: Any, served_api: str) -> None:
    case.call_and_validate(base_url=served_api, headers={"x-api-key": API_KEY}, checks=CHECKS, timeout=30)
