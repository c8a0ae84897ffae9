"""Offline token counts. Expected numbers are hard-coded: text counts were checked against a
second, independent tokenizer (bpe-openai's Rust implementation of the same encodings), and the
cookbook conversation's totals are the ones OpenAI's API itself reported for it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from deskpilot.gateway import count_chat, count_embedding_input, count_text, encoding_name
from deskpilot.gateway import tokens as tokens_module

REPO = Path(__file__).resolve().parents[2]

TEXTS = [
    # text, o200k_base, cl100k_base
    ("hello world", 2, 2),
    ("tiktoken is great!", 6, 6),
    ("antidisestablishmentarianism", 6, 6),
    ("My laptop will not boot after the update.", 9, 9),
    ("Das Passwort für das VPN läuft morgen ab.", 9, 12),
    ("INC0012345 — 🔥 server room temp 35°C", 13, 13),
    ("<|endoftext|>", 7, 7),  # user text, never a special token
    ("    indented\n\tcode = {'a': 1}\r\n", 12, 12),
    ("", 0, 0),
]

# OpenAI cookbook, "How to count tokens with tiktoken": the API counted 129 prompt tokens for
# gpt-3.5-turbo and gpt-4-0613, and 124 for gpt-4o and gpt-4o-mini.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]

ITSM = [
    {
        "role": "system",
        "content": "You are the IT service desk assistant of Contoso. Answer briefly, cite the "
        "knowledge base article, and open an incident when the user cannot work.",
    },
    {
        "role": "user",
        "content": "My laptop (ThinkPad T14, asset TAG-20931) will not boot since last night's "
        "update. The power LED blinks three times.",
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {
                    "name": "search_kb",
                    "arguments": '{"query": "ThinkPad power LED blinks three times"}',
                },
            }
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "KB0012: Three blinks mean a memory error. Reseat the RAM or request a loaner.",
    },
    {
        "role": "assistant",
        "content": "Three blinks point to a memory error (KB0012). I can open an incident and "
        "book a loaner for you.",
    },
    {"role": "user", "name": "jdoe", "content": "Yes please, I have a customer call at 10:00."},
]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "create_incident",
            "description": "Open an incident in the ITSM tool",
            "parameters": {
                "type": "object",
                "properties": {
                    "summary": {"type": "string"},
                    "urgency": {"type": "string", "enum": ["low", "medium", "high"]},
                },
                "required": ["summary"],
            },
        },
    }
]


def chat(messages: Any, model: str = "gpt-4o", **options: Any) -> int:
    return count_chat(messages, provider="openai", model=model, **options)


@pytest.mark.parametrize(("text", "o200k", "cl100k"), TEXTS)
def test_known_strings_count_exactly(text: str, o200k: int, cl100k: int) -> None:
    assert count_text(text, provider="openai", model="gpt-4o-mini") == o200k
    assert count_text(text, provider="openai", model="gpt-4-turbo") == cl100k


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openai", "gpt-4o", "o200k_base"),
        ("openai", "gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai", "chatgpt-4o-latest", "o200k_base"),
        ("openai", "gpt-4.1-nano", "o200k_base"),
        ("openai", "gpt-5", "o200k_base"),
        ("openai", "o1-mini", "o200k_base"),
        ("openai", "o3", "o200k_base"),
        ("openai", "o4-mini", "o200k_base"),
        ("openai", "gpt-4", "cl100k_base"),
        ("openai", "gpt-4-0613", "cl100k_base"),
        ("openai", "gpt-4-turbo", "cl100k_base"),
        ("openai", "gpt-3.5-turbo-0125", "cl100k_base"),
        ("openai", "gpt-35-turbo", "cl100k_base"),  # Azure's spelling
        ("openai", "text-embedding-3-small", "cl100k_base"),
        ("openai", "text-embedding-ada-002", "cl100k_base"),
        ("openai", "ft:gpt-3.5-turbo-0125:contoso::abc123", "cl100k_base"),
        ("litellm", "azure/gpt-4-32k", "cl100k_base"),
        ("litellm", "bedrock/anthropic.claude-3-haiku", "o200k_base"),
        ("anthropic", "claude-sonnet-4-5", "o200k_base"),
        ("anthropic", "gpt-4", "o200k_base"),  # an Anthropic model, whatever its name
        ("openai", "llama3", "o200k_base"),
        ("openai", "", "o200k_base"),
    ],
)
def test_the_encoding_follows_the_model(provider: str, model: str, expected: str) -> None:
    assert encoding_name(provider, model) == expected


def test_the_cookbook_conversation_counts_what_openais_api_counted() -> None:
    assert chat(COOKBOOK, "gpt-3.5-turbo") == 129
    assert chat(COOKBOOK, "gpt-4-0613") == 129
    assert chat(COOKBOOK, "gpt-4o") == 124
    assert chat(COOKBOOK, "gpt-4o-mini") == 124


def test_an_itsm_conversation_with_a_tool_call_and_tools() -> None:
    # 3 priming + 6 x 3 per message + 1 per name, and the tokens of every role, content,
    # name, tool-call name and arguments, and of the tools' JSON.
    assert chat(ITSM) == 169
    assert chat(ITSM, "gpt-4") == 169
    assert chat(ITSM, tools=TOOLS) == 232
    assert chat(ITSM, "gpt-4", tools=TOOLS) == 231


def test_tool_call_name_and_arguments_count_and_the_legacy_function_call_too() -> None:
    call = {"name": "search_kb", "arguments": '{"query": "vpn"}'}
    plain = chat([{"role": "assistant", "content": None}])
    with_call = chat([{"role": "assistant", "tool_calls": [{"function": call}]}])
    legacy = chat([{"role": "assistant", "function_call": call}])
    as_object = {**call, "arguments": {"query": "vpn"}}
    arguments_as_object = chat([{"role": "assistant", "tool_calls": [{"function": as_object}]}])

    expected = count_text("search_kb", provider="openai", model="gpt-4o") + count_text(
        '{"query": "vpn"}', provider="openai", model="gpt-4o"
    )
    assert with_call - plain == legacy - plain == expected
    assert arguments_as_object > plain


def test_image_parts_are_estimated_by_detail() -> None:
    def message(*parts: Any) -> list[dict[str, Any]]:
        text = {"type": "text", "text": "What does this mean?"}
        return [{"role": "user", "content": [text, *parts]}]

    text_only = chat(message())
    low = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
    high = {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}}
    auto = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}

    assert text_only == 3 + 3 + 1 + 5
    assert chat(message(low)) - text_only == 85
    assert chat(message(high)) - text_only == 765
    assert chat(message(auto)) - text_only == 765
    assert chat(message(low, auto)) - text_only == 850


def test_audio_is_estimated_from_its_duration_and_a_file_is_a_fixed_estimate() -> None:
    def audio(size: int, fmt: str) -> dict[str, Any]:
        data = base64.b64encode(bytes(size)).decode()
        return {"type": "input_audio", "input_audio": {"data": data, "format": fmt}}

    base = chat([{"role": "user", "content": []}])
    two_seconds_wav = chat([{"role": "user", "content": [audio(96_000, "wav")]}])
    one_second_mp3 = chat([{"role": "user", "content": [audio(16_000, "mp3")]}])
    a_file = chat([{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}])

    assert two_seconds_wav - base == 20
    assert one_second_mp3 - base == 10
    assert a_file - base == 1000


class Loop(list[Any]):
    """A list that contains itself: JSON cannot render it."""


def test_odd_shapes_count_without_raising() -> None:
    loop = Loop()
    loop.append(loop)
    odd: list[Any] = [
        {"role": "user", "content": {"unexpected": "mapping"}},
        {"role": "user", "content": 42},
        {"role": "user", "content": [None, "a bare string part", 7, {"no": "type"}]},
        {"role": "user", "content": [{"type": "text", "text": None}, {"type": "text"}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": "https://x.test/a.png"}]},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": None}]},
        {"role": "user", "content": b"bytes"},
        {"role": None, "name": 12, "content": "\ud800 lone surrogate"},
        {"role": "assistant", "tool_calls": "not a list"},
        {"role": "assistant", "tool_calls": [None, 3, {"function": None}, {"function": "x"}]},
        {"role": "assistant", "function_call": "search"},
        {"role": "user", "content": loop},
        "not a message",
        None,
        ["a", "list"],
    ]

    for message in odd:
        assert chat([message]) >= 6, message
    assert chat(odd, tools=[{"type": "function", "function": loop}]) > len(odd) * 3
    assert chat("a bare string instead of messages") > 3
    assert chat([]) == 3


def test_unknown_part_types_count_nothing_but_their_message_does() -> None:
    text = {"type": "text", "text": "Printer offline"}
    unknown = {"type": "hologram", "hologram": {"frames": 12_000}}

    assert chat([{"role": "user", "content": [text, unknown]}]) == chat(
        [{"role": "user", "content": [text]}]
    )


def test_embedding_inputs_count_text_and_token_ids() -> None:
    def count(value: Any) -> int:
        return count_embedding_input(value, provider="openai", model="text-embedding-3-small")

    assert count("hello world") == 2
    assert count(["hello world", "tiktoken is great!"]) == 8
    assert count([101, 2023, 102]) == 3
    assert count([[101, 2023], [102]]) == 3
    assert count([]) == 0
    assert count([{"odd": "item"}, None]) > 0


def test_a_damaged_encoding_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = tmp_path / "o200k_base.tiktoken"
    damaged.write_bytes((tokens_module.ENCODINGS_DIR / "o200k_base.tiktoken").read_bytes()[:-10])
    monkeypatch.setattr(tokens_module, "ENCODINGS_DIR", tmp_path)

    with pytest.raises(RuntimeError, match="damaged"):
        tokens_module._load("o200k_base")


LAZY_AND_OFFLINE = textwrap.dedent(
    """
    import json, socket, sys, threading

    def no_network(*args, **kwargs):
        raise AssertionError("a socket was opened")

    socket.socket.connect = no_network
    socket.create_connection = no_network

    import deskpilot.gateway
    from deskpilot.gateway import tokens

    at_import = tokens.loaded_encodings()
    loads = []
    real_load = tokens._load

    def counting_load(name):
        loads.append(name)
        return real_load(name)

    tokens._load = counting_load
    barrier = threading.Barrier(8)
    counts = []

    def count(model):
        barrier.wait()
        counts.append(deskpilot.gateway.count_text("hello world", provider="openai", model=model))

    threads = [
        threading.Thread(target=count, args=("gpt-4o" if i % 2 else "gpt-4",)) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({
        "at_import": at_import,
        "loads": sorted(loads),
        "counts": counts,
        "requests_imported": "requests" in sys.modules,
    }))
    """
)


def test_encodings_load_lazily_once_and_offline(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    env = {
        **os.environ,
        "TIKTOKEN_CACHE_DIR": str(cache),
        "DATA_GYM_CACHE_DIR": str(cache),
        "TMPDIR": str(tmp_path),
    }

    done = subprocess.run(  # noqa: S603  (this interpreter, a fixed script)
        [sys.executable, "-c", LAZY_AND_OFFLINE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["at_import"] == []
    assert report["loads"] == ["cl100k_base", "o200k_base"]  # each once, for eight threads
    assert report["counts"] == [2] * 8
    assert not report["requests_imported"]  # tiktoken's downloader was never reached
    assert list(cache.iterdir()) == []
    assert not (tmp_path / "data-gym-cache").exists()
