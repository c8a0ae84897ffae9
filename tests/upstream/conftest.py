from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.upstream.server import Upstream

ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def chat_body(content: str = "Reset my password", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


def message_body(content: str = "Reset my password", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


@pytest.fixture
async def up() -> AsyncIterator[Upstream]:
    async with Upstream() as server:
        yield server


@pytest.fixture
async def openai_http(up: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer sk-test"}
    async with httpx.AsyncClient(base_url=up.openai_base, headers=headers) as client:
        yield client


@pytest.fixture
async def anthropic_http(up: Upstream) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=up.anthropic_base, headers=ANTHROPIC_HEADERS) as client:
        yield client
