"""Chunking: exact offsets, full coverage, the token cap, structure kept whole, overlap, sections.

The property tests generate varied Markdown documents from a seeded random source, so a
failure is reproducible from the seed it names.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Sequence

import pytest

from deskpilot.rag.parsing import (
    Block,
    BlockKind,
    ChunkingConfig,
    ChunkSpan,
    Format,
    ParsedDocument,
    chunk_document,
    estimate_tokens,
    parse,
)

WORDS = [
    "reset",
    "password",
    "vpn",
    "token",
    "printer",
    "queue",
    "ticket",
    "agent",
    "laptop",
    "policy",
    "escalate",
    "restart",
    "service",
    "portal",
    "account",
    "locked",
    "network",
    "drive",
    "backup",
    "restore",
    "licence",
    "update",
    "patch",
]


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - reproducible test data, not secrets


def words_counter(texts: Sequence[str]) -> list[int]:
    """One token per word: makes expectations easy to count by eye."""
    return [len(text.split()) for text in texts]


def sentence(rng: random.Random, low: int = 4, high: int = 14) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(low, high))]
    return " ".join(words).capitalize() + rng.choice(".!?")


def random_markdown(rng: random.Random) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(3, 25)):
        shape = rng.random()
        if shape < 0.15:
            parts.append("#" * rng.randint(1, 4) + " " + sentence(rng, 1, 4)[:-1])
        elif shape < 0.5:
            lines = [" ".join(sentence(rng) for _ in range(rng.randint(1, 12)))]
            if rng.random() < 0.3:
                lines.append(sentence(rng))  # a soft line break
            parts.append("\n".join(lines))
        elif shape < 0.65:
            items = []
            for _ in range(rng.randint(1, 12)):
                indent = "  " * rng.randint(0, 2) if items else ""
                items.append(f"{indent}- {sentence(rng, 1, 30)}")
            parts.append("\n".join(items))
        elif shape < 0.75:
            code = [
                f"{'    ' * rng.randint(0, 2)}{rng.choice(WORDS)}()"
                for _ in range(rng.randint(1, 60))
            ]
            parts.append("```\n" + "\n".join(code) + "\n```")
        elif shape < 0.85:
            rows = [
                " | ".join(rng.choice(WORDS) for _ in range(3)) for _ in range(rng.randint(1, 40))
            ]
            parts.append("| a | b | c |\n|---|---|---|\n" + "\n".join(f"| {r} |" for r in rows))
        elif shape < 0.92:
            parts.append("> " + sentence(rng) + " " + sentence(rng))
        else:
            parts.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 400))))
    return "\n\n".join(parts)


def section_of(doc: ParsedDocument, position: int, level: int = 2) -> int:
    """How many section headings (level <= ``level``) start before ``position``."""
    return sum(
        1
        for b in doc.blocks
        if b.start <= position and b.kind is BlockKind.HEADING and b.level <= level
    )


def word_at(text: str, position: int) -> str:
    start = position
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    end = position
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end]


def check_invariants(doc: ParsedDocument, chunks: list[ChunkSpan], config: ChunkingConfig) -> None:
    counter = words_counter
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        # Code lines keep their indentation; nothing else has surrounding whitespace.
        assert chunk.text == chunk.text.rstrip()
        assert chunk.text.strip()
        assert chunk.text == chunk.text.lstrip() or chunk.text.startswith(" ")
        assert chunk.tokens == counter([chunk.text])[0]
        assert chunk.tokens <= config.max_tokens or len(chunk.text.split()) == 1
        assert len(chunk.text) <= config.max_chars or len(chunk.text.split()) == 1
        # Chunks never start or end inside a word, unless it is longer than max_chars.
        for edge in (chunk.start, chunk.end):
            inside = 0 < edge < len(doc.text) and not (
                doc.text[edge - 1].isspace() or doc.text[edge].isspace()
            )
            assert not inside or len(word_at(doc.text, edge)) > config.max_chars
    covered = bytearray(len(doc.text))
    for chunk in chunks:
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    missing = [i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i]]
    assert not missing, f"uncovered text at {missing[:5]}"
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.start >= previous.start
        assert chunk.end > previous.end
        if chunk.start < previous.end:  # an overlap: whole sentences of the same section
            shared = doc.text[chunk.start : previous.end]
            assert counter([shared])[0] <= config.overlap_tokens
            assert section_of(doc, chunk.start) == section_of(doc, previous.end - 1)
            assert re.search(r"[.!?]$", shared), shared


CONFIGS = [
    ChunkingConfig(),
    ChunkingConfig(max_tokens=40, overlap_tokens=8, min_tokens=5),
    ChunkingConfig(max_tokens=12, overlap_tokens=0, min_tokens=0),
    ChunkingConfig(max_tokens=64, overlap_tokens=20, min_tokens=30, section_level=1),
    ChunkingConfig(max_tokens=30, overlap_tokens=10, max_chars=120),
]


@pytest.mark.parametrize("seed", range(40))
def test_invariants_hold_on_varied_documents(seed: int) -> None:
    rng = seeded(seed)
    doc = parse(random_markdown(rng).encode(), Format.MARKDOWN)
    config = CONFIGS[seed % len(CONFIGS)]
    check_invariants(doc, chunk_document(doc, config, words_counter), config)


@pytest.mark.parametrize("seed", range(60))
def test_invariants_hold_when_characters_bind(seed: int) -> None:
    """Long words under a tight ``max_chars``: the character cap, not tokens, cuts chunks."""
    rng = seeded(seed)
    words = ("w" * rng.choice((1, 2, 3, 20, 40)) for _ in range(200))
    sentences = [" ".join(next(words) for _ in range(rng.randint(1, 6))) + "." for _ in range(8)]
    doc = parse(" ".join(sentences).encode(), Format.TEXT)
    max_tokens = rng.randint(4, 20)
    config = ChunkingConfig(
        max_tokens=max_tokens,
        overlap_tokens=rng.randint(0, max_tokens - 1),
        min_tokens=rng.randint(0, max_tokens),
        max_chars=rng.randint(20, 120),
    )
    check_invariants(doc, chunk_document(doc, config, words_counter), config)


def test_counter_is_called_in_a_few_batches() -> None:
    doc = parse(random_markdown(seeded(7)).encode() * 5, Format.MARKDOWN)
    calls: list[int] = []

    def spy(texts: Sequence[str]) -> list[int]:
        calls.append(len(texts))
        return words_counter(texts)

    chunks = chunk_document(doc, ChunkingConfig(max_tokens=40, overlap_tokens=8), spy)
    assert len(chunks) > 20
    assert len(calls) <= 6
    assert calls[-1] == len(chunks)  # the final count: one text per chunk


def test_a_counter_that_is_not_additive_still_caps_chunks() -> None:
    """A counter that adds [CLS] and [SEP] per text makes unit sums undercount nothing, but one
    that is super-additive across a join must be caught by the final count."""

    def joined_costs_more(texts: Sequence[str]) -> list[int]:
        return [len(t.split()) + 3 * t.count("\n\n") for t in texts]

    doc = parse(random_markdown(seeded(3)).encode(), Format.MARKDOWN)
    config = ChunkingConfig(max_tokens=30, overlap_tokens=6)
    chunks = chunk_document(doc, config, joined_costs_more)
    assert chunks
    for chunk in chunks:
        assert chunk.tokens == joined_costs_more([chunk.text])[0]
        assert chunk.tokens <= config.max_tokens


def test_a_chunk_counted_over_the_cap_loses_its_overlap_before_being_cut() -> None:
    def penalised(texts: Sequence[str]) -> list[int]:
        return [len(t.split()) + (5 if t.count(".") >= 3 else 0) for t in texts]

    doc = parse(" ".join(f"S{i} aa bb." for i in range(1, 8)).encode(), Format.TEXT)
    config = ChunkingConfig(max_tokens=9, overlap_tokens=3, min_tokens=0)
    # Packed as S1-S3, S3-S5, S5-S7 (9 tokens each by unit sums, 14 by the final count): the
    # first is cut in two, the others drop their overlap sentence and then fit.
    assert [c.text for c in chunk_document(doc, config, penalised)] == [
        "S1 aa bb. S2 aa bb.",
        "S3 aa bb.",
        "S4 aa bb. S5 aa bb.",
        "S6 aa bb. S7 aa bb.",
    ]


def test_default_counter_estimates_words() -> None:
    assert estimate_tokens(["", "one", "one two three", "a " * 10]) == [0, 2, 4, 13]


# -- structure ------------------------------------------------------------------------------------

GUIDE = """# VPN guide

