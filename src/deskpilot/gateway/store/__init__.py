"""The gateway's stored configuration: operator deployments and tenants' own provider keys.

Re-exported by ``deskpilot.gateway``; other components import from there. The gateway runtime's
integration surface is ``GatewayStore`` (see ``handles``), ``load_catalogue_rows`` and the bus
topic ``DEPLOYMENTS_CHANGED``.
"""

from deskpilot.gateway.store.catalogue import CatalogueRow, load_catalogue_rows
from deskpilot.gateway.store.deployments import DEPLOYMENTS_CHANGED, rotate_deployment_secrets
from deskpilot.gateway.store.handles import (
    DeploymentsAdmin,
    GatewayStore,
    ProviderKeysHandle,
    families_in_file,
    file_rows,
)
from deskpilot.gateway.store.provider_keys import ByoKeysDisabled, unscoped_rotate_provider_keys
from deskpilot.gateway.store.schemas import (
    DeploymentCreate,
    DeploymentUpdate,
    DeploymentView,
    PriceIn,
    PriceView,
    ProviderKeySet,
    ProviderKeyView,
)

__all__ = [
    "DEPLOYMENTS_CHANGED",
    "ByoKeysDisabled",
    "CatalogueRow",
    "DeploymentCreate",
    "DeploymentUpdate",
    "DeploymentView",
    "DeploymentsAdmin",
    "GatewayStore",
    "PriceIn",
    "PriceView",
    "ProviderKeySet",
    "ProviderKeyView",
    "ProviderKeysHandle",
    "families_in_file",
    "file_rows",
    "load_catalogue_rows",
    "rotate_deployment_secrets",
    "unscoped_rotate_provider_keys",
]
