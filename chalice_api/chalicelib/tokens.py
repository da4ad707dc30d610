"""Opaque pagination tokens: urlsafe base64 of a small JSON document bound to the query it pages.

A token carries the DynamoDB ``LastEvaluatedKey`` (string attributes only) and, for reads spanning
several partitions, the partition index. It is bound to a fingerprint of the request's parameters,
so a token replayed on another query is a 400, never a read of other keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import BadRequestError

_MAX_TOKEN_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Cursor:
    partition: int
    key: dict[str, str] | None  # LastEvaluatedKey, plain strings


def fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:16]


def encode(cursor: Cursor, query: str) -> str:
    doc = {"q": query, "p": cursor.partition, "k": cursor.key}
    return base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(token: str | None, query: str, *, key_names: frozenset[str]) -> Cursor | None:
    if token is None:
        return None
    bad = BadRequestError("invalid_token", "next_token is not a token returned by this query; start again without it")
    if len(token) > _MAX_TOKEN_CHARS:
        raise bad
    try:
        doc: Any = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(doc, dict) or doc.get("q") != query or set(doc) != {"q", "p", "k"}:
        raise bad
    partition, key = doc["p"], doc["k"]
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        raise bad
    if key is not None and (
        not isinstance(key, dict) or set(key) - key_names or not all(isinstance(v, str) for v in key.values())
    ):
        raise bad
    return Cursor(partition, key)
