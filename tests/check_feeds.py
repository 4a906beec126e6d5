#!/usr/bin/env python3
"""Parse every feed under a built site with feedparser, the parser most feed
readers' behaviour is measured against, and fail on anything it complains
about (the `bozo` flag) or any field a reader needs that it cannot find.

feedparser 6.0 reads RSS and Atom only; JSON Feeds are checked here against
the JSON Feed 1.1 spec's required fields with Python's own json and datetime.

It also counts the entries whose content still has a MathML formula and a
highlighted code span after feedparser's sanitizer (what many readers keep of
an item), and fails when there are none: the bundled sample has both.

Feed history (RFC 5005): every archive document (`fh:archive`) must link its
subscription document (`current`), and from each subscription document the
`prev-archive` links (JSON Feed: `next_url`) must lead through archive
documents that link back (`next-archive`), ending at one with no older page,
without listing any entry twice.

WebSub: on a site with `[feeds] websub_hubs`, every subscription document
must name the hub (`rel="hub"`; JSON Feed: `hubs`) and itself, and no
archive document may name one.

Usage: check_feeds.py PUBLIC_DIR [PUBLIC_DIR ...]
"""

import datetime
import json
import pathlib
import sys

import feedparser

FEED_NAMES = {"rss.xml", "atom.xml", "feed.json"}
ENTRY_FIELDS = ("id", "title", "link", "published_parsed", "summary")


def json_feed_problems(path: pathlib.Path) -> tuple[list[str], int]:
    problems = []
    try:
        feed = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        return [f"not JSON: {e}"], 0
    if feed.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append(f"version {feed.get('version')!r}")
    for field in ("title", "home_page_url", "feed_url"):
        if not isinstance(feed.get(field), str) or not feed[field]:
            problems.append(f"feed has no {field}")
    for field in ("home_page_url", "feed_url"):
        if not str(feed.get(field, "")).startswith(("https://", "http://")):
            problems.append(f"relative {field}")
    items = feed.get("items")
    if not isinstance(items, list):
        return problems + ["items is not a list"], 0
    for i, item in enumerate(items):
        for field in ("id", "url", "title", "summary", "content_html", "date_published"):
            if not isinstance(item.get(field), str) or not item[field]:
                problems.append(f"item {i} has no {field}")
        if not str(item.get("url", "")).startswith(("https://", "http://")):
            problems.append(f"item {i}: relative url")
        for field in ("date_published", "date_modified"):
            try:
                datetime.datetime.fromisoformat(item.get(field, ""))
            except ValueError:
                problems.append(f"item {i}: {field} is not RFC 3339")
    return problems, len(items)


KEPT_MARKUP = {"MathML formulas": "<math", "highlighted code": '<span class="hl-'}


def kept_markup(path: pathlib.Path) -> set[str]:
    """Which of KEPT_MARKUP some entry of the RSS or Atom feed at `path` keeps."""
    if path.suffix == ".json":
        return set()
    contents = [
        entry.content[0].get("value", "")
        for entry in feedparser.parse(path.read_bytes()).entries
        if entry.get("content")
    ]
    return {name for name, mark in KEPT_MARKUP.items() if any(mark in c for c in contents)}


def problems_in(path: pathlib.Path) -> tuple[list[str], int]:
    if path.suffix == ".json":
        return json_feed_problems(path)
    parsed = feedparser.parse(path.read_bytes())
    problems = []
    if parsed.bozo:
        problems.append(f"bozo: {parsed.bozo_exception!r}")
    expected_version = {"rss.xml": "rss20", "atom.xml": "atom10"}[path.name]
    if parsed.version != expected_version:
        problems.append(f"version {parsed.version!r}, expected {expected_version!r}")
    feed = parsed.feed
    for field in ("title", "link"):
        if not feed.get(field):
            problems.append(f"feed has no {field}")
    if not feed.get("updated_parsed"):
        problems.append("feed has no parseable updated/lastBuildDate")
    for i, entry in enumerate(parsed.entries):
        for field in ENTRY_FIELDS:
            if not entry.get(field):
                problems.append(f"entry {i} has no {field}")
        if not entry.get("content") or not entry.content[0].get("value"):
            problems.append(f"entry {i} has no full content")
        for url in [entry.get("link", ""), entry.get("id", "")]:
            if not url.startswith(("https://", "http://")):
                problems.append(f"entry {i}: relative URL {url!r}")
        if not entry.get("tags"):
            problems.append(f"entry {i} has no categories")
        if not entry.get("author"):
            problems.append(f"entry {i} has no author")
    return problems, len(parsed.entries)


