#!/usr/bin/env python3
# Vendored from the team's benchmark tools in /work/shared/bench/gen_shorts.py
# (sha256 20442fbd129332402b964df589a29c84b9b360138811508dbf3352efb2baf283);
# the reference figures it was used for are in /work/shared/bench/README.md.
# Kept verbatim below this comment so that scripts/bench.sh generates the
# same content as those figures; change the original, then copy it again.
"""Generate N synthetic "shorts" (Markdown + front matter) for benchmarks.

Deterministic: the same N, --seed and --end always give byte-identical files
(no wall-clock input; the date window ends at --end, not at "now").

Layout:  OUT/content/shorts/<slug>.md

Each short has front matter (TOML between +++ lines by default, or YAML
between --- lines with --front-matter yaml):
  title, slug, date (RFC 3339 with a UTC offset, spread over the 2 years
  before --end), summary (1-2 sentences), track (one of 5), tags (1-4 of ~40)
and a Markdown body of 300-600 words (whitespace-separated tokens, front
matter excluded) containing a heading, a list, inline code, a fenced code
block, a link and emphasis.

Usage:
  python3 gen_shorts.py N OUT [--seed 42] [--end 2026-11-01T00:00:00+00:00]
                              [--front-matter toml|yaml] [--clean]
"""

import argparse
import json
import random
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

TRACKS = ["llm", "retrieval", "time-series", "probability", "data-engineering"]

TAGS = [
    "attention", "kv-cache", "gqa", "transformers", "tokenization", "rlhf",
    "fine-tuning", "quantization", "embeddings", "vector-search", "bm25",
    "reranking", "hnsw", "chunking", "evaluation", "forecasting", "arima",
    "seasonality", "anomaly-detection", "state-space", "bayes", "sampling",
    "markov-chains", "monte-carlo", "variance", "distributions", "sql",
    "parquet", "streaming", "kafka", "spark", "duckdb", "etl", "schemas",
    "orchestration", "caching", "latency", "benchmarks", "python", "rust",
]

CONCEPTS = [
    "Grouped-Query Attention", "the KV cache", "speculative decoding",
    "rotary position embeddings", "byte-pair encoding", "LoRA adapters",
    "reciprocal rank fusion", "HNSW graphs", "BM25 saturation",
    "cross-encoder reranking", "late interaction", "product quantization",
    "exponential smoothing", "seasonal differencing", "the Kalman filter",
    "quantile forecasts", "change-point detection", "the beta distribution",
    "importance sampling", "the law of large numbers", "conjugate priors",
    "Thompson sampling", "the birthday paradox", "columnar storage",
    "idempotent pipelines", "slowly changing dimensions", "watermarks",
    "exactly-once delivery", "partition pruning", "backfills",
    "perplexity", "temperature sampling", "mixture of experts",
    "contrastive learning", "negative sampling", "Bloom filters",
    "reservoir sampling", "HyperLogLog", "write-ahead logs", "vector clocks",
]

TITLE_TEMPLATES = [
    "What is {c}?", "Why {c} matters", "{C} in one picture",
    "A two-minute guide to {c}", "When {c} goes wrong", "{C}, explained",
    "How {c} really works", "The one trick behind {c}",
    "{C} versus the obvious alternative", "Reading the math of {c}",
]

WORDS = (
    "the a model data query index latency memory cost signal noise error "
    "window batch token vector score rank prior sample update state cache "
    "throughput budget estimate trade-off baseline metric pipeline table "
    "partition schema stream event order step loss gradient layer head "
    "simple small large fast slow exact approximate stable noisy cheap "
    "useful hidden explicit implicit linear quadratic constant bounded "
    "uses keeps drops trades costs saves moves turns reads writes merges "
    "splits counts measures predicts ranks stores returns breaks fixes "
    "and or but so because when while if then also only often rarely "
    "in on of for with without under over between across per by to from"
).split()

CODE_SNIPPETS = [
    ("python", [
        "def score(query, doc, k1=1.2, b=0.75):",
        "    tf = doc.count(query)",
        "    return tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / 100))",
    ]),
    ("rust", [
        "fn ewma(xs: &[f64], alpha: f64) -> Vec<f64> {",
        "    let mut s = xs[0];",
        "    xs.iter().map(|x| { s = alpha * x + (1.0 - alpha) * s; s }).collect()",
        "}",
    ]),
    ("sql", [
        "SELECT track, count(*) AS n",
        "FROM shorts",
        "WHERE date >= now() - interval '7 days'",
        "GROUP BY track ORDER BY n DESC;",
    ]),
    ("bash", [
        "for f in content/shorts/*.md; do",
        "  head -n 8 \"$f\" | grep -q '^track' || echo \"missing track: $f\"",
        "done",
    ]),
]

LINKS = [
    ("the original paper", "https://arxiv.org/abs/2305.13245"),
    ("a longer write-up", "https://en.wikipedia.org/wiki/Okapi_BM25"),
    ("the documentation", "https://duckdb.org/docs/"),
    ("this explainer", "https://otexts.com/fpp3/"),
    ("the reference", "https://en.wikipedia.org/wiki/Kalman_filter"),
]

OFFSETS = [0, 0, 60, 120, -300, -240, -420, 330, 540, 600]  # minutes east of UTC


