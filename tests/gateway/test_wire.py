"""The OpenAI wire helpers: request bodies as sent upstream, usage as reported back."""

from __future__ import annotations

from typing import Any

import pytest

from deskpilot.gateway import Deployment, Usage
from deskpilot.gateway.providers.openai_wire import (
    chat_payload,
    parse_usage,
    reported_usage,
    stream_payload,
)

DEPLOYMENT = Deployment(name="d", model="gpt-4o", api_base="http://u.test/v1")


def test_stream_options_are_merged_and_the_callers_wish_remembered() -> None:
    given = {"model": "x", "messages": [], "stream_options": {"include_usage": False, "v": 1}}
    payload, wants_usage = stream_payload(given, DEPLOYMENT)
    assert payload["stream_options"] == {"include_usage": True, "v": 1}
    assert payload["stream"] is True
    assert payload["model"] == "gpt-4o"
    assert not wants_usage
    assert given["stream_options"] == {"include_usage": False, "v": 1}  # not mutated
    assert stream_payload({"stream_options": {"include_usage": True}}, DEPLOYMENT)[1]


def test_chat_drops_the_streaming_switches_only() -> None:
    body = {"model": "x", "stream": True, "stream_options": {}, "seed": 1, "stop": None}
    assert chat_payload(body, DEPLOYMENT) == {"model": "gpt-4o", "seed": 1, "stop": None}


@pytest.mark.parametrize(
    ("document", "usage"),
    [
        (
            {
                "usage": {
                    "prompt_tokens": 2006,
                    "completion_tokens": 300,
                    "prompt_tokens_details": {"cached_tokens": 1920},
                }
            },
            Usage(
                prompt_tokens=2006, completion_tokens=300, cached_tokens=1920, from_provider=True
            ),
        ),
        (
            {"usage": {"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": None}},
            Usage(prompt_tokens=5, completion_tokens=1, from_provider=True),
        ),
        (  # embeddings from servers that report only a total
            {"usage": {"total_tokens": 9}},
            Usage(prompt_tokens=9, from_provider=True),
        ),
        (  # nonsense counts are not believed
            {"usage": {"prompt_tokens": -4, "completion_tokens": True}},
            Usage(from_provider=True),
        ),
        ({"usage": None}, None),
        ({}, None),
    ],
)
def test_parse_usage(document: dict[str, Any], usage: Usage | None) -> None:
    assert parse_usage(document) == usage


def test_a_response_without_usage_says_so() -> None:
    assert reported_usage({"choices": []}) == Usage(from_provider=False)
