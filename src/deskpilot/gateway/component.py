"""The gateway as a platform component: its config section and the re-encryption of the
credentials it stores.

It declares no purge step: a deleted tenant's own provider keys are rows of a tenant-owned
table (``gateway_provider_keys``), which tenant deletion purges with every other such table,
and the processes' cached copies are dropped by the tenant-changed notice the deletion sends.
"""

from __future__ import annotations

from deskpilot.core.component import Component
from deskpilot.gateway.routing import SECTIONS
from deskpilot.gateway.store import rotate_deployment_secrets, unscoped_rotate_provider_keys

COMPONENT = Component(
    name="gateway",
    config_sections=SECTIONS,
    secret_rotations=(rotate_deployment_secrets, unscoped_rotate_provider_keys),
)
