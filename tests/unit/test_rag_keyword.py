"""BM25 pieces with no I/O: analysis, weights, the query side and its MaxScore pruning."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from deskpilot.core.context import TenantContext
from deskpilot.rag.analysis import Analyzer, term_key
from deskpilot.rag.bm25 import (
    COMMON_SHARE,
    EXACT_CANDIDATES_UP_TO,
    POOL,
    KeywordParams,
    TermStat,
    idf,
    keyword_query,
    sparse,
    term_weights,
    weight,
)


def context(tenant_id: str) -> TenantContext:
    return TenantContext(
        tenant_id=tenant_id, tier="pro", config={}, principal="t", scopes=frozenset()
    )


def test_terms_are_lowercased_stemmed_and_without_stop_words() -> None:
    terms = Analyzer().terms("The VPN disconnects every 10 minutes; error 0x80070005!")
    assert terms == ["vpn", "disconnect", "everi", "10", "minut", "error", "0x80070005"]


def test_other_languages_stem_with_their_own_rules_and_keep_every_word() -> None:
    assert Analyzer("german").terms("Die Drucker funktionieren nicht") == [
        "die", "druck", "funktioni", "nicht",
    ]  # fmt: skip


def test_overlong_tokens_are_not_terms() -> None:
    assert Analyzer().terms("a" * 65 + " printer") == ["printer"]


def test_term_keys_differ_per_tenant_and_knowledge_base() -> None:
    a, b = context("alpha"), context("bravo")
    keys = {term_key(a, "kb_1", "vpn"), term_key(b, "kb_1", "vpn"), term_key(a, "kb_2", "vpn")}
    assert len(keys) == 3
    assert term_key(a, "kb_1", "vpn") == term_key(a, "kb_1", "vpn")
    assert -(2**63) <= term_key(a, "kb_1", "vpn") < 2**63


def test_weight_saturates_and_normalises_by_length() -> None:
    assert weight(1, 10, 10, k1=1.2, b=0.75) == pytest.approx(1.0)
    assert weight(3, 10, 10, k1=1.2, b=0.75) < 3 * weight(1, 10, 10, k1=1.2, b=0.75)
    assert weight(1, 20, 10, k1=1.2, b=0.75) < weight(1, 5, 10, k1=1.2, b=0.75)
    assert weight(10**6, 10, 10, k1=1.2, b=0.75) < 2.2  # never above k1 + 1


def test_chunk_weights_are_indexed_by_term_number() -> None:
    weights = term_weights(Counter({"vpn": 2, "token": 1}), 3, k1=1.2, b=0.75)
    assert weights["vpn"] == pytest.approx(weight(2, 3, 3, k1=1.2, b=0.75))
    vector = sparse(weights, {"vpn": 7, "token": 3})
    assert vector.indices() == [3, 7]
    assert vector.values()[1] == pytest.approx(weights["vpn"], rel=1e-6)


def test_idf_is_lucenes() -> None:
    assert idf(1, 100) == pytest.approx(math.log(1 + 99.5 / 1.5))
    assert idf(100, 100) > 0


def stat(term: str, df: int, number: int, max_weight: float = 1.2) -> TermStat:
    return TermStat(term, hash(term), number, df, max_weight)


def test_query_weights_are_idf_times_query_frequency_and_unknown_terms_drop() -> None:
    query = keyword_query(
        Counter({"vpn": 2, "token": 1, "unseen": 1}),
        [stat("vpn", 5, 1), stat("token", 50, 2)],
        100,
        k1=1.2,
    )
    weights = dict(zip(query.vector.indices(), query.vector.values(), strict=True))
    assert weights[1] == pytest.approx(2 * idf(5, 100), rel=1e-6)
    assert weights[2] == pytest.approx(idf(50, 100), rel=1e-6)
    assert query.maximum == pytest.approx((2 * idf(5, 100) + idf(50, 100)) * 2.2)
    assert query.keys == (hash("token"), hash("vpn"))  # commonest first
    assert query.weights == pytest.approx((idf(50, 100), 2 * idf(5, 100)))
    assert (query.pool, query.left_out_bound) == (None, 0.0)


def test_small_knowledge_bases_read_every_terms_postings() -> None:
    stats = [stat("the", EXACT_CANDIDATES_UP_TO // 2, 1), stat("vpn", 3, 2)]
    query = keyword_query(Counter({"the": 1, "vpn": 1}), stats, EXACT_CANDIDATES_UP_TO, k1=1.2)
    assert set(query.keys) == {hash("the"), hash("vpn")}
    assert (query.pool, query.left_out_bound) == (None, 0.0)


def test_large_knowledge_bases_leave_common_terms_out_with_their_bound() -> None:
    chunks = EXACT_CANDIDATES_UP_TO * 10
    common = stat("server", int(chunks * COMMON_SHARE) + 1, 1, max_weight=1.1)
    rare = stat("0x80070005", 2, 2)
    query = keyword_query(Counter({"server": 1, "0x80070005": 1}), [common, rare], chunks, k1=1.2)
    assert query.keys == (hash("0x80070005"),)
    assert query.pool == POOL
    assert query.left_out_bound == pytest.approx(idf(common.df, chunks) * 1.1)
    widened = query.widened()
    assert (widened.keys, widened.pool, widened.left_out_bound) == (query.all_keys, None, 0.0)
    assert widened.weights == query.all_weights


def test_the_rarest_term_is_never_left_out() -> None:
    chunks = EXACT_CANDIDATES_UP_TO * 10
    stats = [stat("a", chunks // 2, 1), stat("b", chunks // 3, 2)]
    query = keyword_query(Counter({"a": 1, "b": 1}), stats, chunks, k1=1.2)
    assert query.keys == (hash("b"),)


def test_keyword_params_round_trip() -> None:
    params = KeywordParams("german", 1.5, 0.5)
    assert KeywordParams.from_stored(params.stored()) == params
    assert KeywordParams.from_stored({}) is None
