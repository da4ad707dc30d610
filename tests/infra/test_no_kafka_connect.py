"""No Kafka Connect connector in the program (docs/adr/0013-no-kafka-connect-yet.md): a stack file that
names a connector key is refused with the ADR's path, and no stack renders MSK Connect resources."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra.errors import InfraConfigError
from infra.plan import Rendered
from infra.settings import KAFKA_CONNECT_REFUSED, StackSettings

ROOT = Path(__file__).resolve().parents[2]
ADR = "docs/adr/0013-no-kafka-connect-yet.md"
DASHBOARD = {"dashboard": {"domainName": "dashboard.data.example.org", "hostedZoneName": "data.example.org",
                          "imageTag": "src-" + "0" * 24}}


@pytest.mark.parametrize(("streaming", "keys"), [
    ({"connectors": ["payments-cdc"],
      "connectorPluginArn": "arn:aws:kafkaconnect:us-east-1:123456789012:custom-plugin/debezium/x"},
     "`connectors`, `connectorPluginArn`"),
    ({"connectors": ["payments-cdc"]}, "`connectors`"),
    ({"connectors": []}, "`connectors`"),  # naming the key at all is refused, not only enabling it
    ({"connectors": None}, "`connectors`"),
    ({"connectorPluginArn": "arn:aws:kafkaconnect:us-east-1:123456789012:custom-plugin/debezium/x"},
     "`connectorPluginArn`"),
])
def test_a_stack_file_naming_a_connector_key_is_refused(streaming: dict[str, object], keys: str) -> None:
    with pytest.raises(InfraConfigError, match=re.escape(f"Pulumi.staging.yaml, dataforge:streaming: {keys}: "
                                                         "not a stack setting")) as raised:
        StackSettings.from_mapping("staging", {**DASHBOARD, "streaming": {"mode": "serverless", **streaming}})
    assert ADR in str(raised.value)


def test_the_streaming_section_without_connector_keys_is_accepted() -> None:
    settings = StackSettings.from_mapping("staging", {**DASHBOARD, "streaming": {"mode": "serverless"}})
    assert settings.streaming.mode == "serverless"


def test_the_refusal_points_at_an_adr_that_exists() -> None:
    assert ADR in KAFKA_CONNECT_REFUSED
    text = (ROOT / ADR).read_text()
    assert text.startswith("# ADR 0013")


def test_no_stack_declares_msk_connect(stack: Rendered) -> None:
    """No connector, custom plugin or worker configuration, and no role MSK Connect may assume."""
    assert not [r.address for r in stack.resources if r.type.startswith("aws:mskconnect/")]
    for role in stack.of_type("aws:iam/role:Role"):
        assert "kafkaconnect.amazonaws.com" not in json.dumps(json.loads(role.inputs["assumeRolePolicy"])), role.address
    assert not (ROOT / "infra" / "connectors").exists()
