"""LLM gateway: OpenAI-compatible entry to many providers (issue 4).

``Gateway`` (``platform.gateway``) is the request path: route, reserve, call, meter. Below it,
``Deployment`` names one upstream model; an ``LLMProvider`` (registered in a
``ProviderRegistry``: OpenAI-compatible, Anthropic, and LiteLLM for the long tail) calls it;
``call_with_retries`` / ``open_stream`` add retries and a per-deployment ``CircuitBreaker``;
``first_success`` walks a fallback chain; ``Router`` picks the chain for a tenant from the
``Catalogue`` and the tenant's ``gateway`` config section; ``count_chat`` and friends count
tokens offline.
Stored configuration (``store``): operator deployments added through the admin API or CLI and
tenants' own provider keys, encrypted at rest (``GatewayStore``).
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
from deskpilot.gateway.limits import DeploymentLimits, RedisDeploymentLimits
from deskpilot.gateway.providers import (
    BUILTIN_PROVIDERS,
    AnthropicProvider,
    LiteLLMProvider,
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
from deskpilot.gateway.routing import (
    Catalogue,
    GatewaySection,
    Route,
    Router,
    catalogue_of,
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
from deskpilot.gateway.service import Gateway, Served
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
from deskpilot.gateway.tokens import (
    count_chat,
    count_completion,
    count_embedding_input,
    count_text,
    encoding_name,
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
    "Catalogue",
    "CatalogueRow",
    "ChatResult",
    "CircuitBreaker",
    "CircuitBreakers",
    "CircuitOpenError",
    "Deployment",
    "DeploymentCreate",
    "DeploymentLimits",
    "DeploymentPrice",
    "DeploymentUpdate",
    "DeploymentView",
    "DeploymentsAdmin",
    "EmbedResult",
    "ErrorKind",
    "FallbackSuccess",
    "Gateway",
    "GatewayConfig",
    "GatewaySection",
    "GatewayStore",
    "LLMProvider",
    "LiteLLMProvider",
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
    "RedisDeploymentLimits",
    "RetryPolicy",
    "Route",
    "Router",
    "Served",
    "StreamChunk",
    "StreamEnd",
    "StreamItem",
    "Tried",
    "Usage",
    "call_with_retries",
    "catalogue_of",
    "count_chat",
    "count_completion",
    "count_embedding_input",
    "count_text",
    "embed_with_retries",
    "encoding_name",
    "families_in_file",
    "file_rows",
    "first_success",
    "load_catalogue_rows",
    "load_gateway_config",
    "load_gateway_config_file",
    "open_stream",
    "stream_with_retries",
]
