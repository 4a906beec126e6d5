#!/usr/bin/env python3
"""Helper for scripts/bench.sh: the parsing, checks, medians and the table.

Standard library only. Subcommands:

  site-config SRC DEST [--smtp-port P --pool N | --outbox DIR]
      DEST = the repo's sample config SRC with `[feeds] limit = 0` and the
      [delivery] tables replaced by the given transport.
  subscribers N FILE        CSV of N active subscribers of every track.
  record CSV --bench B --tool T --n N --variant V --run R --time TIMEFILE
         [--stdout FILE] [--sink FILE] [--expect KEY=VALUE ...]
      Appends one row to CSV from `/usr/bin/time -v` output, the command's
      stdout (shorts' summary line) and smtp-sink's `-c` counters; exits 1
      naming the mismatch if an --expect does not hold.
  dry-run FILE N            checks `digest send --dry-run` output: N messages,
                            each with at least one short; prints the count.
  edit-served CSV FILE URL --n N --run R
      With `shorts serve` and `shorts schedule` running, gives FILE (a
      short) a new title and polls URL (its page) until the new title is
      served; appends the time from the write to that answer as wall_s.
  report CSV FACTS OUT      writes the Markdown results (and prints them).
"""

import argparse
import collections
import csv
import re
import statistics
import sys
import time
import urllib.request
from pathlib import Path

COLUMNS = [
    "bench", "tool", "n", "variant", "run", "wall_s", "user_s", "sys_s",
    "max_rss_kib", "published", "written", "unchanged", "removed", "sent",
    "skipped", "failed", "sink_msgs", "added", "updated", "bad",
]

BUILT = re.compile(
    r"built (?P<n>\d+) shorts? \((?:(?P<all>all) published|(?P<published>\d+) published[^)]*)\)"
    r" into .*?: (?P<written>\d+) files? written, (?P<unchanged>\d+) unchanged, "
    r"(?P<removed>\d+) removed"
)
IMPORTED = re.compile(
    r"imported .*?: (?P<added>\d+) added, (?P<updated>\d+) updated, "
    r"(?P<unchanged>\d+) unchanged, (?P<bad>\d+) bad rows?"
)
# One line per digest sent ("digest #3: …", "daily digest #9 (#12 in the
# ledger): …"); a run that sends several has their counts summed.
SENT = re.compile(
    r"digest #\d+(?: \(#\d+ in the ledger\))?(?: \(resumed\))?: (?P<sent>\d+) sent, "
    r"(?P<skipped>\d+) skipped.*?, (?P<failed>\d+) failed"
)


def die(message):
    print(f"bench_report: {message}", file=sys.stderr)
    sys.exit(1)


def cadences_rows(runs, subs_large, single_wall):
    """B4 again with the subscribers split over three cadences (weekly,
    daily, instant; one message each): the rate against B4's single-cadence
    send of the same number of messages, and the memory bound."""
    dig = runs.pick("b4-cadences", "shorts", n=subs_large)
    if not dig:
        return []
    wall = runs.median(dig, "wall_s")
    rss = mib(runs.median(dig, "max_rss_kib"))
    vs_one = ratio(single_wall, wall)
    return [
        f"| `digest send`, {int(subs_large):,} subscribers over 3 cadences (3 digests): wall s | "
        f"{fmt(wall)} | | | | |",
        f"| … msgs/s, ratio to one cadence | {fmt(None if not wall else int(subs_large) / wall, 0)} | "
        f"{fmt(vs_one, 2)} | | ≥ 0.90 | {met(vs_one, '>=', 0.90)} |",
        f"| … peak RSS MiB | {fmt(rss, 1)} | | | ≤ 100 | {met(rss, '<=', 100)} |",
    ]


