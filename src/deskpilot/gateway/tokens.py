"""Offline token counts: prompts before a call (to reserve quota), completions of a stream whose
provider reported no usage.

Tokenizer: ``tiktoken`` (OpenAI's reference implementation, MIT) with the two BPE files shipped
in ``encodings/`` and read from that path, never fetched. Measured on this project's 2-core
machine against ``bpe-openai`` 0.1.4 (a Rust tokenizer bundling the same files) for a ~200-token
chat: tiktoken imports in 15 ms, loads o200k_base on first use in ~0.37 s and counts in ~42 us;
bpe-openai takes ~0.78 s to import (it builds its model registry at import), ~0.05 s to load
and ~28-40 us to count, installs 75 MB and runs 50 MB bigger. Counting speed is a wash; tiktoken
is small, is already what LiteLLM depends on, and is the tokenizer OpenAI bills by.

Loading: an encoding is read the first time it is needed, once per process (a lock makes
concurrent first uses wait for one load), never at import. ``tiktoken.load.load_tiktoken_bpe``
is deliberately not used: given a local path it still copies the file into
``TIKTOKEN_CACHE_DIR`` (default ``/tmp/data-gym-cache``), and given a URL it downloads. Here the
file is parsed in place and checked against OpenAI's published SHA-256, so there is no URL to
fetch and no cache to write.

Which encoding: ``o200k_base`` for the gpt-4o / gpt-4.1 / gpt-5 / o-series families and as the
default; ``cl100k_base`` for gpt-4 (not 4o/4.1/4.5), gpt-3.5 and OpenAI's embedding models. For
any other model (Anthropic, Gemini, Llama, ...) the o200k_base count is an *estimate*: those
models use their own tokenizers, typically within ~10-20% of it for English text. The provider's
reported usage, when there is one, is what metering settles on; these counts only reserve.

Chat prompts follow OpenAI's cookbook formula (``num_tokens_from_messages``): 3 tokens per
message, the tokens of its role, content and name, 1 more for a name, 3 to prime the reply.
Content parts beyond text are estimated: an image 85 tokens at ``detail: low`` and 765 otherwise
(OpenAI's tile formula for a 1024x1024 image at high detail: 85 + 4 x 170; the real size is not
known without decoding it), audio 10 tokens per second (OpenAI bills gpt-4o audio input at about
600 tokens a minute) with the duration guessed from the payload size, a file 1,000 tokens.
Tool definitions count as their compact JSON, which approximates how OpenAI renders them into
the prompt. Odd shapes never raise: unknown part types count 0, anything that is not a string
where one is expected counts as its JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import tiktoken

ENCODINGS_DIR = Path(__file__).resolve().parent / "encodings"
O200K = "o200k_base"
CL100K = "cl100k_base"

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
IMAGE_LOW_DETAIL_TOKENS = 85
IMAGE_TOKENS = 765
FILE_TOKENS = 1000
AUDIO_TOKENS_PER_SECOND = 10
# Bytes of one second of audio: 16-bit mono PCM at 24 kHz (wav/pcm16), else 128 kbit/s.
_AUDIO_BYTES_PER_SECOND = MappingProxyType({"wav": 48_000, "pcm16": 48_000})
_COMPRESSED_AUDIO_BYTES_PER_SECOND = 16_000

# tiktoken_ext.openai_public's definitions of the two encodings, with OpenAI's file hashes.
_O200K_PATTERN = "|".join(
    (
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    )
)
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


@dataclass(frozen=True, slots=True)
class _Spec:
    sha256: str
    pattern: str
    special_tokens: Mapping[str, int]


_SPECS: Mapping[str, _Spec] = MappingProxyType(
    {
        O200K: _Spec(
            "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
            _O200K_PATTERN,
            MappingProxyType({"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
        ),
        CL100K: _Spec(
            "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
            _CL100K_PATTERN,
            MappingProxyType(
                {
                    "<|endoftext|>": 100257,
                    "<|fim_prefix|>": 100258,
                    "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260,
                    "<|endofprompt|>": 100276,
                }
            ),
        ),
    }
)

_CL100K_MODELS = frozenset(
    {"gpt-4", "gpt-3.5", "gpt-3.5-turbo", "gpt-35-turbo", "text-embedding-ada-002"}
    | {"davinci-002", "babbage-002"}
)
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5-", "gpt-35-", "text-embedding-3-", "text-embedding-ada-")


class _EncodingCache:
    """The loaded encodings of this process.

    The one piece of module-level state in the gateway, on purpose: it holds immutable data read
    from files inside the package (a constant, in effect), and it is lazy only because a load
    costs ~0.3 s and ~60 MB that a process which never counts should not pay.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, tiktoken.Encoding] = {}

    def get(self, name: str) -> tiktoken.Encoding:
        encoding = self._loaded.get(name)
        if encoding is None:
            with self._lock:
                encoding = self._loaded.get(name)
                if encoding is None:
                    encoding = self._loaded[name] = _load(name)
        return encoding

    def loaded(self) -> tuple[str, ...]:
        return tuple(self._loaded)


def _load(name: str) -> tiktoken.Encoding:
    spec = _SPECS[name]
    path = ENCODINGS_DIR / f"{name}.tiktoken"
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise RuntimeError(f"{path} is damaged (SHA-256 mismatch): reinstall deskpilot")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        name,
        pat_str=spec.pattern,
        mergeable_ranks=ranks,
        special_tokens=dict(spec.special_tokens),
    )


_ENCODINGS = _EncodingCache()