Intro one two three four five six seven eight nine ten.

## Install

Download the client now. Run it as admin. Accept the licence.

- step one alpha
- step two beta
- step three gamma

```
install --yes
verify --all
```

### Troubleshoot

Check the logs first.

## Uninstall

Remove the client.
"""


def test_headings_paths_and_section_breaks() -> None:
    doc = parse(GUIDE.encode(), Format.MARKDOWN)
    chunks = chunk_document(doc, ChunkingConfig(max_tokens=200, min_tokens=0), words_counter)
    assert [c.text.split("\n")[0] for c in chunks] == ["VPN guide", "Install", "Uninstall"]
    assert [c.headings for c in chunks] == [
        ("VPN guide",),
        ("VPN guide", "Install"),
        ("VPN guide", "Uninstall"),
    ]
    assert "### " not in chunks[1].text
    assert "Troubleshoot" in chunks[1].text
    only_h1 = chunk_document(doc, ChunkingConfig(section_level=1, min_tokens=0), words_counter)
    assert len(only_h1) == 1
    no_breaks = chunk_document(doc, ChunkingConfig(section_level=0, min_tokens=0), words_counter)
    assert len(no_breaks) == 1


def test_list_and_code_that_fit_are_moved_whole_to_the_next_chunk() -> None:
    doc = parse(GUIDE.encode(), Format.MARKDOWN)
    # "Install" + the paragraph are 13 tokens; the list is 9; the code block is 4.
    chunks = chunk_document(
        doc, ChunkingConfig(max_tokens=16, overlap_tokens=0, min_tokens=0), words_counter
    )
    texts = [c.text for c in chunks]
    assert "- step one alpha\n- step two beta\n- step three gamma" in texts[2]
    assert any("install --yes\nverify --all" in t for t in texts)
    for text in texts:
        assert text.count("- step") in (0, 3)


def test_an_oversized_list_is_cut_between_items_and_an_oversized_item_at_sentences() -> None:
    long_item = "- " + " ".join(f"Sentence {i} has five words." for i in range(8))
    items = "\n".join(f"- item {i} has four" for i in range(10))
    doc = parse(f"{items}\n{long_item}".encode(), Format.MARKDOWN)
    config = ChunkingConfig(max_tokens=12, overlap_tokens=0, min_tokens=0)
    chunks = chunk_document(doc, config, words_counter)
    check_invariants(doc, chunks, config)
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert all(line.startswith(("- item", "- Sentence", "Sentence")) for line in lines)
        if chunk.text.startswith("- item"):
            assert all(re.fullmatch(r"- item \d has four", line) for line in lines)
        else:
            assert chunk.text.endswith("words.")


def test_oversized_code_and_table_are_cut_at_line_boundaries() -> None:
    code = "\n".join(f"    call step_{i} --flag value" for i in range(30))
    rows = "\n".join(f"| row {i} | value {i} |" for i in range(30))
    doc = parse(f"```\n{code}\n```\n\n| a | b |\n|---|---|\n{rows}".encode(), Format.MARKDOWN)
    config = ChunkingConfig(max_tokens=20, overlap_tokens=5, min_tokens=0)
    chunks = chunk_document(doc, config, words_counter)
    check_invariants(doc, chunks, config)
    lines = {line.strip() for line in doc.text.split("\n")}
    for chunk in chunks:
        assert all(line.strip() in lines for line in chunk.text.split("\n"))
    assert any(c.text.startswith("    call step_") for c in chunks[1:])  # indentation is kept
    assert all(c.start == 0 or doc.text[c.start - 1] in " \n" for c in chunks)


def test_a_long_paragraph_is_cut_at_sentences_with_whole_sentence_overlap() -> None:
    text = " ".join(f"Sentence number {i} ends here." for i in range(30))
    doc = parse(text.encode(), Format.TEXT)
    config = ChunkingConfig(max_tokens=20, overlap_tokens=5, min_tokens=0)
    chunks = chunk_document(doc, config, words_counter)
    check_invariants(doc, chunks, config)
    assert len(chunks) > 5
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.text.endswith("here.")
        overlap = doc.text[chunk.start : previous.end]
        assert re.fullmatch(r"Sentence number \d+ ends here\.", overlap)
        assert chunk.text.startswith(overlap)


def test_an_abbreviation_does_not_end_a_sentence() -> None:
    doc = parse(b"Alpha beta gamma delta. Call e.g. the desk. Next step here now.", Format.TEXT)
    config = ChunkingConfig(max_tokens=8, overlap_tokens=3, min_tokens=0)
    chunks = chunk_document(doc, config, words_counter)
    # "Call e.g. the desk." is one sentence of 4 tokens, over the overlap budget: none carried.
    assert [c.text for c in chunks] == [
        "Alpha beta gamma delta. Call e.g. the desk.",
        "Next step here now.",
    ]


def test_list_items_keep_their_continuation_lines() -> None:
    items = "\n".join(f"- item {i} first line\n  continued here and there" for i in range(6))
    doc = parse(items.encode(), Format.MARKDOWN)
    config = ChunkingConfig(max_tokens=14, overlap_tokens=0, min_tokens=0)
    chunks = chunk_document(doc, config, words_counter)
    assert len(chunks) == 6  # 9 tokens an item (5 + 4): one fits, two do not
    for chunk in chunks:
        assert chunk.text.startswith("- item")
        assert chunk.text.endswith("and there")


def test_no_overlap_across_sections_or_when_disabled() -> None:
    text = "## A\n\n" + "One two three four. " * 12 + "\n\n## B\n\n" + "Five six seven eight. " * 12
    doc = parse(text.encode(), Format.MARKDOWN)
    chunks = chunk_document(
        doc, ChunkingConfig(max_tokens=18, overlap_tokens=4, min_tokens=0), words_counter
    )
    first_b = next(c for c in chunks if c.text.startswith("B"))
    before = chunks[first_b.ordinal - 1]
    assert before.end < first_b.start
    overlaps = [b.start < a.end for a, b in itertools.pairwise(chunks)]
    assert any(overlaps)
    plain = chunk_document(
        doc, ChunkingConfig(max_tokens=18, overlap_tokens=0, min_tokens=0), words_counter
    )
    assert all(b.start >= a.end for a, b in itertools.pairwise(plain))


def test_a_heading_never_ends_a_chunk_when_content_follows() -> None:
    text = "Para " * 10 + "end.\n\n### Next part\n\n" + "Body " * 10 + "done."
    doc = parse(text.encode(), Format.MARKDOWN)
    chunks = chunk_document(
        doc, ChunkingConfig(max_tokens=14, overlap_tokens=0, min_tokens=0), words_counter
    )
    assert [c.text.split("\n")[0] for c in chunks] == ["Para " * 10 + "end.", "Next part"]
    assert chunks[1].headings == ("Next part",)


def test_a_small_trailing_piece_takes_sentences_from_the_chunk_before() -> None:
    text = " ".join(f"Sentence {i} four words." for i in range(6)) + " Tail."
    doc = parse(text.encode(), Format.TEXT)
    config = ChunkingConfig(max_tokens=12, overlap_tokens=0, min_tokens=3)
    balanced = [c.text for c in chunk_document(doc, config, words_counter)]
    assert balanced[-2:] == [
        "Sentence 3 four words. Sentence 4 four words.",
        "Sentence 5 four words. Tail.",
    ]
    config = ChunkingConfig(max_tokens=12, overlap_tokens=0, min_tokens=0)
    assert [c.text for c in chunk_document(doc, config, words_counter)][-1] == "Tail."


def test_a_small_piece_merges_into_its_neighbour_when_it_fits() -> None:
    # The heading cannot go with the code block (11 > 10 tokens), so it stands alone, then
    # joins the paragraph before it rather than be a chunk of its own.
    text = "Para one two three four.\n\n### Next\n\n```\na b c d e f g h i j\n```"
    doc = parse(text.encode(), Format.MARKDOWN)
    config = ChunkingConfig(max_tokens=10, overlap_tokens=0, min_tokens=3)
    chunks = chunk_document(doc, config, words_counter)
    assert [c.text for c in chunks] == ["Para one two three four.\n\nNext", "a b c d e f g h i j"]
    assert chunks[1].headings == ("Next",)
    config = ChunkingConfig(max_tokens=10, overlap_tokens=0, min_tokens=0)
    assert len(chunk_document(doc, config, words_counter)) == 3


def test_rebalancing_keeps_the_character_cap() -> None:
    # "C c. Eeeeeeeee." is 3 tokens, under min_tokens: it takes "C c." from the chunk before,
    # whose new last sentence would be its overlap, but that would make it 41 characters.
    doc = parse(b"A a a a. Bbbbbbbbbbbbbbbbbbbbbbbb. C c. Eeeeeeeee.", Format.TEXT)
    config = ChunkingConfig(max_tokens=10, overlap_tokens=2, min_tokens=5, max_chars=40)
    chunks = chunk_document(doc, config, words_counter)
    check_invariants(doc, chunks, config)
    assert [c.text for c in chunks] == ["A a a a. Bbbbbbbbbbbbbbbbbbbbbbbb.", "C c. Eeeeeeeee."]


def test_records_each_start_a_chunk() -> None:
    doc = parse(b"q,a\nWhy,Because\nHow,Like this\n", Format.CSV)
    chunks = chunk_document(doc, ChunkingConfig(), words_counter)
    assert [c.text for c in chunks] == ["q: Why\na: Because", "q: How\na: Like this"]


def test_a_giant_word_is_cut_by_characters_and_a_long_word_stands_alone() -> None:
    blob = "A" * 5_000
    doc = parse(f"See {blob} end.".encode(), Format.TEXT)
    chunks = chunk_document(doc, ChunkingConfig(max_chars=1_000), words_counter)
    assert [len(c.text) for c in chunks] == [3, 1_000, 1_000, 1_000, 1_000, 1_000, 4]
    assert all(doc.text[c.start : c.end] == c.text for c in chunks)
    word = "supercalifragilistic"
    doc = parse(f"{word} tail".encode(), Format.TEXT)
    chunks = chunk_document(
        doc,
        ChunkingConfig(max_tokens=3, overlap_tokens=0, min_tokens=0),
        lambda ts: [len(t) for t in ts],
    )
    assert chunks[0].text == word
    assert chunks[0].tokens > 3


def test_pages_of_a_chunk() -> None:
    text = "Page one text.\n\nPage two text.\n\nPage three text."
    blocks = (
        Block(BlockKind.PARAGRAPH, 0, 14, page=1),
        Block(BlockKind.PARAGRAPH, 16, 30, page=2),
        Block(BlockKind.PARAGRAPH, 32, 48, page=3),
    )
    doc = ParsedDocument(Format.PDF, text, blocks, None, {})
    chunks = chunk_document(
        doc, ChunkingConfig(max_tokens=7, overlap_tokens=0, min_tokens=0), words_counter
    )
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 2), (3, 3)]


def test_empty_document_has_no_chunks() -> None:
    assert (
        chunk_document(
            ParsedDocument(Format.TEXT, "", (), None, {}), ChunkingConfig(), words_counter
        )
        == []
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_tokens": 0},
        {"max_tokens": 10, "overlap_tokens": 10},
        {"overlap_tokens": -1},
        {"max_tokens": 10, "min_tokens": 11},
        {"section_level": 7},
        {"max_chars": 0},
    ],
)
def test_config_is_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must"):
        ChunkingConfig(**kwargs)


def test_a_counter_returning_the_wrong_number_of_counts_is_a_programming_error() -> None:
    doc = parse(b"Some text.", Format.TEXT)
    with pytest.raises(ValueError, match="counts"):
        chunk_document(doc, ChunkingConfig(), lambda texts: [])
