"""Retrieval: each leg against a reference, fusion, filters, several knowledge bases, a large
knowledge base's own vector index, and one tenant's data never changing another's results."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text

from deskpilot.core.errors import Conflict
from deskpilot.platform import Platform
from deskpilot.rag import KnowledgeHandle, Upload
from deskpilot.rag import bm25 as bm25_module
from deskpilot.rag.analysis import Analyzer
from deskpilot.rag.drafts import context_text
from tests.conftest import TenantFixture
from tests.rag.conftest import upload
from tests.rag.corpus import ARTICLES


async def ingest_articles(kb: KnowledgeHandle, name: str) -> dict[str, str]:
    results = await kb.ingest(name, [upload(t, filename=n) for n, t in ARTICLES.items()])
    return {r.external_id or "": r.document_id for r in results}


async def test_hybrid_search_finds_the_article_a_question_is_about(
    kb: KnowledgeHandle, runbooks: str
) -> None:
    ids = await ingest_articles(kb, runbooks)
    cases = {
        "my vpn connection keeps dropping when I move between rooms": "vpn.md",
        "how do I connect to the printer on the third floor": "printer.md",
        "I forgot my password and my account is locked": "password.md",
        "emails are not leaving my outbox": "outlook.md",
        "0x80070005": "vpn.md",
    }
    for question, article in cases.items():
        found = await kb.search(question)
        assert found.mode == "hybrid"
        assert found.hits[0].document_id == ids[article], question


async def test_each_hit_says_where_it_is_and_how_it_scored(
    kb: KnowledgeHandle, runbooks: str
) -> None:
    ids = await ingest_articles(kb, runbooks)
    found = await kb.search({"query": "renew the expired machine certificate", "top_k": 3})
    best = found.hits[0]
    document = await kb.document(runbooks, ids["vpn.md"])
    assert document.text[best.char_start : best.char_end] == best.text
    assert best.headings[-1] == "Renew the certificate"
    assert (best.knowledge_base, best.external_id) == (runbooks, "vpn.md")
    assert best.dense is not None
    assert best.keyword is not None
    assert best.score == pytest.approx(0.75 * best.dense + 0.25 * best.keyword, abs=1e-5)
    assert [h.score for h in found.hits] == sorted((h.score for h in found.hits), reverse=True)


def reference_bm25(
    texts: dict[str, str], query: str, *, k1: float = 1.2, b: float = 0.75
) -> dict[str, float]:
    """Textbook BM25 (Lucene's idf) over whole texts, for comparison."""
    analyzer = Analyzer()
    terms = {key: Counter(analyzer.terms(value)) for key, value in texts.items()}
    avgdl = sum(sum(t.values()) for t in terms.values()) / len(terms)
    scores = {}
    for key, tf in terms.items():
        length = sum(tf.values())
        score = 0.0
        for term in set(analyzer.terms(query)):
            df = sum(1 for t in terms.values() if term in t)
            if tf[term]:
                idf = math.log(1 + (len(terms) - df + 0.5) / (df + 0.5))
                score += idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * length / avgdl))
        scores[key] = score
    return scores


async def test_the_keyword_leg_is_bm25(kb: KnowledgeHandle, runbooks: str, idle: Any) -> None:
    short = {
        f"note-{n}": text
        for n, text in enumerate(
            [
                "printer offline on floor three",
                "printer jam printer jam printer jam in the copier room",
                "vpn tunnel drops when the laptop sleeps",
                "outlook outbox stuck with a large attachment",
                "the printer driver for macOS laptops",
            ]
        )
    }
    await kb.ingest(
        runbooks, [upload(t, external_id=k, media_type="text/plain") for k, t in short.items()]
    )
    await idle()
    query = "printer jam laptop"
    expected = reference_bm25({k: context_text(None, (), t) for k, t in short.items()}, query)
    found = await kb.search({"query": query, "mode": "keyword", "top_k": 10})
    maximum = sum(
        math.log(1 + (5 - df + 0.5) / (df + 0.5)) * 2.2 for df in (3, 1, 2)
    )  # printer in 3 notes, jam in 1, laptop in 2
    got = {h.external_id: h.keyword * maximum for h in found.hits if h.keyword}
    ranked = [k for k, v in sorted(expected.items(), key=lambda kv: -kv[1]) if v > 0]
    assert [h.external_id for h in found.hits] == ranked
    for key, score in got.items():
        assert score == pytest.approx(expected[key], rel=1e-4)