def warm(names: Iterable[str]) -> None:
    """Load these encodings now (blocking: call it in a worker thread), so that no request
    waits for a load."""
    for name in names:
        _ENCODINGS.get(name)


def loaded_encodings() -> tuple[str, ...]:
    """The encodings this process has loaded so far (for tests and diagnostics)."""
    return _ENCODINGS.loaded()


def _model_family(model: str) -> str:
    """``model`` without a routing prefix (``openai/``, ``azure/``) or fine-tune marker."""
    name = model.strip().lower().rsplit("/", 1)[-1]
    return name.removeprefix("ft:").split(":", 1)[0]


def encoding_name(provider: str, model: str) -> str:
    """The encoding that counts ``model``'s tokens: exact for OpenAI's models, ``o200k_base``
    as an estimate for every other model (Anthropic's included, whatever it is called)."""
    if provider == "anthropic":
        return O200K
    family = _model_family(model)
    if family in _CL100K_MODELS or family.startswith(_CL100K_PREFIXES):
        return CL100K
    return O200K


def _encoding(provider: str, model: str) -> tiktoken.Encoding:
    return _ENCODINGS.get(encoding_name(provider, model))


def _as_text(value: Any) -> str:
    """A string as it is; anything else as its JSON (or, failing that, its type name)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return type(value).__name__


def _count(encoding: tiktoken.Encoding, value: Any) -> int:
    text = _as_text(value)
    # encode_ordinary: "<|endoftext|>" in user text is text, not a special token (and no raise).
    return len(encoding.encode_ordinary(text)) if text else 0


def count_text(text: str, *, provider: str, model: str) -> int:
    return _count(_encoding(provider, model), text)


def count_completion(chunks_text: str, *, provider: str, model: str) -> int:
    """The completion tokens of a stream's concatenated text (and tool-call arguments)."""
    return count_text(chunks_text, provider=provider, model=model)


def count_chat(
    messages: Sequence[Mapping[str, Any]],
    *,
    provider: str,
    model: str,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> int:
    """Prompt tokens of a chat request (see the module docstring for the formula)."""
    encoding = _encoding(provider, model)
    total = REPLY_PRIMING_TOKENS
    if isinstance(messages, str) or not isinstance(messages, Sequence):
        return total + _count(encoding, messages)
    for message in messages:
        total += TOKENS_PER_MESSAGE + _message_tokens(encoding, message)
    if tools:
        total += _count(encoding, list(tools) if isinstance(tools, Sequence) else tools)
    return total


def _message_tokens(encoding: tiktoken.Encoding, message: Any) -> int:
    if not isinstance(message, Mapping):
        return _count(encoding, message)
    total = 0
    for key in ("role", "name"):
        if message.get(key) is not None:
            total += _count(encoding, message[key])
    if message.get("name") is not None:
        total += TOKENS_PER_NAME
    total += _content_tokens(encoding, message.get("content"))
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, Sequence) and not isinstance(tool_calls, str):
        for call in tool_calls:
            function = call.get("function") if isinstance(call, Mapping) else call
            total += _function_tokens(encoding, function)
    elif tool_calls is not None:
        total += _count(encoding, tool_calls)
    if message.get("function_call") is not None:  # the legacy single-call field
        total += _function_tokens(encoding, message["function_call"])
    return total


def _function_tokens(encoding: tiktoken.Encoding, function: Any) -> int:
    if not isinstance(function, Mapping):
        return _count(encoding, function) if function is not None else 0
    return sum(
        _count(encoding, function[key])
        for key in ("name", "arguments")
        if function.get(key) is not None
    )


def _content_tokens(encoding: tiktoken.Encoding, content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str | bytes | bytearray) or not isinstance(content, Sequence):
        return _count(encoding, content)
    return sum(_part_tokens(encoding, part) for part in content)


def _part_tokens(encoding: tiktoken.Encoding, part: Any) -> int:
    if not isinstance(part, Mapping):
        return _count(encoding, part) if part is not None else 0
    kind = part.get("type")
    if kind == "text":
        return _count(encoding, part.get("text") or "")
    if kind == "image_url":
        image = part.get("image_url")
        detail = image.get("detail") if isinstance(image, Mapping) else None
        return IMAGE_LOW_DETAIL_TOKENS if detail == "low" else IMAGE_TOKENS
    if kind == "input_audio":
        return _audio_tokens(part.get("input_audio"))
    if kind == "file":
        return FILE_TOKENS
    return 0


def _audio_tokens(audio: Any) -> int:
    """10 tokens per second, the duration guessed from the base64 payload's size."""
    if not isinstance(audio, Mapping) or not isinstance(audio.get("data"), str):
        return AUDIO_TOKENS_PER_SECOND
    size = len(audio["data"]) * 3 // 4
    fmt = audio.get("format")
    rate = _AUDIO_BYTES_PER_SECOND.get(str(fmt), _COMPRESSED_AUDIO_BYTES_PER_SECOND)
    seconds = size / rate
    return max(1, round(seconds * AUDIO_TOKENS_PER_SECOND))


def count_embedding_input(
    value: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]],
    *,
    provider: str,
    model: str,
) -> int:
    """Tokens of an embeddings ``input``: text is counted, token ids count as themselves."""
    if isinstance(value, str):
        return count_text(value, provider=provider, model=model)
    if not isinstance(value, Sequence):
        return count_text(_as_text(value), provider=provider, model=model)
    total = 0
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool):
            total += 1
        elif isinstance(item, Sequence) and not isinstance(item, str | bytes):
            total += len(item)
        else:
            total += count_text(_as_text(item), provider=provider, model=model)
    return total
