"""The gateway's own refusals (upstream failures), beside the routing ones in ``routing``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deskpilot.core.errors import DeskpilotError
from deskpilot.gateway.errors import ProviderError
from deskpilot.gateway.fallback import Tried


class UpstreamFailed(DeskpilotError):
    """Every deployment of the chain failed (after retries): 502 with the chain tried."""

    status, type, title = 502, "upstream_failed", "Every provider deployment failed"

    def __init__(self, detail: str, tried: Sequence[Tried]) -> None:
        super().__init__(detail)
        self.tried = tuple(tried)

    def extra(self) -> dict[str, Any]:
        return {
            "tried": [
                {"deployment": t.deployment, "error": t.kind.value, "circuit_open": t.circuit_open}
                for t in self.tried
            ]
        }

    def retry_after(self) -> int | None:
        return None


class UpstreamRefused(DeskpilotError):
    """The provider refused the request itself (a 4xx other than auth or rate limits): the
    caller's request is at fault, and every other deployment would refuse it too."""

    type, title = "upstream_refused", "The provider refused the request"

    def __init__(self, error: ProviderError) -> None:
        super().__init__(f"deployment {error.deployment}: {error.message}")
        status = error.status or 400
        self.status = status if 400 <= status < 500 and status not in (401, 403, 429) else 400
        self.deployment = error.deployment

    def extra(self) -> dict[str, Any]:
        return {"deployment": self.deployment}
