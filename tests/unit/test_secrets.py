"""``SecretBox``: AES-256-GCM with key ids, old keys for reading, and row binding."""

from __future__ import annotations

import base64
import traceback

import pytest
from pydantic import ValidationError

from deskpilot.core.errors import SecretUnreadable
from deskpilot.core.secrets import (
    VERSION,
    SecretBox,
    binding,
    key_id,
    new_master_key,
    parse_master_key,
)
from deskpilot.core.settings import Settings

PLAIN = "sk-distinctive-0123456789-plaintext"
ROW = binding("gateway_provider_keys", "alpha", "openai")


def box(*old: bytes) -> SecretBox:
    return SecretBox(parse_master_key(new_master_key()), list(old))


def assert_quiet(error: BaseException) -> None:
    for text in (str(error), repr(error), "".join(traceback.format_exception(error))):
        assert PLAIN not in text


def test_round_trip_and_format() -> None:
    sealer = box()
    sealed = sealer.encrypt(PLAIN, bound_to=ROW)
    assert sealed[0] == VERSION
    assert sealed[1:5].hex() == sealer.key_id
    assert PLAIN.encode() not in sealed
    assert sealer.decrypt(sealed, bound_to=ROW) == PLAIN
    assert sealer.encrypt(PLAIN, bound_to=ROW) != sealed  # a fresh nonce every time


def test_a_ciphertext_opens_only_for_its_own_row() -> None:
    sealer = box()
    sealed = sealer.encrypt(PLAIN, bound_to=ROW)
    for other in (
        binding("gateway_provider_keys", "bravo", "openai"),
        binding("gateway_provider_keys", "alpha", "azure"),
        binding("gateway_deployments", "alpha", "openai"),
    ):
        with pytest.raises(SecretUnreadable, match="does not belong") as raised:
            sealer.decrypt(sealed, bound_to=other)
        assert_quiet(raised.value)


def test_bindings_are_unambiguous() -> None:
    assert binding("t", "a,b", "c") != binding("t", "a", "b,c")
    assert binding("t", 'a"', "b") != binding("t", "a", '"b')


def test_tampering_is_detected() -> None:
    sealer = box()
    sealed = bytearray(sealer.encrypt(PLAIN, bound_to=ROW))
    sealed[-1] ^= 0x01
    with pytest.raises(SecretUnreadable):
        sealer.decrypt(bytes(sealed), bound_to=ROW)
    with pytest.raises(SecretUnreadable, match="format"):
        sealer.decrypt(b"\x02" + bytes(sealed[1:]), bound_to=ROW)
    with pytest.raises(SecretUnreadable, match="format"):
        sealer.decrypt(b"", bound_to=ROW)


def test_old_keys_open_and_rotation_reseals_with_the_current_key() -> None:
    old_key = parse_master_key(new_master_key())
    old = SecretBox(old_key)
    sealed = old.encrypt(PLAIN, bound_to=ROW)
    current = box(old_key)
    assert current.key_id != old.key_id
    assert current.decrypt(sealed, bound_to=ROW) == PLAIN
    assert not current.sealed_by_current(sealed)
    resealed = current.reencrypt(sealed, bound_to=ROW)
    assert resealed is not None
    assert current.sealed_by_current(resealed)
    assert current.reencrypt(resealed, bound_to=ROW) is None
    with pytest.raises(SecretUnreadable, match=old.key_id) as raised:
        box().decrypt(sealed, bound_to=ROW)  # neither current nor old: names the key id
    assert_quiet(raised.value)


def test_repr_shows_only_key_ids() -> None:
    key = parse_master_key(new_master_key())
    sealer = SecretBox(key)
    assert repr(sealer) == f"SecretBox(key_id={key_id(key)!r}, old_keys=0)"
    assert base64.b64encode(key).decode() not in repr(sealer)


def test_master_keys_must_be_32_bytes_of_base64() -> None:
    assert len(parse_master_key(new_master_key())) == 32
    for bad in ("", "not base64!", base64.b64encode(b"x" * 16).decode()):
        with pytest.raises(ValueError, match="32"):
            parse_master_key(bad)


def test_settings_validate_the_keys_without_echoing_them() -> None:
    short = base64.b64encode(b"s" * 31).decode()
    with pytest.raises(ValidationError, match="DESKPILOT_SECRET_KEY") as raised:
        Settings.model_validate({"DESKPILOT_SECRET_KEY": short})
    assert short not in str(raised.value)
    good = new_master_key()
    with pytest.raises(ValidationError, match="key 2") as raised:
        Settings.model_validate({"DESKPILOT_SECRET_KEYS_OLD": f"{good},{short}"})
    assert short not in str(raised.value)
    assert good not in str(raised.value)
    settings = Settings.model_validate(
        {"DESKPILOT_SECRET_KEY": good, "DESKPILOT_SECRET_KEYS_OLD": f" {new_master_key()} ,"}
    )
    assert good not in repr(settings)