def postgres_rows(runs, subs_large, sqlite_wall):
    """B6: B4's send with the state in PostgreSQL, by one sender and by
    three sharing the digest; the reference is B4's SQLite send (one
    sender, 4 connections) of the same run, ratio = PostgreSQL / SQLite
    wall time (below 1 is faster)."""
    rows = []
    imp = runs.pick("b6-import", "shorts", n=subs_large)
    if imp:
        rows.append(f"| PostgreSQL: `subscribers import`, {int(subs_large):,} rows: wall s | "
                    f"{fmt(runs.median(imp, 'wall_s'))} | | | | |")
    for senders in (1, 3):
        dig = runs.pick("b6-digest", "shorts", variant=f"senders{senders}", n=subs_large)
        if not dig:
            continue
        wall = runs.median(dig, "wall_s")
        who = "1 sender" if senders == 1 else f"{senders} senders at once"
        rows += [
            f"| PostgreSQL: `digest send`, {int(subs_large):,} subscribers, {who} × 4 "
            f"connections: wall s (reference: SQLite, 1 sender) | {fmt(wall)} | "
            f"{fmt(sqlite_wall)} | {fmt(ratio(wall, sqlite_wall))} | | |",
            f"| … msgs/s | {fmt(None if not wall else int(subs_large) / wall, 0)} | "
            f"{fmt(None if not sqlite_wall else int(subs_large) / sqlite_wall, 0)} | | | |",
            f"| … peak RSS MiB (of the largest sender) | "
            f"{fmt(mib(runs.median(dig, 'max_rss_kib')), 1)} | | | ≤ 100 | "
            f"{met(mib(runs.median(dig, 'max_rss_kib')), '<=', 100)} |",
        ]
    return rows


# ---------------------------------------------------------------- site-config

def site_config(args):
    """Rewrites the sample config line by line (no TOML writer in the stdlib),
    then parses the result with tomllib so a mistake shows here, not as a
    confusing failure of the benchmarked command."""
    out, section, saw_limit = [], None, False
    for line in Path(args.src).read_text(encoding="utf-8").splitlines():
        header = re.match(r"\s*\[{1,2}\s*([A-Za-z0-9_.-]+)\s*\]{1,2}", line)
        if header:
            section = header.group(1)
        # Drop the sample's [delivery] tables, with the commented-out keys
        # inside them; ours are appended below.
        if section and (section == "delivery" or section.startswith("delivery.")):
            continue
        if section == "feeds" and re.match(r"\s*limit\s*=", line):
            line, saw_limit = "limit = 0                          # bench: every item in every feed, as Hugo does", True
        out.append(line)
    if not saw_limit:
        if not any(re.match(r"\s*\[feeds\]", l) for l in out):
            out += ["", "[feeds]"]
        idx = max(i for i, l in enumerate(out) if re.match(r"\s*\[feeds\]", l))
        out.insert(idx + 1, "limit = 0")
    out.append("")
    if args.outbox:
        out += ["[delivery]", 'transport = "outbox"', f'outbox_dir = "{args.outbox}"']
    elif args.smtp_port:
        out += [
            "[delivery]", 'transport = "smtp"', "", "[delivery.smtp]",
            'host = "127.0.0.1"', f"port = {args.smtp_port}", 'tls = "none"',
            f"pool_size = {args.pool}", "rate_limit = 0",
        ]
    text = "\n".join(out) + "\n"
    try:
        import tomllib
        parsed = tomllib.loads(text)
    except ImportError:  # Python < 3.11: the benchmarked `shorts` still validates it
        parsed = None
    except Exception as e:  # noqa: BLE001 - any parse error is fatal here
        die(f"site-config: the derived config does not parse: {e}")
    if parsed is not None and parsed.get("feeds", {}).get("limit") != 0:
        die("site-config: [feeds] limit is not 0 in the derived config")
    Path(args.dest).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- subscribers

def subscribers(args):
    # Empty `tracks` = every track (README: "no --tracks means every track").
    with open(args.file, "w", encoding="utf-8", newline="") as f:
        f.write("email,name,tracks,status\n")
        for i in range(args.n):
            f.write(f"reader{i:06d}@bench.invalid,Reader {i},,active\n")


# ---------------------------------------------------------------- record

def parse_time_v(path):
    v = {}
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        key, _, val = line.strip().rpartition(": ")
        v[key] = val
    try:
        elapsed = v["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
        wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(elapsed)))
        return {
            "wall_s": f"{wall:.2f}",
            "user_s": v["User time (seconds)"],
            "sys_s": v["System time (seconds)"],
            "max_rss_kib": v["Maximum resident set size (kbytes)"],
        }
    except KeyError as e:
        die(f"{path}: not /usr/bin/time -v output (missing {e})")


