"""PLACEHOLDER until the offline tokenizer lands (branch gw-litellm): rough counts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def count_text(text: str, *, provider: str, model: str) -> int:
    return max(1, len(text) // 4) if text else 0


def count_chat(
    messages: Sequence[Mapping[str, Any]],
    *,
    provider: str,
    model: str,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    total = 3
    for message in messages:
        total += 3 + count_text(json.dumps(message.get("content")), provider=provider, model=model)
    if tools:
        total += count_text(json.dumps(tools), provider=provider, model=model)
    return total


def count_embedding_input(value: Any, *, provider: str, model: str) -> int:
    if isinstance(value, str):
        return count_text(value, provider=provider, model=model)
    total = 0
    for item in value:
        if isinstance(item, int):
            total += 1
        elif isinstance(item, str):
            total += count_text(item, provider=provider, model=model)
        else:
            total += len(item)
    return total
