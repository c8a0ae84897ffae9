"""Answers with citations: generated through the tenant's model (a loopback upstream over real
HTTP), extractive and labelled when no model is configured; provider embeddings through the
gateway, metered there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deskpilot.gateway import BUILTIN_PROVIDERS, Catalogue, Gateway, ProviderRegistry
from deskpilot.platform import Platform
from deskpilot.rag import KnowledgeHandle
from tests.conftest import TenantFixture
from tests.gateway.support import RecordingSleep, deployment_for, policy
from tests.rag.conftest import upload
from tests.rag.corpus import ARTICLES
from tests.upstream.server import Ok, ServerError, Upstream


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as up:
        yield up


def gateway_for(platform: Platform, catalogue: Catalogue) -> Gateway:
    return Gateway(
        catalogue=catalogue,
        prices=platform.meter.prices,
        metered=platform.metered,
        providers=ProviderRegistry(BUILTIN_PROVIDERS),
        policy=policy(RecordingSleep(), max_retries=0),
    )


@pytest.fixture
async def model(platform: Platform, upstream: Upstream) -> AsyncIterator[Gateway]:
    """The knowledge bases' gateway serves 'gpt' (the default) from the loopback upstream."""
    deployment = deployment_for(upstream, name="answers")
    gateway = gateway_for(platform, Catalogue({"gpt": (deployment,)}, {}, "gpt"))
    original, platform.rag.gateway = platform.rag.gateway, gateway
    try:
        yield gateway
    finally:
        platform.rag.gateway = original
        await gateway.close()


@pytest.fixture
async def no_model(platform: Platform) -> AsyncIterator[None]:
    gateway = gateway_for(platform, Catalogue())
    original, platform.rag.gateway = platform.rag.gateway, gateway
    try:
        yield
    finally:
        platform.rag.gateway = original
        await gateway.close()


async def ledger(platform: Platform, tenant: TenantFixture, request_id: str) -> list[Any]:
    await platform.meter.idle()
    now = datetime.now(UTC)
    page = await platform.tenant(tenant.context).usage.events(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=1000
    )
    return sorted(
        (e for e in page.events if e.request_id.startswith(request_id)), key=lambda e: e.operation
    )


async def test_an_answer_cites_the_passages_it_used(
    platform: Platform,
    kb: KnowledgeHandle,
    runbooks: str,
    tenant_a: TenantFixture,
    model: Gateway,
    upstream: Upstream,
) -> None:
    await kb.ingest(runbooks, [upload(t, filename=n) for n, t in ARTICLES.items()])
    upstream.script(
        Ok(content="Delete the expired certificate and reconnect [1].", prompt_tokens=300)
    )
    answer = await kb.ask("the vpn says my certificate expired", request_id="ask-1")
    assert (answer.kind, answer.model, answer.deployment) == ("generated", "gpt", "answers")
    assert answer.answer == "Delete the expired certificate and reconnect [1]."
    [citation] = answer.citations
    assert citation.id == 1
    assert citation.external_id == "vpn.md"
    document = await kb.document(runbooks, citation.document_id)
    assert document.text[citation.char_start : citation.char_end] == citation.quote
    [call] = [r for r in upstream.requests if r.path == "/v1/chat/completions"]
    prompt = call.json["messages"][-1]["content"]
    assert "[1] VPN keeps disconnecting" in prompt
    assert prompt.endswith("Question: the vpn says my certificate expired")
    assert call.json["temperature"] == 0
    operations = [(e.component, e.operation) for e in await ledger(platform, tenant_a, "ask-1")]
    assert operations == [("rag", "answer"), ("gateway", "chat")]


async def test_without_a_model_the_answer_is_extractive_and_says_so(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture, no_model: None
) -> None:
    await kb.ingest(runbooks, [upload(t, filename=n) for n, t in ARTICLES.items()])
    answer = await kb.ask({"question": "my password is locked", "top_k": 4}, request_id="ask-2")
    assert answer.kind == "extractive"
    assert answer.note is not None
    assert "No language model" in answer.note
    assert answer.citations[0].external_id == "password.md"
    assert answer.answer.startswith("[1] ")
    assert len(answer.citations) <= 3
    assert [e.operation for e in await ledger(platform, tenant_a, "ask-2")] == ["answer"]


async def test_nothing_to_cite_calls_no_model(
    kb: KnowledgeHandle, runbooks: str, model: Gateway, upstream: Upstream
) -> None:
    answer = await kb.ask("how do I reset my password")
    assert answer.kind == "extractive"
    assert answer.citations == []
    assert upstream.requests == []


async def test_a_knowledge_base_can_embed_through_the_gateway(
    platform: Platform, kb: KnowledgeHandle, tenant_a: TenantFixture, upstream: Upstream
) -> None:
    deployment = deployment_for(upstream, name="embedder", model="text-embedding-3-small")
    gateway = gateway_for(platform, Catalogue({"embed": (deployment,)}, {}, None))
    original, platform.rag.gateway = platform.rag.gateway, gateway
    try:
        await kb.create({"name": "provider", "config": {"embedder": "gateway:embed"}})
        await kb.ingest(
            "provider", [upload(t, filename=n) for n, t in ARTICLES.items()], request_id="emb-1"
        )
        found = await kb.search({"query": "printer on floor three", "mode": "dense"})
    finally:
        platform.rag.gateway = original
        await gateway.close()
    assert (await kb.get("provider")).embedder == "gateway:embed"
    assert found.hits
    embed_events = [e for e in await ledger(platform, tenant_a, "emb-1") if e.operation == "embed"]
    assert embed_events
    assert all(e.component == "gateway" and e.input_tokens > 0 for e in embed_events)
    [ingest] = [e for e in await ledger(platform, tenant_a, "emb-1") if e.operation == "ingest"]
    assert ingest.input_tokens == 0  # the gateway billed the tokens


async def test_a_model_that_is_down_leaves_the_passages(
    platform: Platform,
    kb: KnowledgeHandle,
    runbooks: str,
    tenant_a: TenantFixture,
    model: Gateway,
    upstream: Upstream,
) -> None:
    await kb.ingest(runbooks, [upload(t, filename=n) for n, t in ARTICLES.items()])
    upstream.script(ServerError(), ServerError(), ServerError())
    answer = await kb.ask("the vpn says my certificate expired", request_id="ask-down")
    assert answer.kind == "extractive"
    assert answer.note is not None
    assert "upstream_failed" in answer.note
    assert answer.citations[0].external_id == "vpn.md"
    assert [e.operation for e in await ledger(platform, tenant_a, "ask-down")] == ["answer"]
