"""Feeding ``html.parser`` so that it stays linear and cannot raise on hostile markup.

CPython 3.11's ``HTMLParser`` is linear while it is fed, but ``close()`` retries every ``<``
after an unterminated construct, each retry scanning to the end of the buffer
(``"<a b='>'" * 10**5`` takes minutes), and it raises ``AssertionError`` on some ``<![``
forms. In HTML an unterminated tag, comment or declaration runs to the end of the file
(browsers show nothing of it either), so what the tokenizer leaves unread is dropped here
rather than handed to ``close()``'s recovery.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

# A "<" that opens nothing is text. As "&lt;" it costs the tokenizer one step per run of text
# instead of one per character ("a<<<<..." otherwise takes seconds per megabyte).
_BARE_LT = re.compile(r"<(?![A-Za-z/!?])")


def feed_all(parser: HTMLParser, markup: str) -> None:
    """The whole page through ``parser``, then closed. Only plain text left unread (a trailing
    ``&amp`` the tokenizer waited on) is kept; a trailing unterminated construct is dropped.
    ``<![...>`` sections (CDATA, Office's ``<![if ...]>``) are bogus comments in HTML and are
    removed first."""
    markup = _drop_sections(markup, "<![", ">")
    parser.feed(_BARE_LT.sub("&lt;", markup))
    rest, parser.rawdata = parser.rawdata, ""
    if rest and not rest.startswith("<"):
        parser.handle_data(unescape(rest))
    parser.close()


def _drop_sections(markup: str, opening: str, closing: str) -> str:
    """``markup`` without ``opening``...``closing`` sections, in one forward scan."""
    pieces: list[str] = []
    position = 0
    while (start := markup.find(opening, position)) >= 0:
        pieces.append(markup[position:start])
        end = markup.find(closing, start + len(opening))
        if end < 0:
            return "".join(pieces)  # unterminated: runs to the end, as in a browser
        position = end + len(closing)
    pieces.append(markup[position:])
    return "".join(pieces)
