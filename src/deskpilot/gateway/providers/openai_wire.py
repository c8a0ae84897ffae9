"""The OpenAI wire format: request bodies as sent upstream, and usage as reported back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deskpilot.gateway.schemas import NO_USAGE, Deployment, Usage

JSON = dict[str, Any]


def chat_payload(body: Mapping[str, Any], deployment: Deployment) -> JSON:
    """The caller's body, every parameter kept, with the deployment's model. Streaming is
    ``stream_payload``'s business, so a stray ``stream`` flag cannot change the response."""
    payload = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    payload["model"] = deployment.model
    return payload


def stream_payload(body: Mapping[str, Any], deployment: Deployment) -> tuple[JSON, bool]:
    """``(payload, caller_wants_usage)``: usage is always requested from the provider (merged
    into the caller's ``stream_options``); the caller sees the usage chunk only if it asked."""
    payload = dict(body)
    payload["model"] = deployment.model
    payload["stream"] = True
    given = body.get("stream_options")
    options: JSON = dict(given) if isinstance(given, Mapping) else {}
    caller_wants_usage = options.get("include_usage") is True
    options["include_usage"] = True
    payload["stream_options"] = options
    return payload, caller_wants_usage


def embed_payload(body: Mapping[str, Any], deployment: Deployment) -> JSON:
    payload = dict(body)
    payload["model"] = deployment.model
    return payload


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_usage(document: Mapping[str, Any]) -> Usage | None:
    """The ``usage`` object of a response or chunk; None when absent (or ``null``)."""
    usage = document.get("usage")
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    prompt = usage.get("prompt_tokens")
    if prompt is None:  # embeddings of some servers report only the total
        prompt = usage.get("total_tokens")
    return Usage(
        prompt_tokens=_count(prompt),
        completion_tokens=_count(usage.get("completion_tokens")),
        cached_tokens=_count(cached),
        from_provider=True,
    )


def reported_usage(document: Mapping[str, Any]) -> Usage:
    """The usage of a complete response, or ``NO_USAGE`` (``from_provider`` False)."""
    return parse_usage(document) or NO_USAGE


def is_usage_only(chunk: Mapping[str, Any]) -> bool:
    """The extra last chunk ``include_usage`` asks for: usage and no choices."""
    return not chunk.get("choices") and isinstance(chunk.get("usage"), Mapping)


def finish_reason_of(chunk: Mapping[str, Any]) -> str | None:
    reason = None
    choices = chunk.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if isinstance(choice, Mapping) and isinstance(choice.get("finish_reason"), str):
                reason = choice["finish_reason"]
    return reason
