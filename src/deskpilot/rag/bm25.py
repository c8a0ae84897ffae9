"""BM25 (Robertson/Sparck Jones, Lucene's idf) over a knowledge base's chunks, kept in PostgreSQL.

Each chunk stores its terms' saturated, length-normalised frequencies as a sparse vector
(pgvector ``sparsevec``, indexed by the term's number in the knowledge base), so a chunk's BM25
score is one inner product with the query's idf vector, computed by PostgreSQL. The average
length the weights assume is the knowledge base's ``bm25_avgdl``; when the real average drifts
from it (or k1, b or the language change), ``rebuild`` recomputes the knowledge base's terms.

Candidates come from a GIN index over the chunks' term keys. Terms in many chunks (low idf) are
left out of the candidate lookup when that is provably safe (MaxScore): a chunk holding only
such terms cannot score above the sum of their bounds, and the result is checked against it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pgvector import SparseVector

SPARSE_DIMENSIONS = 1_000_000_000  # pgvector's largest dimension count
EXACT_CANDIDATES_UP_TO = 20_000  # chunks; below this every query term fetches candidates
COMMON_SHARE = 0.05  # a term in more than this share of the chunks may be left out


def weight(tf: int, length: int, avgdl: float, *, k1: float, b: float) -> float:
    """A term's BM25 weight in one chunk, without its idf."""
    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avgdl))


def chunk_weights(
    terms: Counter[str], numbers: Mapping[str, int], avgdl: float, *, k1: float, b: float
) -> SparseVector:
    length = sum(terms.values())
    return SparseVector(
        {numbers[t]: weight(tf, length, avgdl, k1=k1, b=b) for t, tf in terms.items()},
        SPARSE_DIMENSIONS,
    )


def idf(df: int, chunks: int) -> float:
    return math.log(1 + (chunks - df + 0.5) / (df + 0.5))


@dataclass(frozen=True, slots=True)
class TermStat:
    term: str
    key: int
    number: int
    df: int


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    """The query side of BM25 for one knowledge base."""

    vector: SparseVector  # idf x query frequency, by term number
    candidate_keys: tuple[int, ...]  # the terms whose chunks are candidates
    left_out_bound: float  # the most a chunk with only left-out terms can score
    maximum: float  # the query's BM25 upper bound: sum of idf x qtf x (k1 + 1)
    all_keys: tuple[int, ...]

    @property
    def empty(self) -> bool:
        return not self.all_keys

    def widened(self) -> KeywordQuery:
        return KeywordQuery(self.vector, self.all_keys, 0.0, self.maximum, self.all_keys)


def keyword_query(
    query_terms: Counter[str], stats: Sequence[TermStat], chunks: int, *, k1: float
) -> KeywordQuery:
    """Weights and candidate terms for a query over a knowledge base of ``chunks`` chunks.
    Terms the knowledge base has never seen score nothing and are dropped."""
    scored = sorted(
        ((s, idf(s.df, chunks) * query_terms[s.term]) for s in stats), key=lambda p: p[1]
    )
    vector = SparseVector({s.number: w for s, w in scored}, SPARSE_DIMENSIONS)
    maximum = sum(w for _, w in scored) * (k1 + 1)
    left_out: list[TermStat] = []
    bound = 0.0
    if chunks > EXACT_CANDIDATES_UP_TO:
        for stat, w in scored[:-1]:  # at least the rarest term fetches candidates
            if stat.df <= chunks * COMMON_SHARE:
                break
            left_out.append(stat)
            bound += w * (k1 + 1)
    kept = tuple(s.key for s, _ in scored[len(left_out) :])
    return KeywordQuery(vector, kept, bound, maximum, tuple(s.key for s, _ in scored))


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
