"""Classifying upstream failures: statuses, Retry-After, provider messages, stream errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deskpilot.gateway import Deployment, ErrorKind
from deskpilot.gateway.providers.classify import (
    kind_of_status,
    parse_retry_after,
    provider_message,
    status_error,
    stream_error,
)
from tests.gateway.support import API_KEY

DEPLOYMENT = Deployment(name="d", model="m", api_base="http://upstream.test/v1", api_key=API_KEY)
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.CLIENT_ERROR),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (404, ErrorKind.CLIENT_ERROR),
        (408, ErrorKind.TIMEOUT),
        (413, ErrorKind.CLIENT_ERROR),
        (422, ErrorKind.CLIENT_ERROR),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.SERVER_ERROR),
        (502, ErrorKind.SERVER_ERROR),
        (503, ErrorKind.SERVER_ERROR),
        (504, ErrorKind.TIMEOUT),
        (529, ErrorKind.SERVER_ERROR),
        (302, ErrorKind.SERVER_ERROR),
    ],
)
def test_kind_of_status(status: int, kind: ErrorKind) -> None:
    assert kind_of_status(status) is kind


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "Sun, 01 Mar 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Sun, 01 Mar 2026 11:59:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "x", "retry-after": "9"}, 9.0),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"error": {"message": "Invalid  value\\nfor n", "type": "x"}}', "Invalid value for n"),
        (b'{"error": "plain string"}', "plain string"),
        (b'{"detail": "not found"}', "not found"),
        (b"<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        (b"", ""),
    ],
)
def test_provider_message(raw: bytes, message: str) -> None:
    assert provider_message(raw) == message


def test_a_client_error_carries_the_providers_message_truncated() -> None:
    raw = b'{"error": {"message": "' + b"x" * 2000 + b'"}}'
    error = status_error(400, {}, raw, DEPLOYMENT)
    assert error.kind is ErrorKind.CLIENT_ERROR
    assert error.status == 400
    assert not error.retryable
    assert "HTTP 400: xxx" in error.message
    assert len(error.message) < 400


def test_rate_limits_and_unavailability_carry_retry_after() -> None:
    assert status_error(429, {"retry-after": "3"}, b"", DEPLOYMENT).retry_after == 3.0
    assert status_error(503, {"retry-after": "2"}, b"", DEPLOYMENT).retry_after == 2.0
    assert status_error(500, {"retry-after": "2"}, b"", DEPLOYMENT).retry_after is None


def test_a_key_echoed_by_the_provider_is_masked() -> None:
    raw = f'{{"error": {{"message": "Incorrect API key provided: {API_KEY}"}}}}'.encode()
    error = status_error(401, {}, raw, DEPLOYMENT)
    assert error.kind is ErrorKind.AUTH
    assert API_KEY not in str(error)
    assert API_KEY not in repr(error)
    assert "Incorrect API key provided: ***" in str(error)


def test_bearer_credentials_in_provider_text_are_masked() -> None:
    raw = b'{"error": {"message": "bad header Authorization: Bearer abc.def.ghi"}}'
    assert "abc.def.ghi" not in str(status_error(400, {}, raw, DEPLOYMENT))


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, "rate_limited"),
        ({"error": {"message": "bad", "type": "invalid_request_error"}}, "client_error"),
        ({"error": {"message": "boom", "code": 502}}, "server_error"),
        ({"error": {"message": "who?", "code": 401}}, "auth"),
        ({"error": {"message": "overloaded", "type": "overloaded_error"}}, "server_error"),
        ("not even json", "server_error"),
    ],
)
def test_errors_inside_a_stream(payload: object, kind: str) -> None:
    error = stream_error(payload, DEPLOYMENT)
    assert error.kind == kind
    assert error.deployment == "d"
