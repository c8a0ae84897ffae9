"""``deskpilot kb`` (knowledge bases), ``deskpilot ingest`` and ``deskpilot ask``: a tenant's
knowledge bases from the command line, acting as the operator on the tenant."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from deskpilot.cli._common import CliError, JsonOpt, TenantOpt, admin, reports_errors, run
from deskpilot.cli._output import emit_json, fields, note, table
from deskpilot.core.errors import DeskpilotError
from deskpilot.platform import Platform
from deskpilot.rag import KnowledgeBaseCreate, RecordOptions, Upload

app = typer.Typer(help="Create, list and delete a tenant's knowledge bases.", no_args_is_help=True)

KbOpt = Annotated[str, typer.Option("--kb", help="The knowledge base's name.")]
ConfigOpt = Annotated[
    str | None,
    typer.Option(help="JSON overrides of the tenant's 'rag' configuration.", show_default=False),
]


def config_json(raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise CliError(f"--config is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise CliError("--config must be a JSON object")
    return value


@app.command("create")
@reports_errors
def create(
    tenant: TenantOpt,
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, '-' and '_'.")],
    description: Annotated[str, typer.Option()] = "",
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a knowledge base (its embedder is fixed from then on)."""
    body = KnowledgeBaseCreate(name=name, description=description, config=config_json(config))

    async def go(platform: Platform) -> Any:
        return await (await admin(platform).on_tenant(tenant)).kb.create(body)

    created = run(go)
    if as_json:
        emit_json(created)
        return
    note(f"created knowledge base '{created.name}' (embedder {created.embedder})")


@app.command("list")
@reports_errors
def list_(tenant: TenantOpt, as_json: JsonOpt = False) -> None:
    """The tenant's knowledge bases with their sizes."""

    async def go(platform: Platform) -> Any:
        return await (await admin(platform).on_tenant(tenant)).kb.list()

    found = run(go)
    if as_json:
        emit_json(found)
        return
    rows = [
        (k.name, k.document_count, k.chunk_count, k.stored_bytes, k.dense_index, k.embedder)
        for k in found
    ]
    typer.echo(table(("name", "documents", "chunks", "bytes", "index", "embedder"), rows))


@app.command("show")
@reports_errors
def show(tenant: TenantOpt, name: str, as_json: JsonOpt = False) -> None:
    """One knowledge base."""

    async def go(platform: Platform) -> Any:
        return await (await admin(platform).on_tenant(tenant)).kb.get(name)

    kb = run(go)
    if as_json:
        emit_json(kb)
        return
    typer.echo(fields(kb.model_dump().items()))


@app.command("delete")
@reports_errors
def delete(
    tenant: TenantOpt,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a knowledge base with all its documents."""
    if not yes:
        typer.confirm(
            f"delete knowledge base '{name}' of {tenant} and all its documents?", abort=True
        )

    async def go(platform: Platform) -> None:
        await (await admin(platform).on_tenant(tenant)).kb.delete(name)

    run(go)
    note(f"deleted knowledge base '{name}'")


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        elif path.is_file():
            yield path
        else:
            raise CliError(f"no such file or directory: {path}")


@reports_errors
def ingest(
    tenant: TenantOpt,
    kb: KbOpt,
    paths: Annotated[list[Path], typer.Argument(help="Files, or folders to read recursively.")],
    id_field: Annotated[str | None, typer.Option(help="JSON/CSV: the record id column.")] = None,
    title_field: Annotated[str | None, typer.Option(help="JSON/CSV: the title column.")] = None,
    text_fields: Annotated[
        str | None, typer.Option(help="JSON/CSV: comma-separated text columns.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files into a knowledge base, with a progress bar on stderr: text, Markdown, HTML,
    PDF, DOCX, and JSON/CSV records (one document per record). A file that cannot be read is
    reported and skipped; the exit status is 1 if any was."""
    files = list(_files(paths))
    options = RecordOptions(
        id_field=id_field,
        title_field=title_field,
        text_fields=tuple(t.strip() for t in (text_fields or "").split(",") if t.strip()),
    )

    async def go(platform: Platform) -> list[dict[str, Any]]:
        handle = (await admin(platform).on_tenant(tenant)).kb
        outcomes: list[dict[str, Any]] = []
        with typer.progressbar(length=len(files), label="ingesting", file=sys.stderr) as bar:
            for path in files:
                outcomes.append(await _one(handle, kb, path, options))
                bar.update(1)
        return outcomes

    outcomes = run(go)
    failed = [o for o in outcomes if "error" in o]
    if as_json:
        emit_json(outcomes)
    else:
        done = [d for o in outcomes for d in o.get("documents", [])]
        counts = {
            k: sum(d["outcome"] == k for d in done) for k in ("created", "updated", "unchanged")
        }
        note(", ".join(f"{n} {k}" for k, n in counts.items()) + f"; {len(failed)} files failed")
        for o in failed:
            note(f"  {o['file']}: {o['error']}")
    if failed:
        raise typer.Exit(1)


async def _one(handle: Any, kb: str, path: Path, options: RecordOptions) -> dict[str, Any]:
    try:
        content = await asyncio.to_thread(path.read_bytes)
        upload = Upload(content=content, filename=path.name, records=options)
        results = await handle.ingest(kb, upload, request_id=secrets.token_hex(16))
    except DeskpilotError as exc:
        if exc.status == 404 or exc.status == 429:
            raise  # the knowledge base is missing, or the quota is spent: stop here
        return {"file": str(path), "error": f"{exc.type}: {exc.detail}"}
    return {"file": str(path), "documents": [r.model_dump(mode="json") for r in results]}


@reports_errors
def ask(
    tenant: TenantOpt,
    question: Annotated[str, typer.Argument()],
    kb: Annotated[
        list[str] | None, typer.Option("--kb", help="Knowledge base (repeat); all by default.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer a question from the tenant's knowledge bases, with citations (extractive when
    the tenant has no language model configured)."""

    async def go(platform: Platform) -> Any:
        handle = (await admin(platform).on_tenant(tenant)).kb
        return await handle.ask({"question": question, "knowledge_bases": kb or None})

    answer = run(go)
    if as_json:
        emit_json(answer)
        return
    if answer.note:
        note(answer.note)
    typer.echo(answer.answer)
    for c in answer.citations:
        where = f"chars {c.char_start}-{c.char_end}"
        typer.echo(
            f"  [{c.id}] {c.title or c.external_id or c.document_id} ({c.knowledge_base}, {where})"
        )


@app.command("search")
@reports_errors
def search(
    tenant: TenantOpt,
    query: Annotated[str, typer.Argument()],
    kb: Annotated[list[str] | None, typer.Option("--kb", help="Repeat; all by default.")] = None,
    top_k: Annotated[int | None, typer.Option(min=1, max=100)] = None,
    mode: Annotated[str | None, typer.Option(help="hybrid, dense or keyword.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the tenant's knowledge bases."""

    async def go(platform: Platform) -> Any:
        handle = (await admin(platform).on_tenant(tenant)).kb
        body = {"query": query, "knowledge_bases": kb or None, "top_k": top_k, "mode": mode}
        return await handle.search(body)

    result = run(go)
    if as_json:
        emit_json(result)
        return
    rows = [
        (f"{h.score:.3f}", h.knowledge_base, h.title or h.external_id or h.document_id, h.chunk)
        for h in result.hits
    ]
    typer.echo(table(("score", "kb", "document", "chunk"), rows))
