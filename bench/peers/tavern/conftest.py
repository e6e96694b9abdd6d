"""Fixtures of the Tavern peer: the idempotency key, fresh for each run."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def idempotency_key() -> str:
    """An RFC 8941 sf-string key, as the plugin's retry_safe check sends it."""
    return f'"{uuid.uuid4()}"'
