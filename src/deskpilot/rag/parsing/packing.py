"""Packing counted units into chunk drafts, in reading order.

A block that fits in one chunk is placed whole: if the open chunk has no room for it, the
chunk is closed and the block starts the next one (a paragraph, list, table or code block is
never cut just because it arrived late). A block too big for any chunk is placed unit by unit
(sentences, list items, rows, lines). A section boundary always closes the open chunk. A
heading never ends a chunk when content follows it: it moves to the next chunk with that
content. Consecutive chunks of one section overlap by whole sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from deskpilot.rag.parsing.document import BlockKind


@dataclass(frozen=True, slots=True)
class Limits:
    max_tokens: int
    max_chars: int
    overlap_tokens: int
    min_tokens: int


class Unit(NamedTuple):
    """An uncuttable piece: ``depth`` is the splitter that produced it (0: the first of the
    block kind's chain), ``kind`` its block's kind. A tuple: a long document has millions."""

    start: int
    end: int
    block: int
    depth: int
    kind: BlockKind
    tokens: int = 0

    @property
    def is_sentence(self) -> bool:
        return self.depth == 0 and self.kind in (BlockKind.PARAGRAPH, BlockKind.QUOTE)


@dataclass(frozen=True, slots=True)
class Draft:
    """A chunk before its final count; its first ``overlap`` units repeat the previous draft's."""

    units: tuple[Unit, ...]
    overlap: int
    section: int

    @property
    def start(self) -> int:
        return self.units[0].start

    @property
    def end(self) -> int:
        return self.units[-1].end

    @property
    def tokens(self) -> int:
        return sum(u.tokens for u in self.units)

    @property
    def own_tokens(self) -> int:
        return sum(u.tokens for u in self.units[self.overlap :])


class Packer:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.drafts: list[Draft] = []
        self._current: list[Unit] = []
        self._tokens = 0
        self._overlap = 0
        self._section = -1

    def add_block(self, units: list[Unit], section: int) -> None:
        if not units:
            return
        if section != self._section:
            self.close(carry=False)
            self._section = section
        total = sum(u.tokens for u in units)
        chars = units[-1].end - units[0].start
        if total <= self._limits.max_tokens and chars <= self._limits.max_chars:
            self._make_room(total, units)
            self._append(units)
            return
        for unit in units:
            self._make_room(unit.tokens, [unit])
            self._append([unit])

    def _fits(self, tokens: int, end: int) -> bool:
        if not self._current:
            return True
        return (
            self._tokens + tokens <= self._limits.max_tokens
            and end - self._current[0].start <= self._limits.max_chars
        )

    def _has_content(self) -> bool:
        return len(self._current) > self._overlap

    def _make_room(self, tokens: int, units: list[Unit]) -> None:
        end = units[-1].end
        if self._fits(tokens, end):
            return
        if self._has_content():
            self.close(carry=True)
        while self._overlap and not self._fits(tokens, end):
            dropped = self._current.pop(0)
            self._tokens -= dropped.tokens
            self._overlap -= 1
        if not self._fits(tokens, end) and self._has_content():
            self.close(carry=False, keep_headings=True)  # a heading and a block too big together

    def _append(self, units: list[Unit]) -> None:
        self._current.extend(units)
        self._tokens += sum(u.tokens for u in units)

    def close(self, *, carry: bool, keep_headings: bool = False) -> None:
        """Ends the open chunk; with ``carry``, the next one starts with its trailing headings
        or, failing those, its last sentences (the overlap)."""
        if not self._has_content():
            self._current, self._tokens, self._overlap = [], 0, 0
            return
        moved: list[Unit] = []
        if carry and not keep_headings:
            while (
                len(self._current) - len(moved) > self._overlap + 1
                and self._current[-1 - len(moved)].kind is BlockKind.HEADING
            ):
                moved.insert(0, self._current[-1 - len(moved)])
        kept = self._current[: len(self._current) - len(moved)]
        draft = Draft(tuple(kept), self._overlap, self._section)
        self.drafts.append(draft)
        carry = carry and not moved and not keep_headings
        carried = overlap_of(draft, self._limits.overlap_tokens) if carry else []
        self._current = carried + moved
        self._overlap = len(carried)
        self._tokens = sum(u.tokens for u in self._current)


def overlap_of(draft: Draft, budget: int) -> list[Unit]:
    """The draft's trailing whole sentences within ``budget`` tokens, never the whole draft."""
    carried: list[Unit] = []
    for unit in reversed(draft.units[draft.overlap :]):
        if not unit.is_sentence or unit.tokens > budget or len(carried) + 1 >= len(draft.units):
            break
        carried.insert(0, unit)
        budget -= unit.tokens
    return carried


def merge_small(drafts: list[Draft], limits: Limits) -> list[Draft]:
    """A draft under ``min_tokens`` joins its neighbour in the same section when both fit in
    one chunk. Greedy packing leaves such a piece mostly where they do not fit: the tail of a
    block cut across chunks after a full one; that tail then takes whole units (sentences,
    items, lines of the same block) from the end of the chunk before it, up to ``min_tokens``.
    """
    merged: list[Draft] = []
    for draft in drafts:
        previous = merged[-1] if merged else None
        if previous is None or previous.section != draft.section:
            merged.append(draft)
        elif min(previous.own_tokens, draft.own_tokens) < limits.min_tokens and _fits(
            previous, draft, limits
        ):
            units = previous.units + draft.units[draft.overlap :]
            merged[-1] = Draft(units, previous.overlap, previous.section)
        elif draft.tokens < limits.min_tokens:  # with its overlap it may be big enough
            merged[-1], balanced = _rebalance(previous, draft, limits)
            merged.append(balanced)
        else:
            merged.append(draft)
    return merged


def _fits(previous: Draft, draft: Draft, limits: Limits) -> bool:
    return (
        previous.tokens + draft.own_tokens <= limits.max_tokens
        and draft.end - previous.start <= limits.max_chars
    )


def _rebalance(previous: Draft, draft: Draft, limits: Limits) -> tuple[Draft, Draft]:
    kept = list(previous.units)
    own = list(draft.units[draft.overlap :])
    own_tokens = sum(u.tokens for u in own)
    kept_tokens = previous.own_tokens
    while own_tokens < limits.min_tokens and len(kept) > previous.overlap + 1:
        unit = kept[-1]
        # No check against max_tokens is needed: a unit moved leaves ``min_tokens`` behind in
        # a draft of at most ``max_tokens``, and joins fewer than ``min_tokens``.
        if (
            unit.block != own[0].block  # only a block already cut here: others stay whole
            or own[-1].end - unit.start > limits.max_chars
            or kept_tokens - unit.tokens < limits.min_tokens
        ):
            break
        own.insert(0, kept.pop())
        own_tokens += unit.tokens
        kept_tokens -= unit.tokens
    if len(kept) == len(previous.units):
        return previous, draft
    shorter = Draft(tuple(kept), previous.overlap, previous.section)
    carried = overlap_of(shorter, min(limits.overlap_tokens, limits.max_tokens - own_tokens))
    while carried and own[-1].end - carried[0].start > limits.max_chars:
        carried.pop(0)
    return shorter, Draft(tuple(carried + own), len(carried), draft.section)
