"""LLM gateway: OpenAI-compatible entry to many providers (issue 4).

``Gateway`` (``platform.gateway``) is the request path: route, reserve, call, meter. Below it,
``Deployment`` names one upstream model; an ``LLMProvider`` (registered in a
``ProviderRegistry``) calls it; ``call_with_retries`` / ``open_stream`` add retries and a
per-deployment ``CircuitBreaker``; ``first_success`` walks a fallback chain; ``Router`` picks
the chain for a tenant from the ``Catalogue`` and the tenant's ``gateway`` config section.
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

__all__ = [
    "BUILTIN_PROVIDERS",
    "COMPONENT",
    "FALLBACK_KINDS",
    "NO_USAGE",
    "RETRYABLE_KINDS",
    "AllDeploymentsFailedError",
    "AnthropicProvider",
    "BreakerConfig",
    "BreakerState",
    "Catalogue",
    "ChatResult",
    "CircuitBreaker",
    "CircuitBreakers",
    "CircuitOpenError",
    "Deployment",
    "DeploymentPrice",
    "EmbedResult",
    "ErrorKind",
    "FallbackSuccess",
    "Gateway",
    "GatewayConfig",
    "GatewaySection",
    "LLMProvider",
    "LoadedConfig",
    "OpenAICompatProvider",
    "OpenedStream",
    "PoolLimits",
    "ProviderError",
    "ProviderFactory",
    "ProviderRegistry",
    "ProviderResult",
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
    "embed_with_retries",
    "first_success",
    "load_gateway_config",
    "load_gateway_config_file",
    "open_stream",
    "stream_with_retries",
]
