"""Limits on what one caller may hand the engine: attribute values and counts, text, metadata.

Each limit is a setting (``CHAMELEON_MAX_*``); input over one raises ``LimitExceededError``
(HTTP 413) naming the setting, before anything is written. Sizes are measured as compact
JSON in UTF-8, which is close to what the ledger stores; a value that is not JSON is left
to the ledger's own validation, which names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from chameleon_workflow.config import Settings
from chameleon_workflow.errors import LimitExceededError


def json_size(value: Any) -> int | None:
    """Return the size of ``value`` as compact UTF-8 JSON, or None when it is not JSON."""
    try:
        return len(orjson.dumps(value))
    except (orjson.JSONEncodeError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class Limits:
    """The input limits of one engine, read from its settings."""

    attribute_value_bytes: int
    attributes_per_uow: int
    reasoning_chars: int
    metadata_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """Read the limits from ``settings``."""
        return cls(
            settings.max_attribute_value_bytes,
            settings.max_attributes_per_uow,
            settings.max_reasoning_chars,
            settings.max_metadata_bytes,
        )

    def check_attributes(self, attributes: Mapping[str, Any] | None) -> None:
        """Refuse an update with too many keys or a value too large."""
        if not attributes:
            return
        self.check_attribute_count(len(attributes))
        for key, value in attributes.items():
            size = json_size(value)
            if size is not None and size > self.attribute_value_bytes:
                raise LimitExceededError(
                    f"attribute {str(key)[:100]!r} is {size} bytes as JSON; the limit is "
                    f"{self.attribute_value_bytes} (CHAMELEON_MAX_ATTRIBUTE_VALUE_BYTES)"
                )

    def check_attribute_count(self, count: int) -> None:
        """Refuse a UOW (or an update) with more attributes than allowed."""
        if count > self.attributes_per_uow:
            raise LimitExceededError(
                f"{count} attributes; the limit is {self.attributes_per_uow} per unit of work "
                "(CHAMELEON_MAX_ATTRIBUTES_PER_UOW)"
            )

    def check_reasoning(self, text: str | None, what: str = "reasoning") -> None:
        """Refuse a reasoning (or a failure reason) longer than allowed."""
        if text is not None and len(text) > self.reasoning_chars:
            raise LimitExceededError(
                f"{what} is {len(text)} characters; the limit is {self.reasoning_chars} "
                "(CHAMELEON_MAX_REASONING_CHARS)"
            )

    def check_metadata(self, value: Any, what: str) -> None:
        """Refuse a metadata document (e.g. an actor's capabilities) larger than allowed."""
        size = json_size(value)
        if size is not None and size > self.metadata_bytes:
            raise LimitExceededError(
                f"{what} is {size} bytes as JSON; the limit is {self.metadata_bytes} "
                "(CHAMELEON_MAX_METADATA_BYTES)"
            )