def links_of(path: pathlib.Path) -> tuple[dict[str, str], bool, list[str]]:
    """A feed document's links by relation, whether it is an archive
    document, and its entries' ids."""
    if path.suffix == ".json":
        doc = json.loads(path.read_bytes())
        links = {"self": doc.get("feed_url", "")}
        if doc.get("next_url"):
            links["prev-archive"] = doc["next_url"]
        for hub in doc.get("hubs", []):
            if hub.get("type") == "WebSub":
                links["hub"] = hub.get("url", "")
        archive = "/archive/" in links["self"]
        return links, archive, [item.get("id", "") for item in doc.get("items", [])]
    parsed = feedparser.parse(path.read_bytes())
    links = {link.get("rel", ""): link.get("href", "") for link in parsed.feed.get("links", [])}
    return links, "fh_archive" in parsed.feed, [e.get("id", "") for e in parsed.entries]


Docs = dict[pathlib.Path, tuple[dict[str, str], bool, list[str]]]


def hub_problems(docs: Docs) -> list[tuple[pathlib.Path, str]]:
    """On a site with WebSub hubs, every subscription document names one
    (and itself), in all three formats; archive documents name none."""
    hubs = {links.get("hub") for links, archive, _ in docs.values() if not archive}
    if hubs <= {None}:
        return []
    problems = []
    for path, (links, archive, _) in docs.items():
        if archive and links.get("hub"):
            problems.append((path, "an archive document names a WebSub hub"))
        if not archive and not (links.get("hub") and links.get("self")):
            problems.append((path, "a subscription feed without its WebSub hub and self links"))
    named = hubs - {None}
    if len(named) > 1:
        problems.append((next(iter(docs)), f"feeds name different hubs: {sorted(named)}"))
    return problems


def history_problems(docs: Docs) -> list[tuple[pathlib.Path, str]]:
    """RFC 5005 links between the feed documents under one site."""
    by_url = {links["self"]: path for path, (links, _, _) in docs.items() if links.get("self")}
    problems = []
    for path, (links, archive, _) in docs.items():
        if archive and by_url.get(links.get("current", ""), None) is None and path.suffix != ".json":
            problems.append((path, f"archive document whose current link {links.get('current')!r} names no feed"))
        if archive:
            continue
        seen, here, hops = set(), path, 0
        while True:
            here_links, _, ids = docs[here]
            repeated = seen.intersection(ids)
            if repeated:
                problems.append((path, f"{here} lists {sorted(repeated)[:3]} again"))
            seen.update(ids)
            older = here_links.get("prev-archive")
            if not older:
                break
            nxt = by_url.get(older)
            if nxt is None or not docs[nxt][1]:
                problems.append((path, f"{here}: prev-archive {older!r} is not an archive document here"))
                break
            back = docs[nxt][0].get("next-archive")
            if hops > 0 and nxt.suffix != ".json" and back != here_links.get("self"):
                problems.append((path, f"{nxt}: next-archive {back!r} does not lead back to {here}"))
            here, hops = nxt, hops + 1
    return problems


def main(dirs: list[str]) -> int:
    if not dirs:
        print(__doc__, file=sys.stderr)
        return 2
    checked = entries = 0
    bad = set()
    kept = set()
    for directory in dirs:
        feed_paths = [p for p in sorted(pathlib.Path(directory).rglob("*")) if p.name in FEED_NAMES]
        docs = {path: links_of(path) for path in feed_paths}
        for path, problem in history_problems(docs) + hub_problems(docs):
            bad.add(path)
            print(f"{path}: {problem}", file=sys.stderr)
        for path in feed_paths:
            checked += 1
            problems, n = problems_in(path)
            entries += n
            kept |= kept_markup(path)
            for problem in problems:
                bad.add(path)
                print(f"{path}: {problem}", file=sys.stderr)
    if checked == 0:
        print(f"no feeds found under {dirs}", file=sys.stderr)
        return 1
    missing = KEPT_MARKUP.keys() - kept
    for name in sorted(missing):
        print(f"no entry in any feed kept {name} through feedparser's sanitizer", file=sys.stderr)
    print(f"feedparser {feedparser.__version__}: {checked} feeds, {entries} entries checked")
    print(f"{checked - len(bad)} passed, {len(bad)} failed")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
