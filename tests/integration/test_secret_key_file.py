"""The master key: DESKPILOT_SECRET_KEY, or one generated once into DESKPILOT_HOME/secret-key
that every process on the host shares."""

from __future__ import annotations

import multiprocessing
import stat
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from deskpilot.core.errors import SetupError
from deskpilot.core.secrets import (
    SecretBox,
    binding,
    key_file,
    key_id,
    new_master_key,
    parse_master_key,
)
from tests.conftest import make_settings

ROW = binding("t", "row")


def test_generated_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "secret-key"
    first = key_file(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_file(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret-key"]  # no temporary left


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    spawn = multiprocessing.get_context("spawn")  # fork from a threaded test runner is unsafe
    with ProcessPoolExecutor(max_workers=4, mp_context=spawn) as pool:
        keys = list(pool.map(key_file, [path] * 8))  # workers import only deskpilot.core.secrets
    assert set(keys) == {key_file(path)}


def test_an_unusable_file_stops_start_up_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "secret-key"
    path.write_text("definitely-not-a-key\n")
    with pytest.raises(SetupError, match="backup") as raised:
        key_file(path)
    assert "definitely-not-a-key" not in str(raised.value)


def test_the_setting_wins_and_old_keys_are_accepted(tmp_path: Path) -> None:
    old, current = new_master_key(), new_master_key()
    sealed = SecretBox(parse_master_key(old)).encrypt("value", bound_to=ROW)
    settings = make_settings(
        tmp_path, DESKPILOT_SECRET_KEY=current, DESKPILOT_SECRET_KEYS_OLD=f"{old},"
    )
    box = SecretBox.from_settings(settings)
    assert box.key_id == key_id(parse_master_key(current))
    assert box.decrypt(sealed, bound_to=ROW) == "value"
    assert not settings.secret_key_file.exists()


def test_without_the_setting_the_file_is_the_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    box = SecretBox.from_settings(settings)
    assert box.key_id == key_id(parse_master_key(settings.secret_key_file.read_text()))


def _operator_token_in(home: str) -> str:
    from deskpilot.core.settings import Settings
    from deskpilot.platform import operator_token

    return operator_token(Settings.model_validate({"DESKPILOT_HOME": home}))


def test_processes_starting_together_agree_on_one_operator_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without DESKPILOT_ADMIN_TOKEN the token is generated once into the home, the same way
    as the key: no process ever reads a half-written (empty) token."""
    monkeypatch.delenv("DESKPILOT_ADMIN_TOKEN", raising=False)
    home = str(tmp_path / "home")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=4, mp_context=spawn) as pool:
        tokens = list(pool.map(_operator_token_in, [home] * 8))
    assert len(set(tokens)) == 1
    assert tokens[0].startswith("dpo_")
    path = tmp_path / "home" / "admin-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["admin-token"]
