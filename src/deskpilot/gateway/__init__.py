"""LLM gateway: OpenAI-compatible entry to many providers (issue 4).

Built so far: the provider layer. ``Deployment`` names one upstream model; an ``LLMProvider``
(registered in a ``ProviderRegistry``) calls it; ``call_with_retries`` / ``open_stream`` add
retries and a per-deployment ``CircuitBreaker``; ``first_success`` walks a fallback chain.
Stored configuration (``store``): operator deployments added through the admin API or CLI and
tenants' own provider keys, encrypted at rest; ``GatewayStore`` is what the runtime loads its
catalogue and tenants' keys from. Routes, per-tenant routing and metering come next.
"""

from deskpilot.gateway.breaker import BreakerConfig, BreakerState, CircuitBreaker, CircuitBreakers
from deskpilot.gateway.component import COMPONENT
from deskpilot.gateway.config import (
    DeploymentPrice,
    GatewayConfig,
    LoadedConfig,
    load_gateway_config,
    load_gateway_config_file,
)
from deskpilot.gateway.errors import RETRYABLE_KINDS, CircuitOpenError, ErrorKind, ProviderError
from deskpilot.gateway.fallback import (
    FALLBACK_KINDS,
    AllDeploymentsFailedError,
    FallbackSuccess,
    Tried,
    first_success,
)
from deskpilot.gateway.providers import (
    BUILTIN_PROVIDERS,
    AnthropicProvider,
    LLMProvider,
    OpenAICompatProvider,
    PoolLimits,
    ProviderFactory,
    ProviderRegistry,
)
from deskpilot.gateway.resilience import (
    OpenedStream,
    RetryPolicy,
    call_with_retries,
    embed_with_retries,
    open_stream,
    stream_with_retries,
)
from deskpilot.gateway.schemas import (
    NO_USAGE,
    ChatResult,
    Deployment,
    EmbedResult,
    ProviderResult,
    StreamChunk,
    StreamEnd,
    StreamItem,
    Usage,
)
from deskpilot.gateway.store import (
    DEPLOYMENTS_CHANGED,
    ByoKeysDisabled,
    CatalogueRow,
    DeploymentCreate,
    DeploymentsAdmin,
    DeploymentUpdate,
    DeploymentView,
    GatewayStore,
    PriceIn,
    PriceView,
    ProviderKeySet,
    ProviderKeysHandle,
    ProviderKeyView,
    families_in_file,
    file_rows,
    load_catalogue_rows,
)

__all__ = [
    "BUILTIN_PROVIDERS",
    "COMPONENT",
    "DEPLOYMENTS_CHANGED",
    "FALLBACK_KINDS",
    "NO_USAGE",
    "RETRYABLE_KINDS",
    "AllDeploymentsFailedError",
    "AnthropicProvider",
    "BreakerConfig",
    "BreakerState",
    "ByoKeysDisabled",
    "CatalogueRow",
    "ChatResult",
    "CircuitBreaker",
    "CircuitBreakers",
    "CircuitOpenError",
    "Deployment",
    "DeploymentCreate",
    "DeploymentPrice",
    "DeploymentUpdate",
    "DeploymentView",
    "DeploymentsAdmin",
    "EmbedResult",
    "ErrorKind",
    "FallbackSuccess",
    "GatewayConfig",
    "GatewayStore",
    "LLMProvider",
    "LoadedConfig",
    "OpenAICompatProvider",
    "OpenedStream",
    "PoolLimits",
    "PriceIn",
    "PriceView",
    "ProviderError",
    "ProviderFactory",
    "ProviderKeySet",
    "ProviderKeyView",
    "ProviderKeysHandle",
    "ProviderRegistry",
    "ProviderResult",
    "RetryPolicy",
    "StreamChunk",
    "StreamEnd",
    "StreamItem",
    "Tried",
    "Usage",
    "call_with_retries",
    "embed_with_retries",
    "families_in_file",
    "file_rows",
    "first_success",
    "load_catalogue_rows",
    "load_gateway_config",
    "load_gateway_config_file",
    "open_stream",
    "stream_with_retries",
]
