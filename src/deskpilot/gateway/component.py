"""The gateway as a platform component: its config section (and, with stored credentials, its
purge steps and isolation-suite resources)."""

from __future__ import annotations

from deskpilot.core.component import Component
from deskpilot.gateway.routing import SECTIONS

COMPONENT = Component(name="gateway", config_sections=SECTIONS)
