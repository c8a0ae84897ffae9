"""Embeddings over HTTP, and the official ``openai`` SDK against a real deskpilot server,
unchanged: completions, streams, embeddings, models, and its typed errors."""

from __future__ import annotations

import httpx
import openai
import pytest

from deskpilot.core.context import OperatorContext
from deskpilot.platform import Platform
from tests.conftest import TenantFixture
from tests.gateway_http.conftest import ALIAS, Harness, configure
from tests.gateway_http.test_chat import events_of
from tests.upstream.server import ServerError

EMBED = "embed"


def with_embedder(gw: Harness) -> None:
    gw.deploy(
        {
            ALIAS: [gw.deployment()],
            EMBED: [gw.deployment("embedder", model="text-embedding-3-small")],
        },
        default_alias=ALIAS,
    )


async def test_embeddings_pass_through_and_are_metered(
    client: httpx.AsyncClient, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    with_embedder(gw)
    body = {"model": EMBED, "input": ["vpn drops every hour", "printer jam on floor 2"]}
    response = await client.post("/v1/embeddings", json=body, headers=tenant_a.headers)
    assert response.status_code == 200, response.text
    assert [d["index"] for d in response.json()["data"]] == [0, 1]
    assert response.headers["x-deskpilot-deployment"] == "embedder"
    [event] = await events_of(platform, tenant_a)
    assert event.operation == "embed"
    assert event.provider_model == "text-embedding-3-small"
    assert event.input_tokens > 0
    assert event.output_tokens == 0
    assert event.provider_cost > 0


@pytest.mark.parametrize(
    ("body", "param"),
    [({"model": EMBED}, "input"), ({"model": EMBED, "input": []}, "input")],
)
async def test_bad_embedding_input_is_a_400(
    client: httpx.AsyncClient, gw: Harness, tenant_a: TenantFixture, body: object, param: str
) -> None:
    with_embedder(gw)
    response = await client.post("/v1/embeddings", json=body, headers=tenant_a.headers)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert gw.requests_to("/v1/embeddings") == []


def sdk(server: str, tenant: TenantFixture) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{server}/v1", api_key=tenant.key, max_retries=0)


async def test_the_openai_sdk_works_unchanged(
    server: str, platform: Platform, gw: Harness, tenant_a: TenantFixture
) -> None:
    with_embedder(gw)
    async with sdk(server, tenant_a) as client:
        completion = await client.chat.completions.create(
            model=ALIAS, messages=[{"role": "user", "content": "is email down?"}]
        )
        assert completion.choices[0].message.content
        assert completion.usage is not None
        assert completion.usage.prompt_tokens > 0

        stream = await client.chat.completions.create(
            model=ALIAS,
            messages=[{"role": "user", "content": "is email down?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        pieces, usage = [], None
        async for chunk in stream:
            if chunk.choices:
                pieces.append(chunk.choices[0].delta.content or "")
            if chunk.usage is not None:
                usage = chunk.usage
        assert "".join(pieces)
        assert usage is not None
        assert usage.completion_tokens > 0

        raw = await client.chat.completions.with_raw_response.create(
            model=ALIAS, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["x-deskpilot-deployment"] == "primary"

        vectors = await client.embeddings.create(model=EMBED, input="reset my password")
        assert len(vectors.data) == 1
        assert vectors.data[0].embedding

        listed = [m.id async for m in client.models.list()]
        assert listed == [EMBED, ALIAS]
    assert len(await events_of(platform, tenant_a)) == 4


async def test_the_sdk_raises_its_own_typed_errors(
    server: str,
    platform: Platform,
    operator: OperatorContext,
    gw: Harness,
    tenant_a: TenantFixture,
) -> None:
    messages = [{"role": "user", "content": "hello"}]
    async with sdk(server, tenant_a) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="nope", messages=messages)  # type: ignore[arg-type]
        assert missing.value.code == "model_not_found"
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model=ALIAS, messages=[])
        assert bad.value.param == "messages"
        gw.up.script(ServerError(500), ServerError(500))
        with pytest.raises(openai.InternalServerError) as failed:
            await client.chat.completions.create(model=ALIAS, messages=messages)  # type: ignore[arg-type]
        assert failed.value.status_code == 502
    async with openai.AsyncOpenAI(
        base_url=f"{server}/v1", api_key="dp_wrong_key", max_retries=0
    ) as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()
    tenant = await configure(platform, operator, tenant_a, {"quotas": {"requests_per_minute": 0}})
    async with sdk(server, tenant) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model=ALIAS, messages=messages)  # type: ignore[arg-type]
        assert limited.value.code == "quota_exceeded"
