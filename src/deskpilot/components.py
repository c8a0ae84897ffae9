"""The built-in components, in the order their config sections appear."""

from __future__ import annotations

from deskpilot.core.component import Component
from deskpilot.gateway import COMPONENT as GATEWAY
from deskpilot.metering import COMPONENT as METERING
from deskpilot.quotas import COMPONENT as QUOTAS
from deskpilot.rag import COMPONENT as RAG
from deskpilot.tenancy import COMPONENT as TENANCY

BUILTIN: tuple[Component, ...] = (TENANCY, METERING, QUOTAS, GATEWAY, RAG)
