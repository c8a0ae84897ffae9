"""BM25 (Robertson/Sparck Jones, Lucene's idf) over a knowledge base's chunks, kept in PostgreSQL.

Each chunk stores its terms' saturated, length-normalised frequencies as a sparse vector
(pgvector ``sparsevec``, indexed by the term's number in the knowledge base), so a chunk's BM25
score is one inner product with the query's idf vector, computed by PostgreSQL. The average
length the weights assume is the knowledge base's ``bm25_avgdl``; when the real average drifts
from it (or k1, b or the language change), ``rebuild`` recomputes the knowledge base's terms.

The keyword leg itself reads the postings (``rag_postings``: a term's chunks and weights, by
index alone) of the query's terms and sums them; the best chunks it finds are then scored
exactly by their sparse vectors. In a large knowledge base the commonest terms are left out of
the sum when that is provably safe (MaxScore; see ``KeywordQuery``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pgvector import SparseVector

SPARSE_DIMENSIONS = 1_000_000_000  # pgvector's largest dimension count
EXACT_CANDIDATES_UP_TO = 20_000  # chunks; up to this every query term's postings are read
COMMON_SHARE = 0.05  # beyond, a term in more than this share of the chunks may be left out
POOL = 100  # chunks the leg keeps by partial score when terms are left out


def weight(tf: int, length: int, avgdl: float, *, k1: float, b: float) -> float:
    """A term's BM25 weight in one chunk, without its idf."""
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))


def term_weights(terms: Counter[str], avgdl: float, *, k1: float, b: float) -> dict[str, float]:
    """Each term's weight in one chunk (its terms and their frequencies), without idf."""
    length = sum(terms.values())
    return {t: weight(tf, length, avgdl, k1=k1, b=b) for t, tf in terms.items()}


def collection_stats(
    weighed: Iterable[Mapping[str, float]],
) -> tuple[Counter[str], dict[str, float]]:
    """Over chunks' term weights: each term's document frequency and largest weight."""
    df: Counter[str] = Counter()
    heaviest: dict[str, float] = {}
    for chunk in weighed:
        df.update(chunk.keys())
        for term, w in chunk.items():
            heaviest[term] = max(w, heaviest.get(term, 0.0))
    return df, heaviest


def sparse(weights: Mapping[str, float], numbers: Mapping[str, int]) -> SparseVector:
    return SparseVector({numbers[t]: w for t, w in weights.items()}, SPARSE_DIMENSIONS)


def idf(df: int, chunks: int) -> float:
    return math.log(1 + (chunks - df + 0.5) / (df + 0.5))


@dataclass(frozen=True, slots=True)
class TermStat:
    term: str
    key: int
    number: int
    df: int
    max_weight: float  # the most one chunk weighs the term (at most k1 + 1)


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    """The query side of BM25 for one knowledge base.

    The keyword leg sums the postings of the ``keys`` terms (idf x qtf each) and keeps the best
    ``pool`` chunks (None: the best ``candidates``, exactly BM25's best since no term is left
    out). Common terms left out of that sum cost the search their postings; a chunk outside the
    pool then scores at most the pool's last partial score plus ``left_out_bound``, and the
    search checks its best against that (MaxScore's argument), else runs again ``widened``."""

    vector: SparseVector  # idf x query frequency of every term, by term number: exact scores
    keys: tuple[int, ...]
    weights: tuple[float, ...]  # idf x qtf of ``keys``
    pool: int | None
    left_out_bound: float
    maximum: float  # the query's BM25 upper bound: sum of idf x qtf x (k1 + 1)
    all_keys: tuple[int, ...]
    all_weights: tuple[float, ...]

    @property
    def empty(self) -> bool:
        return not self.all_keys

    def widened(self) -> KeywordQuery:
        return replace(
            self, keys=self.all_keys, weights=self.all_weights, pool=None, left_out_bound=0.0
        )


def keyword_query(
    query_terms: Counter[str], stats: Sequence[TermStat], chunks: int, *, k1: float
) -> KeywordQuery:
    """Weights and the leg's terms for a query over a knowledge base of ``chunks`` chunks.
    Terms the knowledge base has never seen score nothing and are dropped. In a large
    knowledge base the commonest terms (in more than ``COMMON_SHARE`` of its chunks, whose
    postings are the longest and whose idf is the smallest) are left out of the leg's sum,
    but for the rarest term."""
    weight = {s.key: idf(s.df, chunks) * query_terms[s.term] for s in stats}
    vector = SparseVector({s.number: weight[s.key] for s in stats}, SPARSE_DIMENSIONS)
    maximum = sum(weight.values()) * (k1 + 1)
    commonest_first = sorted(stats, key=lambda s: -s.df)
    left_out: list[TermStat] = []
    if chunks > EXACT_CANDIDATES_UP_TO:
        for stat in commonest_first[:-1]:
            if stat.df <= chunks * COMMON_SHARE:
                break
            left_out.append(stat)
    kept = commonest_first[len(left_out) :]
    every = tuple(s.key for s in commonest_first)
    return KeywordQuery(
        vector=vector,
        keys=tuple(s.key for s in kept),
        weights=tuple(weight[s.key] for s in kept),
        pool=POOL if left_out else None,
        left_out_bound=sum(weight[s.key] * s.max_weight for s in left_out),
        maximum=maximum,
        all_keys=every,
        all_weights=tuple(weight[k] for k in every),
    )


@dataclass(frozen=True, slots=True)
class KeywordParams:
    """How a knowledge base's terms and weights were made; a query must analyse and bound
    with the same, and a change needs a rebuild (``keyword_index.rebuild``)."""

    language: str = "english"
    k1: float = 1.2
    b: float = 0.75

    def stored(self) -> dict[str, str | float]:
        return {"language": self.language, "k1": self.k1, "b": self.b}

    @classmethod
    def from_stored(cls, stored: Mapping[str, object]) -> KeywordParams | None:
        if not stored:
            return None
        return cls(str(stored["language"]), float(str(stored["k1"])), float(str(stored["b"])))