def slugify(text):
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s or "short"


def sentence(rng, lo, hi):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def paragraph(rng, n_words):
    out, count = [], 0
    while count < n_words:
        s = sentence(rng, 8, 18)
        out.append(s)
        count += len(s.split())
    return " ".join(out)


def body(rng, concept, target_words):
    lang, code = rng.choice(CODE_SNIPPETS)
    link_text, link_url = rng.choice(LINKS)
    ident = slugify(concept).replace("-", "_")[:24]
    intro = (
        f"*{concept[0].upper() + concept[1:]}* is easier than it looks. "
        f"Think of `{ident}` as the one knob that matters, and see "
        f"[{link_text}]({link_url}) for the full derivation. "
        + paragraph(rng, 40)
    )
    items = [
        f"- **{rng.choice(WORDS).capitalize()}**: {sentence(rng, 6, 12)}"
        for _ in range(rng.randint(3, 5))
    ]
    parts = [
        intro,
        "## The idea in brief",
        paragraph(rng, 50),
        "\n".join(items),
        f"```{lang}\n" + "\n".join(code) + "\n```",
        "## Why it matters",
    ]
    fixed = sum(len(p.split()) for p in parts)
    remaining = max(target_words - fixed, 0)
    tail = []
    while remaining > 0:
        n = min(remaining, rng.randint(50, 110))
        p = paragraph(rng, n)
        tail.append(p)
        remaining -= len(p.split())
    parts.extend(tail)
    text = "\n\n".join(parts) + "\n"
    # Trim the last paragraph so the total stays within 300-600 words.
    while len(text.split()) > 600 and tail:
        tail[-1] = " ".join(tail[-1].split()[:-10]).rstrip(".") + "."
        text = "\n\n".join(parts[: len(parts) - len(tail)] + tail) + "\n"
    return text


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)  # JSON basic strings are valid TOML


def front_matter(fmt, meta):
    tags = ", ".join(toml_str(t) for t in meta["tags"])
    if fmt == "toml":
        return (
            "+++\n"
            f"title = {toml_str(meta['title'])}\n"
            f"slug = {toml_str(meta['slug'])}\n"
            f"date = {meta['date']}\n"
            f"summary = {toml_str(meta['summary'])}\n"
            f"track = {toml_str(meta['track'])}\n"
            f"tags = [{tags}]\n"
            "+++\n"
        )
    return (
        "---\n"
        f"title: {toml_str(meta['title'])}\n"
        f"slug: {toml_str(meta['slug'])}\n"
        f"date: {meta['date']}\n"
        f"summary: {toml_str(meta['summary'])}\n"
        f"track: {toml_str(meta['track'])}\n"
        f"tags: [{tags}]\n"
        "---\n"
    )


def generate(n, out, seed, end, fmt, clean):
    rng = random.Random(seed)
    dest = Path(out) / "content" / "shorts"
    dest.mkdir(parents=True, exist_ok=True)
    if clean:
        for old in dest.glob("*.md"):
            old.unlink()
    span = int(timedelta(days=730).total_seconds())
    seen = {}
    total_words = 0
    for _ in range(n):
        concept = rng.choice(CONCEPTS)
        tmpl = rng.choice(TITLE_TEMPLATES)
        title = tmpl.format(c=concept, C=concept[0].upper() + concept[1:])
        base = slugify(title)
        seen[base] = seen.get(base, 0) + 1
        slug = base if seen[base] == 1 else f"{base}-{seen[base]}"
        tz = timezone(timedelta(minutes=rng.choice(OFFSETS)))
        when = (end - timedelta(seconds=rng.randrange(span))).astimezone(tz)
        when = when.replace(second=0, microsecond=0)
        summary = " ".join(sentence(rng, 10, 20) for _ in range(rng.randint(1, 2)))
        meta = {
            "title": title,
            "slug": slug,
            "date": when.isoformat(),
            "summary": summary,
            "track": rng.choice(TRACKS),
            "tags": rng.sample(TAGS, rng.randint(1, 4)),
        }
        text = body(rng, concept, rng.randint(300, 600))
        total_words += len(text.split())
        (dest / f"{slug}.md").write_text(front_matter(fmt, meta) + text, encoding="utf-8")
    return dest, total_words


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int, help="number of shorts to generate")
    ap.add_argument("out", help="output root; files go to OUT/content/shorts/")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end", default="2026-11-01T00:00:00+00:00",
                    help="end of the 2-year date window (RFC 3339)")
    ap.add_argument("--front-matter", choices=["toml", "yaml"], default="toml")
    ap.add_argument("--clean", action="store_true",
                    help="delete existing *.md in OUT/content/shorts first")
    args = ap.parse_args(argv)
    if args.n < 0:
        ap.error("n must be >= 0")
    end = datetime.fromisoformat(args.end)
    if end.tzinfo is None:
        ap.error("--end needs a UTC offset, e.g. 2026-11-01T00:00:00+00:00")
    dest, words = generate(args.n, args.out, args.seed, end, args.front_matter, args.clean)
    avg = words / args.n if args.n else 0
    print(f"wrote {args.n} shorts to {dest} (avg {avg:.0f} body words)", file=sys.stderr)


if __name__ == "__main__":
    main()
