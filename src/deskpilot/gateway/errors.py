"""Why a provider call failed, in the few kinds the gateway acts on (retry, fall back, answer).

A ``ProviderError`` message is safe to log and to show a caller: it never carries the
deployment's key or the request body. Builders pass the key to ``scrub`` for text that came
from the provider (which may echo the credential back); every message also goes through the
log redaction of bearer tokens and deskpilot keys.
"""

from __future__ import annotations

from enum import StrEnum

from deskpilot.core.logging import redact_text

MAX_MESSAGE_CHARS = 500


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    CLIENT_ERROR = "client_error"
    AUTH = "auth"


RETRYABLE_KINDS = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.SERVER_ERROR, ErrorKind.TIMEOUT, ErrorKind.CONNECTION}
)


def scrub(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` masked."""
    if secret:
        text = text.replace(secret, "***")
    return text


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ProviderError(Exception):
    """A provider call failed. ``retryable``: the same request may succeed if sent again."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        deployment: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.kind = ErrorKind(kind)
        self.message = truncate(redact_text(message))
        self.deployment = deployment
        self.status = status
        self.retry_after = retry_after
        self.attempts = 1  # set by the retry loop to the calls it made before giving up
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind.value!r}, deployment={self.deployment!r}, "
            f"status={self.status!r}, retry_after={self.retry_after!r}, message={self.message!r})"
        )


class CircuitOpenError(ProviderError):
    """The deployment's breaker is open: refused without calling upstream."""

    def __init__(self, deployment: str) -> None:
        super().__init__(
            ErrorKind.SERVER_ERROR,
            f"circuit open for deployment {deployment}",
            deployment=deployment,
        )
