"""Helpers of the gateway tests: deployments on the loopback upstream, a recording sleep, a
clock the test moves by hand."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from deskpilot.gateway import Deployment, RetryPolicy
from tests.upstream.server import Upstream

API_KEY = "sk-test-" + "k3y" * 12  # distinctive, so a leak is easy to spot
# Long enough for a loopback answer on a loaded CI machine, short enough for a test to wait out.
SHORT_TIMEOUT = 0.5
MESSAGES = [{"role": "user", "content": "my laptop will not boot"}]
BODY_MARKER = "password-for-the-vpn-is-hunter2"
BODY = {"messages": [{"role": "user", "content": BODY_MARKER}]}


def assert_safe(error: BaseException) -> None:
    """Neither the key nor the request body in the error's text, repr or traceback."""
    for text in (str(error), repr(error), "".join(traceback.format_exception(error))):
        assert API_KEY not in text
        assert BODY_MARKER not in text


def deployment_for(up: Upstream, **overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "name": "primary",
        "model": "gpt-4o-mini",
        "api_base": up.openai_base,
        "api_key": API_KEY,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    if "key" in overrides:
        fields["api_key"] = overrides.pop("key")
    fields.update(overrides)
    return Deployment.model_validate(fields)


@dataclass
class RecordingSleep:
    """Stands in for ``asyncio.sleep``: records the requested delays, waits for none."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class ManualClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def policy(sleep: RecordingSleep, **overrides: Any) -> RetryPolicy:
    """Deterministic jitter (half the ceiling) and no real waits."""
    options: dict[str, Any] = {"sleep": sleep, "random_fraction": lambda: 0.5}
    options.update(overrides)
    return RetryPolicy(**options)
