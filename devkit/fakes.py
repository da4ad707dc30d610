"""Stand-ins for what AWS hands a runtime, shared by the embedded platform, the tests and the benches."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Final

LOCAL_ACCOUNT_ID: Final = "000000000000"
"""The account id moto and the embedded platform use in ARNs."""


@dataclass(frozen=True, slots=True)
class LambdaContext:
    """The attributes of a Lambda context object that handlers and Powertools read; each instance is
    one invocation (a fresh request id)."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{LOCAL_ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000
