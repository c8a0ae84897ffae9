"""Text analysis for the keyword leg: terms (lower-cased words, stop words dropped, Snowball
stems), their frequencies, and the key each term is stored under.

A term's key is a 64-bit hash of (tenant, knowledge base, stem), built by one function from the
``TenantContext``: postings and statistics are looked up by it, under the tenant's binding.
Term statistics (document frequency, average length) are kept per knowledge base, never
globally: global statistics would let one tenant's documents change another's ranking.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

from deskpilot.core.context import TenantContext

WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERM_CHARS = 64  # longer "words" (hashes, base64) are not useful terms
STEM_CACHE = 200_000

# The English list of Lucene's and Snowball's stop words, merged; short words with no meaning
# for ranking. Other languages use Snowball's stemmer and no stop-word list (BM25's idf already
# discounts frequent words).
ENGLISH_STOP_WORDS = frozenset((
    "a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each",
    "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here",
    "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it",
    "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now",
    "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out",
    "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the",
    "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this",
    "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were",
    "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would",
    "you", "your", "yours", "yourself", "yourselves", "s", "t",
))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Analyzer:
    language: str = "english"

    def terms(self, text: str) -> list[str]:
        words = [w for w in WORD.findall(text.lower()) if len(w) <= MAX_TERM_CHARS]
        if self.language == "english":
            words = [w for w in words if w not in ENGLISH_STOP_WORDS]
        return [_stem(self.language, w) for w in words]

    def frequencies(self, text: str) -> Counter[str]:
        return Counter(self.terms(text))


# A bounded memo of a pure function (words are Zipf-distributed: ~1 us a word cached, ~20 us
# not). A stemmer keeps state while it works, so each miss builds its own (~0.3 us): threads
# that analyse at once never share one.
@lru_cache(maxsize=STEM_CACHE)
def _stem(language: str, word: str) -> str:
    return str(snowballstemmer.stemmer(language).stemWord(word))


def term_key(tenant: TenantContext, kb_id: str, term: str) -> int:
    """The signed 64-bit key of ``term`` in one tenant's knowledge base."""
    digest = hashlib.blake2b(
        f"{tenant.tenant_id}\x1f{kb_id}\x1f{term}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def term_keys(tenant: TenantContext, kb_id: str, terms: Iterable[str]) -> dict[str, int]:
    return {term: term_key(tenant, kb_id, term) for term in terms}
