"""Domain errors. Each maps to one HTTP status and a machine-readable ``type``.

The HTTP layer renders every error as one JSON shape (RFC 9457 problem details)::

    {"type": "not_found", "title": "Not found", "status": 404,
     "detail": "...", "request_id": "...", "errors": [...]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One offending field: a dotted path into the submitted document and why it was refused."""

    path: str
    message: str


@dataclass
class DeskpilotError(Exception):
    detail: str
    errors: Sequence[FieldError] = field(default_factory=tuple)

    status = 500
    type = "internal_error"
    title = "Internal error"

    def __str__(self) -> str:
        return self.detail

    def extra(self) -> dict[str, Any]:
        """Machine-readable members added to the problem body (e.g. a quota's limit)."""
        return {}

    def retry_after(self) -> int | None:
        """Seconds for the ``Retry-After`` header, when retrying later can succeed."""
        return 1 if self.status == 503 else None


class BadRequest(DeskpilotError):
    status, type, title = 400, "bad_request", "Bad request"


class Unauthenticated(DeskpilotError):
    status, type, title = 401, "unauthenticated", "Missing or invalid credential"


class Forbidden(DeskpilotError):
    status, type, title = 403, "forbidden", "Not allowed"


class MissingScope(Forbidden):
    type, title = "missing_scope", "The credential lacks a required scope"


class TenantSuspended(Forbidden):
    type, title = "tenant_suspended", "Tenant is suspended"


class NotFound(DeskpilotError):
    status, type, title = 404, "not_found", "Not found"


class Conflict(DeskpilotError):
    status, type, title = 409, "conflict", "Conflict"


class LimitReached(Conflict):
    type, title = "limit_reached", "A configured limit has been reached"


class PayloadTooLarge(DeskpilotError):
    status, type, title = 413, "payload_too_large", "Request body too large"


class ValidationFailed(DeskpilotError):
    status, type, title = 422, "validation_error", "Invalid input"


class Unavailable(DeskpilotError):
    status, type, title = 503, "unavailable", "Service unavailable"


class SecretUnreadable(DeskpilotError):
    """A stored secret cannot be decrypted with the configured master keys (the key was lost
    or changed without ``DESKPILOT_SECRET_KEYS_OLD``, or the value was moved or altered).
    Retrying does not help: the secret must be stored again or the old key configured."""

    status, type, title = 500, "secret_unreadable", "A stored secret cannot be decrypted"


class TenantScopeError(RuntimeError):
    """A tenant-owned table was queried without a tenant. A programming error, never a 4xx."""


class SetupError(RuntimeError):
    """The deployment cannot start; the message says how to fix it."""
