"""What a component contributes to the platform: config sections, purge steps, storage probes
and the re-encryption of the secrets it stores.

Built-in components declare themselves the same way a third-party one would; the app factory,
CLI and Python API assemble them from ``deskpilot.components.BUILTIN``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from deskpilot.core.resources import PurgeStep, StorageProbe
    from deskpilot.core.secrets import SecretRotation


@dataclass(frozen=True, slots=True)
class ConfigSection:
    """A typed section of the layered tenant configuration.

    A ``tenant_editable`` section may be changed by a tenant admin through ``/v1/config``;
    every other section only by the operator, so a tenant cannot raise its own limits.
    """

    name: str
    model: type[BaseModel]
    tenant_editable: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    config_sections: tuple[ConfigSection, ...] = ()
    purge_steps: tuple[PurgeStep, ...] = ()
    storage_probes: tuple[StorageProbe, ...] = ()
    secret_rotations: tuple[SecretRotation, ...] = ()