async def test_pruned_candidates_give_the_same_ranking(
    kb: KnowledgeHandle, runbooks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = [f"server {n} restart needed" for n in range(30)]
    notes += ["server patch 0x80070005 fails", "the server room door sticks"]
    await kb.ingest(
        runbooks,
        [upload(t, external_id=f"n{i}", media_type="text/plain") for i, t in enumerate(notes)],
    )
    query = {"query": "server 0x80070005 door", "mode": "keyword", "top_k": 40}
    exact = await kb.search(query)
    monkeypatch.setattr(bm25_module, "EXACT_CANDIDATES_UP_TO", 1)  # "server" is common: pruned
    pruned = await kb.search(query)
    assert [(h.external_id, h.score) for h in pruned.hits] == [
        (h.external_id, h.score) for h in exact.hits
    ]
    assert len(exact.hits) == len(notes)


async def test_filters_restrict_to_matching_documents(kb: KnowledgeHandle, runbooks: str) -> None:
    await kb.ingest(
        runbooks,
        [
            upload(ARTICLES["vpn.md"], filename="vpn.md", metadata={"team": "network"}),
            upload(ARTICLES["printer.md"], filename="printer.md", metadata={"team": "desk"}),
        ],
    )
    query = "certificate printer driver"
    network = await kb.search({"query": query, "filters": {"metadata": {"team": "network"}}})
    assert {h.external_id for h in network.hits} == {"vpn.md"}
    by_id = await kb.search({"query": query, "filters": {"external_ids": ["printer.md"]}})
    assert {h.external_id for h in by_id.hits} == {"printer.md"}
    none = await kb.search({"query": query, "filters": {"metadata": {"team": "sales"}}})
    assert none.hits == []


async def test_several_knowledge_bases_are_searched_together(kb: KnowledgeHandle) -> None:
    await kb.create({"name": "articles"})
    await kb.create({"name": "incidents"})
    await kb.ingest("articles", upload(ARTICLES["vpn.md"], filename="vpn.md"))
    await kb.ingest(
        "incidents",
        upload("INC0042: GlobalProtect VPN dropped for the sales team", media_type="text/plain"),
    )
    both = await kb.search({"query": "GlobalProtect VPN drops", "top_k": 20})
    assert {h.knowledge_base for h in both.hits} == {"articles", "incidents"}
    one = await kb.search({"query": "GlobalProtect VPN drops", "knowledge_bases": ["incidents"]})
    assert {h.knowledge_base for h in one.hits} == {"incidents"}


async def test_a_small_tenant_keeps_its_results_next_to_a_large_one(
    platform: Platform, tenant_a: TenantFixture, tenant_b: TenantFixture
) -> None:
    small = platform.tenant(tenant_a.context).kb
    await small.create({"name": "kb"})
    await ingest_articles(small, "kb")
    questions = ["vpn keeps dropping", "printer on floor 3", "outbox is stuck", "0x80070005"]
    before = [[(h.document_id, h.score) for h in (await small.search(q)).hits] for q in questions]
    large = platform.tenant(tenant_b.context).kb
    await large.create({"name": "kb"})
    noise = [
        upload(f"{text}\n\nCopy {n} for another company.", external_id=f"{name}-{n}")
        for n in range(15)
        for name, text in ARTICLES.items()
    ]
    await large.ingest("kb", noise)
    after = [[(h.document_id, h.score) for h in (await small.search(q)).hits] for q in questions]
    assert after == before


async def test_a_large_knowledge_base_gets_its_own_index_and_keeps_its_recall(
    platform: Platform,
    kb: KnowledgeHandle,
    runbooks: str,
    tenant_a: TenantFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    notes = [
        Upload(
            content=f"Incident {n}: {topic} from user {n % 17} in building {n % 5}.".encode(),
            media_type="text/plain",
            external_id=f"inc-{n}",
        )
        for n, topic in enumerate(
            ["VPN drops", "printer jam", "password locked", "Outlook outbox", "laptop slow"] * 12
        )
    ]
    await kb.ingest(runbooks, notes)
    queries = ["vpn keeps dropping", "account locked out", "printer paper jam in building 3"]
    exact = [
        [h.document_id for h in (await kb.search({"query": q, "mode": "dense"})).hits]
        for q in queries
    ]
    monkeypatch.setattr(platform.rag, "dense_index_min_chunks", 50)
    await kb.ingest(runbooks, upload("One more incident: the VPN drops.", external_id="last"))
    await platform.rag.background.idle()
    info = await kb.get(runbooks)
    assert info.dense_index == "ready"
    indexed = [
        [h.document_id for h in (await kb.search({"query": q, "mode": "dense"})).hits]
        for q in queries
    ]
    overlap = [len(set(a) & set(b)) / len(a) for a, b in zip(exact, indexed, strict=True)]
    assert min(overlap) >= 0.75  # the new document may take a place; recall stays high
    async with platform.resources.db.dangerously_unscoped_session() as session:
        names = await session.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'rag_dense_%'")
        )
        definitions = [row[0] for row in names]
    assert any(f"'{tenant_a.slug}'" in d for d in definitions)


async def test_search_is_metered_and_counts_against_the_request_rate(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    await ingest_articles(kb, runbooks)
    await kb.search("vpn drops", request_id="search-1")
    await platform.meter.idle()
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    page = await platform.tenant(tenant_a.context).usage.events(
        now - timedelta(hours=1), now + timedelta(hours=1)
    )
    [event] = [e for e in page.events if e.request_id == "search-1"]
    assert (event.component, event.operation, event.knowledge_base) == ("rag", "search", runbooks)
    assert event.input_tokens > 0
    assert event.chunks > 0


async def test_a_registered_reranker_reorders_the_best_candidates(
    platform: Platform, kb: KnowledgeHandle, runbooks: str, tenant_a: TenantFixture
) -> None:
    ids = await ingest_articles(kb, runbooks)
    seen: list[Any] = []

    async def printers_first(query: str, passages: Any, *, tenant: Any) -> list[float]:
        seen.extend(passages)
        assert tenant.tenant_id == tenant_a.slug
        return [1.0 if "printer" in p.text.lower() else 0.0 for p in passages]

    platform.rag.rerankers.register("printers-first", printers_first)
    try:
        await kb.update(runbooks, {"config": {"retrieval": {"reranker": "printers-first"}}})
        found = await kb.search({"query": "vpn certificate expired", "top_k": 3})
    finally:
        platform.rag.rerankers.unregister("printers-first")
    assert found.hits[0].document_id == ids["printer.md"]
    assert found.hits[0].rerank == 1.0
    assert len(found.hits) == 3
    assert 3 < len(seen) <= 20  # rerank_candidates of the fused ranking
    assert {p.document_id for p in seen} <= set(ids.values())
    with pytest.raises(Conflict):
        await kb.search("vpn")  # the knowledge base names a reranker this process lacks


async def test_leaving_a_common_term_out_gives_the_exact_ranking_in_one_pass(
    kb: KnowledgeHandle, runbooks: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = [f"vpn token {n} renewed" for n in range(80)]
    notes += [f"vpn {n} slow" for n in range(160)] + [f"printer {n} jammed" for n in range(80)]
    await kb.ingest(
        runbooks,
        [upload(t, external_id=f"n{i}", media_type="text/plain") for i, t in enumerate(notes)],
    )
    query = {"query": "vpn token", "mode": "keyword", "top_k": 20}
    exact = await kb.search(query)
    monkeypatch.setattr(bm25_module, "EXACT_CANDIDATES_UP_TO", 1)  # as if the KB were large
    monkeypatch.setattr(bm25_module, "COMMON_SHARE", 0.3)  # "vpn" (75%) is left out
    widened: list[int] = []
    original = bm25_module.KeywordQuery.widened

    def counting(self: bm25_module.KeywordQuery) -> bm25_module.KeywordQuery:
        widened.append(1)
        return original(self)

    monkeypatch.setattr(bm25_module.KeywordQuery, "widened", counting)
    pruned = await kb.search(query)
    assert widened == []  # chunks with "token" outscore any with "vpn" alone: one pass
    assert [(h.external_id, h.score) for h in pruned.hits] == [
        (h.external_id, h.score) for h in exact.hits
    ]
    assert {h.external_id for h in pruned.hits} <= {f"n{i}" for i in range(80)}
