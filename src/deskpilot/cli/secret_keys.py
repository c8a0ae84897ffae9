"""``deskpilot secrets``: the master key that encrypts stored credentials."""

from __future__ import annotations

import typer

from deskpilot.cli._common import JsonOpt, admin, fail, reports_errors, run
from deskpilot.cli._output import emit_json, note, table
from deskpilot.core.secrets import new_master_key

app = typer.Typer(
    help="Generate and rotate the master key that encrypts stored credentials.",
    no_args_is_help=True,
)


@app.command("new-key")
def new_key() -> None:
    """Print a new random master key (base64 of 32 bytes) for DESKPILOT_SECRET_KEY."""
    typer.echo(new_master_key())


@app.command("rotate")
@reports_errors
def rotate(as_json: JsonOpt = False) -> None:
    """Re-encrypt every stored secret with the current key (DESKPILOT_SECRET_KEY, or the
    generated DESKPILOT_HOME/secret-key). The keys they were encrypted with must be the current
    one or listed in DESKPILOT_SECRET_KEYS_OLD; afterwards the old keys can be dropped."""
    reports = run(lambda p: admin(p).rotate_secrets())
    if as_json:
        emit_json(reports)
    else:
        typer.echo(
            table(
                ["STORE", "RE-ENCRYPTED", "ROWS", "UNREADABLE"],
                [(r.store, r.rotated, r.total, r.unreadable) for r in reports],
            )
        )
    unreadable = sum(r.unreadable for r in reports)
    if unreadable:
        raise fail(
            f"{unreadable} stored secret(s) cannot be decrypted with DESKPILOT_SECRET_KEY or "
            "DESKPILOT_SECRET_KEYS_OLD and were left as they are: add the key they were "
            "encrypted with to DESKPILOT_SECRET_KEYS_OLD, or store them again"
        )
    if not as_json:
        note("done: every stored secret is now encrypted with the current key")
