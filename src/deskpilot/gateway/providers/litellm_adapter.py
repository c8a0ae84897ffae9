"""The long tail of providers (Bedrock, Vertex AI, Gemini, Cohere, Mistral, ...) through LiteLLM.

``Deployment.model`` is LiteLLM's full model string (``bedrock/anthropic.claude-3-haiku``);
``api_base`` and ``api_key`` are passed when set, otherwise LiteLLM finds the provider's
credentials the way it always does (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...).

LiteLLM is optional (``pip install 'deskpilot[litellm]'``) and heavy: 3-7 s to import. It is
imported on the first call of this provider, in a worker thread so the event loop keeps serving,
and never by importing deskpilot or by deployments of the built-in providers. On that import it
is told to stay offline (its price map and tokenizers from the package, not the internet), to
send nothing anywhere (telemetry and callbacks off), to log no request or response (its loggers
at WARNING, message logging off) and to count no tokens itself: a usage of zeros is then
"not reported", and the gateway counts with ``deskpilot.gateway.tokens`` instead of trusting
LiteLLM's estimate as the provider's word.

Retries are the gateway's (``RetryPolicy``), so LiteLLM's are off (``num_retries=0``,
``max_retries=0``). ``read_timeout`` is LiteLLM's ``timeout``; ``connect_timeout`` is not used.

Only the OpenAI parameters of the request body become LiteLLM arguments; anything else goes in
``extra_body``. LiteLLM takes routing and credentials (``api_base``, ``api_key``,
``model_list``, ...) as keyword arguments too, so a caller's body must never be splatted into
the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from deskpilot.gateway.errors import ErrorKind, ProviderError
from deskpilot.gateway.providers.litellm_errors import litellm_error
from deskpilot.gateway.providers.openai_stream import StreamProgress
from deskpilot.gateway.providers.openai_wire import (
    chat_payload,
    embed_payload,
    is_usage_only,
    parse_usage,
    stream_payload,
)
from deskpilot.gateway.schemas import (
    NO_USAGE,
    ChatResult,
    Deployment,
    EmbedResult,
    StreamChunk,
    StreamItem,
    Usage,
)

INSTALL_HINT = "pip install 'deskpilot[litellm]'"

_CHAT_PARAMS = frozenset(
    {"messages", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "max_tokens"}
    | {"max_completion_tokens", "n", "presence_penalty", "response_format", "seed", "stop"}
    | {"temperature", "top_p", "tools", "tool_choice", "parallel_tool_calls", "user"}
    | {"functions", "function_call", "modalities", "audio", "prediction", "reasoning_effort"}
    | {"service_tier", "store", "web_search_options", "verbosity", "safety_identifier"}
    | {"prompt_cache_key"}
)
_STREAM_PARAMS = _CHAT_PARAMS | {"stream", "stream_options"}
_EMBED_PARAMS = frozenset({"input", "dimensions", "encoding_format", "user"})
# Never forwarded: the deployment decides the model and the headers.
_DROPPED = frozenset({"model", "extra_body", "extra_headers", "extra_query"})
_LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
_CALLBACK_LISTS = (
    "callbacks",
    "success_callback",
    "failure_callback",
    "input_callback",
    "_async_success_callback",
    "_async_failure_callback",
    "_async_input_callback",
)


def litellm_installed() -> bool:
    """Whether LiteLLM can be imported, without importing it."""
    return importlib.util.find_spec("litellm") is not None


def _import_litellm() -> Any:
    # Read by LiteLLM during its import; without them it fetches its price map from the
    # internet at import (waiting up to 5 s offline). An operator's own setting wins.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    litellm: Any = importlib.import_module("litellm")
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.turn_off_message_logging = True
    litellm.redact_messages_in_exceptions = True
    litellm.log_raw_request_response = False
    litellm.disable_token_counter = True
    for name in _CALLBACK_LISTS:
        callbacks = getattr(litellm, name, None)
        if isinstance(callbacks, list):
            callbacks.clear()
    for name in _LITELLM_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return litellm


def _reported(usage: Usage | None) -> Usage | None:
    """LiteLLM reports zeros when the provider reported nothing (its own counting is off)."""
    if usage is None or (usage.prompt_tokens == 0 and usage.completion_tokens == 0):
        return None
    return usage


def _arguments(
    payload: Mapping[str, Any], deployment: Deployment, allowed: frozenset[str]
) -> dict[str, Any]:
    """LiteLLM's keyword arguments: the allowed body parameters, the rest as ``extra_body``,
    and the deployment's model, endpoint, key, headers and timeout."""
    arguments = {key: value for key, value in payload.items() if key in allowed}
    extra = payload.get("extra_body")
    extra_body = dict(extra) if isinstance(extra, Mapping) else {}
    extra_body.update(
        (key, value) for key, value in payload.items() if key not in allowed and key not in _DROPPED
    )
    if extra_body:
        arguments["extra_body"] = extra_body
    arguments.update(
        model=deployment.model, timeout=deployment.read_timeout, num_retries=0, max_retries=0
    )
    if deployment.api_base is not None:
        arguments["api_base"] = deployment.api_base
    key = deployment.secret()
    if key is not None:
        arguments["api_key"] = key
    if deployment.extra_headers:
        arguments["extra_headers"] = dict(deployment.extra_headers)
    return arguments


