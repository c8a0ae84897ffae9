"""Ingestion: documents stored with exact offsets, deduplicated, swapped atomically, deleted
without leftovers, metered and refused by quota before any work."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deskpilot.core.context import OperatorContext
from deskpilot.core.errors import NotFound
from deskpilot.platform import Platform
from deskpilot.quotas import QuotaExceeded
from deskpilot.rag import KnowledgeHandle, Outcome, RecordOptions, Upload
from deskpilot.rag.errors import CorruptDocument, EmptyDocument, UnsupportedMediaType
from tests.conftest import TenantFixture
from tests.rag.conftest import RAG_TABLES, rows_of, upload
from tests.rag.corpus import ARTICLES, PASSWORD, VPN

OPERATOR = OperatorContext(principal="pytest-rag")


async def events(platform: Platform, tenant: TenantFixture) -> list[Any]:
    await platform.meter.idle()
    now = datetime.now(UTC)
    page = await platform.tenant(tenant.context).usage.events(
        now - timedelta(hours=1), now + timedelta(hours=1), limit=1000
    )
    return [e for e in page.events if e.component == "rag"]


async def test_a_document_is_chunked_by_section_with_exact_offsets(
    kb: KnowledgeHandle, runbooks: str
) -> None:
    [result] = await kb.ingest(runbooks, upload(VPN, filename="vpn.md"))
    assert result.outcome is Outcome.CREATED
    assert result.title == "VPN keeps disconnecting"
    document = await kb.document(runbooks, result.document_id)
    chunks = await kb.chunks(runbooks, result.document_id)
    assert len(chunks) == result.chunks >= 3
    for chunk in chunks:
        assert document.text[chunk["char_start"] : chunk["char_end"]] == chunk["text"]
        assert chunk["tokens"] <= 200
    sections = {tuple(c["headings"])[-1] for c in chunks if c["headings"]}
    assert {"Renew the certificate", "Error 0x80070005"} <= sections
    numbered = next(c for c in chunks if "Open the certificate manager" in c["text"])
    assert "Reconnect: a new certificate" in numbered["text"]  # the list stays whole


async def test_the_same_content_is_stored_once(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    [first] = await kb.ingest(runbooks, upload(PASSWORD))
    chunks = await rows_of(platform, tenant_a.slug, "rag_chunks")
    [again] = await kb.ingest(runbooks, upload(PASSWORD, filename="copy.md", external_id=None))
    assert again.outcome is Outcome.UNCHANGED
    assert again.document_id == first.document_id
    assert await rows_of(platform, tenant_a.slug, "rag_chunks") == chunks
    assert (await kb.get(runbooks)).document_count == 1


async def test_new_content_under_the_same_external_id_replaces_the_document(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    [v1] = await kb.ingest(runbooks, upload(VPN, external_id="kb-vpn"))
    changed = VPN.replace("GlobalProtect", "AnyConnect").replace("0x80070005", "0x800704cf")
    [v2] = await kb.ingest(runbooks, upload(changed, external_id="kb-vpn"))
    assert (v2.document_id, v2.outcome) == (v1.document_id, Outcome.UPDATED)
    document = await kb.document(runbooks, v1.document_id)
    assert document.version == 2
    assert "AnyConnect" in document.text
    old = await kb.search({"query": "GlobalProtect 0x80070005", "mode": "keyword"})
    new = await kb.search({"query": "AnyConnect 0x800704cf", "mode": "keyword"})
    assert old.hits == []
    assert {h.document_id for h in new.hits} == {v1.document_id}
    stored = await rows_of(platform, tenant_a.slug, "rag_chunks", document_id=v1.document_id)
    assert stored == v2.chunks
    assert (await kb.get(runbooks)).document_count == 1


async def test_a_search_never_sees_half_of_a_replaced_document(
    kb: KnowledgeHandle, runbooks: str
) -> None:
    def version(word: str) -> str:
        return "\n\n".join(f"## Step {n}\n\n{word} step {n} of the fix." for n in range(8))

    await kb.ingest(runbooks, upload(version("alphaversion"), external_id="swap"))
    seen: list[set[str]] = []

    async def searching() -> None:
        for _ in range(25):
            found = await kb.search(
                {"query": "alphaversion betaversion step", "mode": "keyword", "top_k": 50}
            )
            seen.append(
                {w for h in found.hits for w in ("alphaversion", "betaversion") if w in h.text}
            )

    async def swapping() -> None:
        for round_ in range(8):
            word = "betaversion" if round_ % 2 == 0 else "alphaversion"
            await kb.ingest(runbooks, upload(version(word), external_id="swap"))

    await asyncio.gather(searching(), swapping())
    assert seen
    assert all(len(words) == 1 for words in seen), seen


async def test_deleting_a_document_removes_its_chunks_vectors_and_terms(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    [vpn] = await kb.ingest(runbooks, upload(VPN))
    await kb.ingest(runbooks, upload(PASSWORD))
    terms_before = await rows_of(platform, tenant_a.slug, "rag_terms")
    await kb.delete_document(runbooks, vpn.document_id)
    for table in ("rag_chunks", "rag_chunk_vectors", "rag_chunk_terms"):
        assert await rows_of(platform, tenant_a.slug, table, document_id=vpn.document_id) == 0
    assert await rows_of(platform, tenant_a.slug, "rag_terms") < terms_before
    assert (await kb.search({"query": "GlobalProtect certificate", "mode": "keyword"})).hits == []
    with pytest.raises(NotFound):
        await kb.document(runbooks, vpn.document_id)
    assert (await kb.get(runbooks)).document_count == 1


async def test_deleting_a_knowledge_base_leaves_nothing_and_frees_its_quota(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    await kb.ingest(runbooks, [upload(text, filename=name) for name, text in ARTICLES.items()])
    stored = {
        s.dimension.value: s.used for s in await platform.tenant(tenant_a.context).quota_status()
    }
    await kb.delete(runbooks)
    for table in (*RAG_TABLES, "rag_knowledge_bases"):
        assert await rows_of(platform, tenant_a.slug, table) == 0, table
    after = {
        s.dimension.value: s.used for s in await platform.tenant(tenant_a.context).quota_status()
    }
    if "documents" in stored:
        assert after["documents"] == 0
    with pytest.raises(NotFound):
        await kb.get(runbooks)


async def test_ingestion_is_metered_with_documents_chunks_and_tokens(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    results = await kb.ingest(
        runbooks, [upload(t, filename=n) for n, t in ARTICLES.items()], request_id="ingest-1"
    )
    [event] = [e for e in await events(platform, tenant_a) if e.request_id == "ingest-1"]
    assert (event.operation, event.documents) == ("ingest", len(ARTICLES))
    assert event.chunks == sum(r.chunks for r in results)
    titles = {r.title for r in results if r.title}
    title_tokens = sum(platform.rag.embedders.local.count_tokens(sorted(titles)))
    assert event.input_tokens == sum(r.embedding_tokens for r in results) + title_tokens
    assert event.input_tokens > 0
    assert event.provider == "local"
    assert event.billed_amount == 0
    assert event.knowledge_base == runbooks


async def test_nothing_is_stored_when_one_file_of_an_upload_is_bad(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    bad = [
        Upload(content=b"%PDF-1.7 truncated", filename="broken.pdf"),
        Upload(content=b"", filename="empty.txt"),
        Upload(content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, filename="diagram.png"),
    ]
    for refused, error in zip(
        bad, (CorruptDocument, EmptyDocument, UnsupportedMediaType), strict=True
    ):
        with pytest.raises(error):
            await kb.ingest(runbooks, [upload(VPN, filename="vpn.md"), refused])
    assert await rows_of(platform, tenant_a.slug, "rag_documents") == 0
    assert await events(platform, tenant_a) == []


async def configure(
    platform: Platform, tenant: TenantFixture, patch: dict[str, Any]
) -> KnowledgeHandle:
    handle = await platform.admin(OPERATOR).on_tenant(tenant.slug)
    await handle.config.patch(patch)
    return platform.tenant(await platform.authenticate(tenant.key)).kb


async def test_the_document_quota_refuses_before_any_work(
    platform: Platform, runbooks: str, tenant_a: TenantFixture
) -> None:
    kb = await configure(platform, tenant_a, {"quotas": {"documents": 2}})
    await kb.ingest(runbooks, upload(VPN))
    with pytest.raises(QuotaExceeded) as refused:
        await kb.ingest(runbooks, [upload(PASSWORD), upload(ARTICLES["printer.md"])])
    assert refused.value.extra()["quota"] == "documents"
    assert await rows_of(platform, tenant_a.slug, "rag_documents") == 1
    assert [e.documents for e in await events(platform, tenant_a)] == [1]
    [ok] = await kb.ingest(runbooks, upload(PASSWORD))
    assert ok.outcome is Outcome.CREATED
    [same] = await kb.ingest(runbooks, upload(PASSWORD))  # unchanged: needs no quota
    assert same.outcome is Outcome.UNCHANGED


async def test_the_storage_quota_refuses_before_any_work(
    platform: Platform, runbooks: str, tenant_a: TenantFixture
) -> None:
    kb = await configure(platform, tenant_a, {"quotas": {"storage_bytes": 20_000}})
    with pytest.raises(QuotaExceeded) as refused:
        await kb.ingest(runbooks, upload(VPN * 4))
    assert refused.value.extra()["quota"] == "storage_bytes"
    assert await rows_of(platform, tenant_a.slug, "rag_chunks") == 0


async def test_csv_records_become_documents_updated_by_their_ids(
    kb: KnowledgeHandle, runbooks: str
) -> None:
    rows = [
        "id,short_description,resolution,category",
        "INC1,VPN drops every 10 minutes,Updated the GlobalProtect client,network",
        "INC2,Printer on floor 3 offline,Power-cycled PRN-03,hardware",
        "INC3,Outlook stuck in outbox,Archived mail over the 50 GB quota,email",
    ]
    options = RecordOptions(
        id_field="id", title_field="short_description", metadata_fields=("category",)
    )
    first = await kb.ingest(
        runbooks,
        Upload(content="\n".join(rows).encode(), filename="incidents.csv", records=options),
    )
    assert [(r.external_id, r.outcome) for r in first] == [
        ("INC1", Outcome.CREATED), ("INC2", Outcome.CREATED), ("INC3", Outcome.CREATED),
    ]  # fmt: skip
    rows[2] = "INC2,Printer on floor 3 offline,Replaced the fuser unit,hardware"
    second = await kb.ingest(
        runbooks,
        Upload(content="\n".join(rows).encode(), filename="incidents.csv", records=options),
    )
    assert sorted((r.external_id, r.outcome) for r in second) == [
        ("INC1", Outcome.UNCHANGED), ("INC2", Outcome.UPDATED), ("INC3", Outcome.UNCHANGED),
    ]  # fmt: skip
    found = await kb.search({"query": "fuser", "filters": {"metadata": {"category": "hardware"}}})
    assert [h.external_id for h in found.hits][:1] == ["INC2"]
