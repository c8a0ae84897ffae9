from __future__ import annotations

import pytest

from deskpilot.tenancy.keys import (
    hash_key,
    new_key,
    new_operator_token,
    parse_key,
    verify,
)


def test_new_key_round_trips_and_verifies() -> None:
    parsed, digest = new_key("acme-corp")
    assert parsed.token.startswith(f"dp_acme-corp_{parsed.key_id}_")
    again = parse_key(parsed.token)
    assert again == parsed
    assert verify(parsed.token, digest)
    assert not verify(parsed.token[:-1] + ("A" if parsed.token[-1] != "A" else "B"), digest)


def test_keys_are_unique_and_high_entropy() -> None:
    secrets = {new_key("acme")[0].token.rsplit("_", 1)[1] for _ in range(200)}
    assert len(secrets) == 200
    assert all(len(s) == 40 and s.isalnum() for s in secrets)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "dp_",
        "dp_acme",
        "dp_acme_abcdefghij",
        "xx_acme_abcdefghij_" + "a" * 40,
        "dp_ACME_abcdefghij_" + "a" * 40,
        "dp_acme_abcdefghi_" + "a" * 40,
        "dp_acme_abcdefghij_" + "a" * 39,
        "dp_acme_abcdefghij_" + "a" * 39 + "-",
        "dp_acme_abcdefghij_" + "é" * 40,
        "dp_acme_abcdefghij_" + "a" * 40 + "_x",
    ],
)
def test_malformed_keys_do_not_parse(token: str) -> None:
    assert parse_key(token) is None


def test_operator_tokens_never_parse_as_tenant_keys() -> None:
    assert parse_key(new_operator_token()) is None


def test_hash_is_sha256_of_the_whole_key() -> None:
    assert len(hash_key("x")) == 32
    assert hash_key("dp_a") != hash_key("dp_b")