def _document(response: Any, deployment: Deployment) -> dict[str, Any]:
    document = response.model_dump() if hasattr(response, "model_dump") else None
    if not isinstance(document, dict):
        raise ProviderError(
            ErrorKind.SERVER_ERROR,
            "LiteLLM returned something other than a response object",
            deployment=deployment.name,
        )
    return document


class LiteLLMProvider:
    def __init__(self) -> None:
        self._litellm: Any = None
        self._import_lock = threading.Lock()

    async def aclose(self) -> None:
        """Nothing of ours to close: LiteLLM keeps one client cache per process (shared by
        every instance) and closes it at exit."""

    async def chat(self, body: Mapping[str, Any], *, deployment: Deployment) -> ChatResult:
        started = time.perf_counter()
        arguments = _arguments(chat_payload(body, deployment), deployment, _CHAT_PARAMS)
        document = _document(await self._call("acompletion", arguments, deployment), deployment)
        return ChatResult(
            body=document,
            usage=_reported(parse_usage(document)) or NO_USAGE,
            deployment=deployment.name,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def embed(self, body: Mapping[str, Any], *, deployment: Deployment) -> EmbedResult:
        started = time.perf_counter()
        arguments = _arguments(embed_payload(body, deployment), deployment, _EMBED_PARAMS)
        document = _document(await self._call("aembedding", arguments, deployment), deployment)
        return EmbedResult(
            body=document,
            usage=_reported(parse_usage(document)) or NO_USAGE,
            deployment=deployment.name,
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    async def stream(
        self, body: Mapping[str, Any], *, deployment: Deployment
    ) -> AsyncIterator[StreamItem]:
        payload, caller_wants_usage = stream_payload(body, deployment)
        arguments = _arguments(payload, deployment, _STREAM_PARAMS)
        chunks = await self._call("acompletion", arguments, deployment)
        progress = StreamProgress()
        error: ProviderError | None = None
        try:
            async for chunk in chunks:
                data = _document(chunk, deployment)
                progress.observe(data)
                if is_usage_only(data) and not caller_wants_usage:
                    continue
                progress.delivered += 1
                yield StreamChunk(data)
        except ProviderError as exc:
            error = exc
        except Exception as exc:
            error = litellm_error(exc, deployment)
        finally:
            close = getattr(chunks, "aclose", None)
            # Frees the connection; a failure to close an ended stream changes nothing for the
            # caller, and a stream that has yielded must not raise.
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        progress.usage = _reported(progress.usage)
        yield progress.end(error, deployment)

    async def _call(self, function: str, arguments: dict[str, Any], deployment: Deployment) -> Any:
        litellm = await self._module(deployment)
        error: ProviderError
        try:
            return await getattr(litellm, function)(**arguments)
        except Exception as exc:
            error = litellm_error(exc, deployment)
        raise error  # outside the except block: LiteLLM's exception is not even its context

    async def _module(self, deployment: Deployment) -> Any:
        if self._litellm is None:
            problem = "is not installed"
            try:
                await asyncio.to_thread(self._load)
            except Exception as exc:  # reported below, so that it is not the error's context
                if not isinstance(exc, ImportError):
                    problem = f"failed to import ({type(exc).__name__})"
                elif exc.name != "litellm":
                    problem = f"cannot be imported (module {exc.name or '?'} is missing)"
            if self._litellm is None:
                raise ProviderError(
                    ErrorKind.SERVER_ERROR,
                    f"deployment {deployment.name} needs LiteLLM, which {problem} ({INSTALL_HINT})",
                    deployment=deployment.name,
                )
        return self._litellm

    def _load(self) -> Any:
        with self._import_lock:
            if self._litellm is None:
                self._litellm = _import_litellm()
            return self._litellm
