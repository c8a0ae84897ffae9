"""``deskpilot eval retrieval DIR``: retrieval quality on a BEIR-layout dataset, measured through
the real ingestion and search in a scratch tenant that is deleted afterwards."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from deskpilot.cli._common import JsonOpt, admin, reports_errors, run
from deskpilot.cli._output import note, table
from deskpilot.cli.kb import config_json
from deskpilot.platform import Platform
from deskpilot.rag import EVAL_MODES as MODES
from deskpilot.rag import KnowledgeBaseCreate, Report
from deskpilot.rag import evaluate_retrieval as evaluate
from deskpilot.rag import load_dataset as load
from deskpilot.tenancy import TenantCreate

app = typer.Typer(help="Measure retrieval quality on your own data.", no_args_is_help=True)


@app.command("retrieval")
@reports_errors
def retrieval(
    directory: Annotated[Path, typer.Argument(help="corpus.jsonl, queries.jsonl, qrels/*.tsv")],
    queries: Annotated[Path | None, typer.Option(help="Another queries file.")] = None,
    qrels: Annotated[Path | None, typer.Option(help="Another qrels file.")] = None,
    tier: Annotated[str, typer.Option(help="The scratch tenant's tier.")] = "enterprise",
    config: Annotated[
        str | None,
        typer.Option(help="JSON overrides of the knowledge base's 'rag' configuration to try."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """nDCG@10, Recall@10 and MRR@10 of keyword, dense and hybrid retrieval, ingestion speed
    and query latency. With --json the last line printed is one JSON object."""
    dataset = load(directory, queries=queries, qrels=qrels)
    overrides = config_json(config)

    async def go(platform: Platform) -> Report:
        operator = admin(platform)
        slug = f"eval-{secrets.token_hex(6)}"
        await operator.create_tenant(TenantCreate(tenant_id=slug, display_name=slug, tier=tier))
        try:
            handle = (await operator.on_tenant(slug)).kb
            await handle.create(KnowledgeBaseCreate(name="eval", config=overrides))
            return await evaluate(
                handle, "eval", dataset, settle=platform.rag.background.idle, progress=_progress()
            )
        finally:
            await operator.delete_tenant(slug)

    report = run(go)
    if as_json:  # one line: scripts read the last line printed
        typer.echo(json.dumps(report.as_json()))
        return
    rows = [
        (m, *(f"{report.metrics[m][k]:.4f}" for k in ("ndcg@10", "recall@10", "mrr@10")))
        for m in MODES
    ]
    typer.echo(table(("mode", "nDCG@10", "Recall@10", "MRR@10"), rows))
    typer.echo(
        f"{report.documents} documents ({report.chunks} chunks) at {report.docs_per_s:.1f} docs/s "
        f"({report.chunks_per_s:.1f} chunks/s); {report.queries} queries, "
        f"hybrid p50 {report.query_p50_ms:.1f} ms"
    )
    if report.skipped:
        note(
            f"{len(report.skipped)} documents were refused by ingestion and left out: "
            + ", ".join(report.skipped[:10])
        )


def _progress() -> Any:
    last: dict[str, int] = {}

    def show(stage: str, done: int, total: int) -> None:
        step = max(1, total // 20)
        if done == total or done - last.get(stage, 0) >= step:
            last[stage] = done
            note(f"{stage}: {done}/{total}")

    return show
