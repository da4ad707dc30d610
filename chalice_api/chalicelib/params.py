"""Parsing of untrusted request input (query strings, JSON bodies) into typed values, or a 400."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from chalicelib.errors import BadRequestError

KEY_ID: Final = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # ids inside DynamoDB keys: no '#'


def _raw(params: Mapping[str, str] | None, name: str) -> str | None:
    value = (params or {}).get(name)
    return None if value is None else value


def required_date(params: Mapping[str, str] | None, name: str) -> date:
    value = optional_date(params, name)
    if value is None:
        raise BadRequestError("missing_parameter", f"query parameter {name!r} is required (YYYY-MM-DD)")
    return value


def optional_date(params: Mapping[str, str] | None, name: str) -> date | None:
    raw = _raw(params, name)
    if raw is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        raise BadRequestError("invalid_parameter", f"{name} must be a date as YYYY-MM-DD, got {raw[:40]!r}")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequestError("invalid_parameter", f"{name} is not a valid calendar date: {raw!r}") from None


def integer(params: Mapping[str, str] | None, name: str, *, default: int, low: int, high: int) -> int:
    raw = _raw(params, name)
    if raw is None:
        return default
    if not re.fullmatch(r"[+-]?\d{1,9}", raw.strip()):
        raise BadRequestError("invalid_parameter", f"{name} must be an integer from {low} to {high}, got {raw[:40]!r}")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequestError("invalid_parameter", f"{name} must be from {low} to {high}, got {value}")
    return value


def key_part(params: Mapping[str, str] | None, name: str) -> str | None:
    """An identifier used inside a DynamoDB key (merchant id, country, channel)."""
    raw = _raw(params, name)
    if raw is None:
        return None
    if not KEY_ID.fullmatch(raw):
        raise BadRequestError(
            "invalid_parameter", f"{name} must be 1-64 letters, digits or _.:- characters, got {raw[:40]!r}"
        )
    return raw


def choice(params: Mapping[str, str] | None, name: str, options: tuple[str, ...], default: str) -> str:
    raw = _raw(params, name)
    if raw is None:
        return default
    if raw not in options:
        raise BadRequestError("invalid_parameter", f"{name} must be one of {', '.join(options)}, got {raw[:40]!r}")
    return raw


def optional_str(params: Mapping[str, str] | None, name: str, *, max_len: int = 4096) -> str | None:
    raw = _raw(params, name)
    if raw is not None and not 0 < len(raw) <= max_len:
        raise BadRequestError("invalid_parameter", f"{name} must be 1-{max_len} characters")
    return raw


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequestError("invalid_body", "the request body must be a JSON object")
    return body


def body_str(body: Mapping[str, Any], name: str, *, required: bool, max_len: int) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise BadRequestError("invalid_body", f"field {name!r} is required (a non-empty string)")
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequestError("invalid_body", f"field {name!r} must be a non-empty string")
    if len(value) > max_len:
        raise BadRequestError("invalid_body", f"field {name!r} is longer than {max_len} characters")
    return value
