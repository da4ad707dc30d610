"""The compiled fast path of the schema-v1 record validator (Rust; see native/src/lib.rs)."""

from collections.abc import Iterable

class FastPath:
    """Accepts a strict subset of the valid schema-v1 events; ``dataforge.contract.Validator`` decides the rest."""

    def __init__(self, currencies: Iterable[str], countries: Iterable[str]) -> None: ...
    def admit(self, raw: bytes, horizon_us: int, /) -> tuple[bytes, int] | None:
        """``(canonical event id, event time in epoch microseconds)`` of a record that is certainly
        valid with its event time at or before ``horizon_us``; ``None`` for any other record."""
