"""Is hybrid retrieval at least as good as the better of its legs, on every evaluation set?

    .venv/bin/python bench/retrieval_fusion.py [--sets stackfaq,issues] [--limit N]

Two sets from ``../shared/eval`` (real third-party data):

* ``stackfaq``: the FAQ retrieval set as given (paraphrased questions; the dense leg wins).
* ``issues``: the NLBSE'24 GitHub issues of ``triage/issue_types``, each issue's title asked
  against every issue's body (known-item search; titles quote error messages and identifiers,
  so the keyword leg wins). Built here in BEIR layout, in a temporary folder.

Each set is ingested through the platform into a scratch tenant (deleted afterwards) and every
query is run in ``keyword``, ``dense`` and ``hybrid`` mode; hybrid results carry both legs'
scores for every candidate, from which the usual alternatives are computed on the very same
candidates in the same run: reciprocal rank fusion (k = 60) and min-max normalised convex
combinations with fixed weights. nDCG@10 at document level.

Prints one JSON object per set, then a summary as the last line:
``{"<set>": {"hybrid": ..., "best_leg": ..., "hybrid_minus_best_leg": ...}, ...,
"hybrid_at_least_best_leg_everywhere": true|false}``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVAL = ROOT.parent / "shared" / "eval"
CANDIDATES = 100


def issues_set(target: Path, limit: int | None) -> Path:
    csv.field_size_limit(sys.maxsize)
    with (EVAL / "triage/issue_types/train.csv").open(encoding="utf-8", newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if len(r["body"].strip()) > 40 and len(r["title"].strip()) > 10
        ]
    rows = rows[:limit] if limit else rows
    (target / "qrels").mkdir(parents=True)
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as corpus:
        for n, row in enumerate(rows):
            corpus.write(json.dumps({"_id": f"d{n}", "title": "", "text": row["body"]}) + "\n")
    with (target / "queries.jsonl").open("w", encoding="utf-8") as queries:
        for n, row in enumerate(rows):
            queries.write(json.dumps({"_id": f"q{n}", "text": row["title"]}) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"q{n}\td{n}\t1" for n in range(len(rows))]
    (target / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def documents(hits: Sequence[Any], score: Callable[[Any], float]) -> list[str]:
    ranked = sorted(hits, key=lambda h: -score(h))
    return list(dict.fromkeys(h.external_id for h in ranked))


def rrf(keyword: Sequence[Any], dense: Sequence[Any], k: int = 60) -> list[str]:
    scores: dict[tuple[str, int], float] = {}
    by_key: dict[tuple[str, int], Any] = {}
    for hits in (keyword, dense):
        for rank, hit in enumerate(hits):
            key = (hit.document_id, hit.chunk)
            scores[key] = scores.get(key, 0.0) + 1 / (k + rank + 1)
            by_key[key] = hit
    ranked = sorted(scores, key=lambda key: -scores[key])
    return list(dict.fromkeys(by_key[key].external_id for key in ranked))


def minmax(hits: Sequence[Any], weight: float) -> list[str]:
    dense = [h.dense or 0.0 for h in hits]
    keyword = [h.keyword or 0.0 for h in hits]

    def norm(values: list[float]) -> list[float]:
        low, high = min(values), max(values)
        return [(v - low) / (high - low) if high > low else 0.0 for v in values]

    fused = [weight * d + (1 - weight) * w for d, w in zip(norm(dense), norm(keyword), strict=True)]
    order = sorted(range(len(hits)), key=lambda i: -fused[i])
    return list(dict.fromkeys(hits[i].external_id for i in order))


async def measure(platform: Any, name: str, directory: Path) -> dict[str, Any]:
    from deskpilot.core.context import OperatorContext
    from deskpilot.rag import evaluate_retrieval, load_dataset
    from deskpilot.rag.evaluation import ndcg
    from deskpilot.tenancy import TenantCreate

    dataset = load_dataset(directory)
    admin = platform.admin(OperatorContext(principal="bench"))
    slug = f"fusion-{secrets.token_hex(5)}"
    await admin.create_tenant(TenantCreate(tenant_id=slug, display_name=slug, tier="enterprise"))
    try:
        kb = (await admin.on_tenant(slug)).kb
        await kb.create({"name": "eval"})
        report = await evaluate_retrieval(kb, "eval", dataset, settle=platform.rag.background.idle)
        rankings: dict[str, list[float]] = {"rrf": [], "minmax_0.5": [], "minmax_0.9": []}
        for query_id, question in dataset.queries.items():
            relevant = dataset.qrels[query_id]
            body = {"query": question, "top_k": CANDIDATES}
            fused = (await kb.search({**body, "mode": "hybrid"})).hits
            keyword = (await kb.search({**body, "mode": "keyword"})).hits
            dense = (await kb.search({**body, "mode": "dense"})).hits
            rankings["rrf"].append(ndcg(rrf(keyword, dense), relevant))
            rankings["minmax_0.5"].append(ndcg(minmax(fused, 0.5), relevant))
            rankings["minmax_0.9"].append(ndcg(minmax(fused, 0.9), relevant))
    finally:
        await admin.delete_tenant(slug)
    legs = {mode: report.metrics[mode]["ndcg@10"] for mode in ("keyword", "dense")}
    hybrid = report.metrics["hybrid"]["ndcg@10"]
    return {
        "set": name,
        "documents": report.documents,
        "queries": report.queries,
        "keyword": legs["keyword"],
        "dense": legs["dense"],
        "hybrid": hybrid,
        **{k: round(sum(v) / len(v), 4) for k, v in rankings.items()},
        "best_leg": max(legs.values()),
        "hybrid_minus_best_leg": round(hybrid - max(legs.values()), 4),
    }


async def main(args: argparse.Namespace) -> None:
    from deskpilot.core.settings import Settings
    from deskpilot.platform import Platform

    sets = args.sets.split(",")
    with tempfile.TemporaryDirectory(prefix="dp-fusion-") as scratch:
        settings = Settings.model_validate(
            {"DESKPILOT_HOME": Path(scratch) / "home", "DESKPILOT_LOG_LEVEL": "WARNING"}
        )
        directories = {"stackfaq": EVAL / "retrieval/stackfaq"}
        if "issues" in sets:
            directories["issues"] = issues_set(Path(scratch) / "issues", args.limit)
        platform = await Platform.open(settings)
        try:
            results = {}
            for name in sets:
                print(f"measuring {name}", file=sys.stderr, flush=True)
                results[name] = await measure(platform, name, directories[name])
                print(json.dumps(results[name]), flush=True)
        finally:
            await platform.close()
    summary: dict[str, Any] = {
        name: {k: r[k] for k in ("hybrid", "best_leg", "hybrid_minus_best_leg", "rrf")}
        for name, r in results.items()
    }
    summary["hybrid_at_least_best_leg_everywhere"] = all(
        r["hybrid_minus_best_leg"] >= 0 for r in results.values()
    )
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="stackfaq,issues")
    parser.add_argument("--limit", type=int, default=None, help="issues: first N only")
    sys.path.insert(0, str(ROOT / "src"))
    asyncio.run(main(parser.parse_args()))