def sink_count(path):
    """smtp-sink -c rewrites `sess=N quit=N mesg=N` after \\r; take the last."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    counts = re.findall(r"mesg=(\d+)", text)
    return counts[-1] if counts else "0"


def append_row(path, row):
    """Appends `row` to the runs CSV at `path`, with the header if it is new."""
    new = not Path(path).exists()
    with open(path, "a", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerow(row)


def record(args):
    row = {c: "" for c in COLUMNS}
    row.update(bench=args.bench, tool=args.tool, n=args.n, variant=args.variant, run=args.run)
    row.update(parse_time_v(args.time))
    if args.stdout:
        text = Path(args.stdout).read_text(encoding="utf-8", errors="replace")
        for rx in (BUILT, IMPORTED):
            m = rx.search(text)
            if m:
                row.update({k: v for k, v in m.groupdict().items() if k in COLUMNS and v})
                if m.groupdict().get("all"):
                    row["published"] = m.group("n")
        sends = list(SENT.finditer(text))
        for key in ("sent", "skipped", "failed"):
            if sends:
                row[key] = str(sum(int(m.group(key)) for m in sends))
    if args.sink:
        row["sink_msgs"] = sink_count(args.sink)
    append_row(args.csv, row)
    extra = " ".join(f"{k}={row[k]}" for k in ("written", "sent", "failed", "sink_msgs") if row[k])
    print(f"    {args.bench} {args.tool} n={args.n} {args.variant} run={args.run}: "
          f"{row['wall_s']} s, {int(row['max_rss_kib']) / 1024:.1f} MiB {extra}".rstrip())
    for exp in args.expect:
        key, _, want = exp.partition("=")
        if row.get(key, "") != want:
            die(f"{args.bench} {args.tool} {args.variant} run {args.run}: expected "
                f"{key}={want}, got {key}={row.get(key) or '(not found in the output)'}")


# ---------------------------------------------------------------- edit-served

def served_text(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def edit_served(args):
    """The writer's loop under `schedule`: save, then look. Polls every 5 ms,
    so the figure is at most that much late."""
    path = Path(args.file)
    text = path.read_text(encoding="utf-8")
    marker = f"Edited for run {args.run} {time.time_ns()}"
    edited = re.sub(r'^title = ".*"$', f'title = "{marker}"', text, count=1, flags=re.M)
    if edited == text:
        die(f"edit-served: no `title = \"…\"` line in {path}")
    if not served_text(args.url):
        die(f"edit-served: nothing served at {args.url} before the edit")
    started = time.monotonic()
    path.write_text(edited, encoding="utf-8")
    while marker not in served_text(args.url):
        if time.monotonic() - started > 60:
            die(f"edit-served: {args.url} does not show the edit after 60 s")
        time.sleep(0.005)
    seconds = time.monotonic() - started
    row = {c: "" for c in COLUMNS}
    row.update(bench="b2-served", tool="shorts", n=args.n, variant="schedule", run=args.run,
               wall_s=f"{seconds:.3f}")
    append_row(args.csv, row)
    print(f"    b2-served shorts n={args.n} schedule run={args.run}: {seconds * 1000:.0f} ms")


# ---------------------------------------------------------------- dry-run

def dry_run(args):
    text = Path(args.file).read_text(encoding="utf-8", errors="replace")
    m = re.search(r"would carry (\d+) shorts?", text)
    if not m or int(m.group(1)) == 0:
        die("dry run: the digest carries no shorts (is --period inside the content's dates?)")
    counts = [int(x) for x in re.findall(r"would send .*\((\d+) shorts?\)", text)]
    if len(counts) != args.n or min(counts, default=0) == 0:
        die(f"dry run: {len(counts)} messages would go out, expected {args.n}, each with shorts")
    print(m.group(1))


# ---------------------------------------------------------------- report

def load_facts(path):
    facts = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if "=" in line:
            k, _, v = line.partition("=")
            facts[k.strip()] = v.strip()
    return facts


class Runs:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.rows = [r for r in csv.DictReader(f) if r["run"] != "warmup"]

    def pick(self, bench, tool, variant=None, n=None):
        return [r for r in self.rows if r["bench"] == bench and r["tool"] == tool
                and (variant is None or r["variant"] == variant)
                and (n is None or r["n"] == str(n))]

    def median(self, rows, key):
        xs = [float(r[key]) for r in rows if r[key] != ""]
        return statistics.median(xs) if xs else None


def fmt(x, digits=2):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def mib(kib):
    return None if kib is None else kib / 1024


def ratio(a, b):
    return None if a is None or not b else a / b


def met(value, op, target):
    if value is None:
        return "–"
    ok = value <= target if op == "<=" else value >= target
    return "yes" if ok else "**no**"


def report(args):
    runs, facts = Runs(args.csv), load_facts(args.facts)
    if facts.get("only"):
        # The steps not run have no facts: their cells read 0 or –.
        facts = collections.defaultdict(lambda: "0", facts)
    n_main, n_small, n_large = facts["n_main"], facts["n_small"], facts.get("n_large")
    subs, subs_large = facts["n_subs"], facts.get("n_subs_large")
    k = lambda n: f"{int(n):,}"  # noqa: E731
    lines = [
        "# shorts benchmarks",
        "",
        f"{facts['date']} · {facts['nproc']} CPUs ({facts['cpu']}) · {facts['mem']} RAM · "
        f"Linux {facts['kernel']} · {facts['hugo']} · {facts['shorts']} "
        f"(`{facts['git']}`, binary sha256 {facts['bin_sha']}) · RUNS={facts['runs']} "
        f"after {facts['warmup']} warm-up; cells are medians, ratio = shorts / reference",
        "",
    ]
    if facts.get("only", "0") != "0":
        lines += [f"**ONLY={facts['only']}: the other steps were not run; their rows "
                  "are empty.**", ""]
    if facts.get("quick") == "1":
        lines += ["**QUICK=1: reduced sizes; the targets are for the full sizes and "
                  "are not meaningful here.**", ""]
    head = ["| benchmark | shorts | reference | ratio | target | met? |",
            "| --- | ---: | ---: | ---: | --- | --- |"]

    # B1: build vs Hugo
    s = runs.pick("b1-build", "shorts", n=n_main)
    h = runs.pick("b1-build", "hugo", n=n_main)
    sw, hw = runs.median(s, "wall_s"), runs.median(h, "wall_s")
    sm, hm = mib(runs.median(s, "max_rss_kib")), mib(runs.median(h, "max_rss_kib"))
    rw, rm = ratio(sw, hw), ratio(sm, hm)
    f_ = runs.pick("b1-build", "hugo-site", n=n_main)
    fw, fm = runs.median(f_, "wall_s"), mib(runs.median(f_, "max_rss_kib"))
    rfw, rfm = ratio(sw, fw), ratio(sm, fm)
    lines += [f"## B1 build, {k(n_main)} shorts: `shorts build` (feed limit 0) vs "
              "`hugo --quiet` (highlighting off) writing the RSS feeds only, and "
              "building the whole site (`hugo_full_site.sh`: pages, lists, RSS)", ""] + head + [
        f"| wall s vs Hugo RSS only | {fmt(sw)} | {fmt(hw)} | {fmt(rw)} | ≤ 0.5 | {met(rw, '<=', 0.5)} |",
        f"| wall s vs Hugo whole site | {fmt(sw)} | {fmt(fw)} | {fmt(rfw)} | ≤ 0.2 | {met(rfw, '<=', 0.2)} |",
        f"| peak RSS MiB vs Hugo RSS only | {fmt(sm, 1)} | {fmt(hm, 1)} | {fmt(rm)} | ≤ 0.25 | {met(rm, '<=', 0.25)} |",
        f"| peak RSS MiB vs Hugo whole site | {fmt(sm, 1)} | {fmt(fm, 1)} | {fmt(rfm)} | | |",
        f"| output MiB | {fmt(int(facts['b1_shorts_bytes']) / 2**20, 1)} | "
        f"{fmt(int(facts['b1_hugo_bytes']) / 2**20, 1)} | | | |",
        f"| output files | {k(facts['b1_shorts_files'])} | {k(facts['b1_hugo_files'])} | | | |",
        f"| output MiB, files: Hugo whole site | | "
        f"{fmt(int(facts.get('b1_hugo_site_bytes', 0)) / 2**20, 1)}, "
        f"{k(facts.get('b1_hugo_site_files', '0'))} | | | |",
        "",
        "shorts writes RSS, Atom and JSON Feed for the site, each track and each tag, "
        "plus every web page; Hugo only the RSS feeds.",
        "",
    ]

    # B1: what highlighting costs
    on = runs.median(runs.pick("b1-highlight", "shorts", variant="highlighted", n=n_main), "wall_s")
    off = runs.median(runs.pick("b1-highlight", "shorts", variant="plain", n=n_main), "wall_s")
    rh = ratio(on, off)
    lines += [f"### Highlighting code, {k(n_main)} shorts parsed from nothing "
              "(no output, no cache of parsed shorts)", ""] + head + [
        f"| wall s, `highlight_code` on vs off | {fmt(on)} | {fmt(off)} | {fmt(rh)} | ≤ 1.3 | "
        f"{met(rh, '<=', 1.3)} |", "",
        "Hugo's own highlighting makes its build about 2.7× slower on this site.", ""]

    # B1: growth
    lines += ["### How the build grows (shorts alone)", "",
              "| shorts | runs | wall s | s per 1,000 shorts | peak RSS MiB |",
              "| ---: | ---: | ---: | ---: | ---: |"]
    walls = {}
    for n, bench in ((n_small, "b1-growth"), (n_main, "b1-build"), (n_large, "b1-growth")):
        if not n:
            continue
        rows = runs.pick(bench, "shorts", n=n)
        w = runs.median(rows, "wall_s")
        walls[n] = w
        per = None if w is None else w / (int(n) / 1000)
        lines.append(f"| {k(n)} | {len(rows)} | {fmt(w)} | {fmt(per, 3)} | "
                     f"{fmt(mib(runs.median(rows, 'max_rss_kib')), 1)} |")
    lines.append("")
    if n_large and walls.get(n_large) is not None:
        scale = int(n_large) / int(n_main)
        target = 1.1 * scale
        g = ratio(walls[n_large], walls[n_main])
        lines += head + [
            f"| {k(n_large)} / {k(n_main)} build time | {fmt(g)} | {fmt(scale, 0)}× the shorts | | "
            f"≤ {fmt(target, 1)} | {met(g, '<=', target)} |", ""]
    else:
        lines += [f"({k(n_large) if n_large else 'the large'} build skipped: SKIP_100K=1)", ""]

    # B2: no-change rebuild
    r = runs.pick("b2-rebuild", "shorts", variant="nochange", n=n_main)
    e = runs.pick("b2-rebuild", "shorts", variant="edit", n=n_main)
    ew = runs.median(e, "wall_s")
    sv = runs.median(runs.pick("b2-served", "shorts", variant="schedule", n=n_main), "wall_s")
    efrac = ratio(ew, sw)
    rw2 = runs.median(r, "wall_s")
    written = max((int(x["written"]) for x in r if x["written"] != ""), default=None)
    unchanged = runs.median(r, "unchanged")
    frac = ratio(rw2, sw)
    lines += [f"## B2 no-change rebuild, {k(n_main)} shorts", ""] + head + [
        f"| files written (max over runs) | {fmt(written, 0)} | | | 0 | "
        f"{met(written, '<=', 0)} |",
        f"| files unchanged | {fmt(unchanged, 0)} | | | | |",
        f"| wall s (reference: full build) | {fmt(rw2)} | {fmt(sw)} | {fmt(frac)} | ≤ 0.30 | "
        f"{met(frac, '<=', 0.30)} |",
        f"| peak RSS MiB (reference: full build) | {fmt(mib(runs.median(r, 'max_rss_kib')), 1)} | "
        f"{fmt(sm, 1)} | {fmt(ratio(mib(runs.median(r, 'max_rss_kib')), sm))} | | |",
        f"| one title edited: wall s (reference: full build) | {fmt(ew)} | {fmt(sw)} | "
        f"{fmt(efrac)} | ≤ 0.05 | {met(efrac, '<=', 0.05)} |",
        f"| one title edited: files written (median) | {fmt(runs.median(e, 'written'), 0)} | | | | |",
        f"| one title edited under `schedule`: ms until `serve` shows it | "
        f"{fmt(None if sv is None else sv * 1000, 0)} | | | ≤ 1,000 | "
        f"{met(None if sv is None else sv * 1000, '<=', 1000)} |",
        "",
    ]

    # B3: digest vs smtp-source
    lines += [f"## B3 digest send, {k(subs)} subscribers → smtp-sink vs `smtp-source -d -F` "
              f"of the same message ({k(facts['msg_bytes'])} bytes, "
              f"{facts['digest_shorts']} shorts from {k(facts['digest_content'])} generated)",
              "", "| benchmark | shorts | reference | ratio | target | met? |",
              "| --- | ---: | ---: | ---: | --- | --- |"]
    for conn in ("1", "4"):
        a = runs.pick("b3-digest", "shorts", variant=f"conn{conn}")
        b = runs.pick("b3-digest", "smtp-source", variant=f"conn{conn}")
        aw, bw = runs.median(a, "wall_s"), runs.median(b, "wall_s")
        ar = None if not aw else int(subs) / aw
        br = None if not bw else int(subs) / bw
        rr = ratio(ar, br)
        lines += [
            f"| msgs/s, {conn} connection{'s' if conn != '1' else ''} | {fmt(ar, 0)} | "
            f"{fmt(br, 0)} | {fmt(rr)} | ≥ 0.80 | {met(rr, '>=', 0.80)} |",
            f"| wall s, {conn} connection{'s' if conn != '1' else ''} | {fmt(aw)} | "
            f"{fmt(bw)} | | | |",
            f"| shorts peak RSS MiB, {conn} connection{'s' if conn != '1' else ''} | "
            f"{fmt(mib(runs.median(a, 'max_rss_kib')), 1)} | | | | |",
        ]
    lines += ["", "shorts' rate is subscribers / wall time of the whole `digest send` "
              "(start-up, content, ledger included); every run started from the same "
              "imported database, and the sink counted every message. smtp-sink offers "
              "PIPELINING: shorts sends each envelope in one write (two round trips a "
              "message), smtp-source command by command (four).", ""]

    # B4: scale
    lines += ["## B4 scale", ""]
    if subs_large:
        imp = runs.pick("b4-import", "shorts", n=subs_large)
        dig = runs.pick("b4-digest", "shorts", n=subs_large)
        dw = runs.median(dig, "wall_s")
        dm = mib(runs.median(dig, "max_rss_kib"))
        lines += head + [
            f"| `subscribers import`, {k(subs_large)} rows: wall s | "
            f"{fmt(runs.median(imp, 'wall_s'))} | | | | |",
            f"| `subscribers import`, {k(subs_large)} rows: peak RSS MiB | "
            f"{fmt(mib(runs.median(imp, 'max_rss_kib')), 1)} | | | | |",
            f"| `digest send`, {k(subs_large)} subscribers, 4 connections: wall s | "
            f"{fmt(dw)} | | | | |",
            f"| … msgs/s | {fmt(None if not dw else int(subs_large) / dw, 0)} | | | | |",
            f"| … peak RSS MiB | {fmt(dm, 1)} | | | ≤ 100 | {met(dm, '<=', 100)} |",
        ]
        lines += cadences_rows(runs, subs_large, dw)
        lines += postgres_rows(runs, subs_large, dw) + [""]
    else:
        lines += ["(skipped: SKIP_100K=1)", ""]
    lines += ["Raw runs: `target/bench/runs.csv`; logs and scratch sites: "
              f"`{facts['bench_dir']}`.", ""]
    text = "\n".join(lines)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("site-config")
    p.add_argument("src")
    p.add_argument("dest")
    p.add_argument("--smtp-port", type=int)
    p.add_argument("--pool", type=int, default=1)
    p.add_argument("--outbox")
    p.set_defaults(func=site_config)
    p = sub.add_parser("subscribers")
    p.add_argument("n", type=int)
    p.add_argument("file")
    p.set_defaults(func=subscribers)
    p = sub.add_parser("record")
    p.add_argument("csv")
    for opt in ("--bench", "--tool", "--n", "--variant", "--run", "--time"):
        p.add_argument(opt, required=True)
    p.add_argument("--stdout")
    p.add_argument("--sink")
    p.add_argument("--expect", action="append", default=[])
    p.set_defaults(func=record)
    p = sub.add_parser("dry-run")
    p.add_argument("file")
    p.add_argument("n", type=int)
    p.set_defaults(func=dry_run)
    p = sub.add_parser("edit-served")
    p.add_argument("csv")
    p.add_argument("file")
    p.add_argument("url")
    p.add_argument("--n", required=True)
    p.add_argument("--run", required=True)
    p.set_defaults(func=edit_served)
    p = sub.add_parser("report")
    p.add_argument("csv")
    p.add_argument("facts")
    p.add_argument("out")
    p.set_defaults(func=report)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
