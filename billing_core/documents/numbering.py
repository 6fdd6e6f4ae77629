"""Document numbers and draft references.

Legal numbers come from gapless series, one per document kind and year (of the issue
date), formatted by the catalog's settings (`INV-{year}-{seq:06d}` -> INV-2026-000123).
Drafts carry a reference instead, stable across re-runs: DRAFT-202610-<12 hex digits>.
"""

from __future__ import annotations

import hashlib


def series(kind: str, year: int) -> str:
    """The series a document of `kind` issued in `year` takes its number from."""
    return f"{kind}:{year}"


def format_number(pattern: str, year: int, sequence: int) -> str:
    return pattern.format(year=year, seq=sequence)


def draft_reference(period: str, subscription_id: str, generation: int) -> str:
    digest = hashlib.blake2b(f"{subscription_id}\x00{generation}".encode(),
                             digest_size=6).hexdigest().upper()
    return f"DRAFT-{period.replace('-', '')}-{digest}"
