"""Seed inputs for the fuzz targets: written into the corpus directories libFuzzer is given."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def seed_corpus(argv: list[str], seeds: Iterable[bytes]) -> None:
    """Write ``seeds`` (raw mode: a ``\\x00`` byte first) into the corpus directories named on the command
    line, as ``seed-NNN`` files; an existing seed file is kept."""
    directories = [Path(arg) for arg in argv[1:] if not arg.startswith("-") and Path(arg).is_dir()]
    for directory in directories:
        for n, raw in enumerate(seeds):
            seed = directory / f"seed-{n:03d}"
            if not seed.exists():
                seed.write_bytes(b"\x00" + raw)
