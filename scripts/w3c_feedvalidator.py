#!/usr/bin/env python3
"""Check every RSS and Atom document under built sites with the W3C Feed
Validation Service's own code (github.com/w3c/feedvalidator), offline:
subscription feeds and RFC 5005 archive documents alike.

Each file's bytes go to `feedvalidator.validateStream` with the file's own
`rel="self"` URL as where it was fetched from (so the self-link check
applies); errors and warnings are those the online service shows. Every
error fails, and so does every warning except the classes below, each
allowed for a stated reason. The network is switched off before the
validator is imported (it would look up the domains of some e-mail
addresses); it never fetches DTDs.

Run by hand, not by .ci/run: the validator is on no package registry (PyPI,
Debian, npm), so a fresh machine cannot install it. With a checkout of
github.com/w3c/feedvalidator (checked with commit 43dabeb, 2025-12-16) and
its requirements (`pip install html5lib==1.1 lxml==6.1.* rdflib==7.*`):

    python scripts/w3c_feedvalidator.py ../feedvalidator public/ fixture/public/

Usage: w3c_feedvalidator.py VALIDATOR_CHECKOUT PUBLIC_DIR [PUBLIC_DIR ...]
"""

import io
import os
import socket
import sys
import xml.etree.ElementTree as ET

ATOM_NS = "http://www.w3.org/2005/Atom"
FEED_NAMES = ("rss.xml", "atom.xml")

# Warnings that do not fail, and why.
ALLOWED = {
    # The validator's HTML check knows no MathML: formulas are MathML on
    # purpose (README "Formulas"); only MathML element names are let through.
    "NotHtml": "MathML in item content",
    # RSS Profile advice to write `&#x26;` rather than `&amp;`; both are XML,
    # and the fixture's title has both characters on purpose.
    "CharacterData": "escaped `&` and `<` in the fixture's titles",
    # The fixture's titles and summaries are hostile text that looks like
    # markup (`<script>`, `<b>`), correctly escaped as text.
    "ContainsUndeclaredHTML": "markup-like text in the fixture, escaped",
    "ContainsHTML": "markup-like text in the fixture, escaped",
}


def no_network(*args, **kwargs):
    raise OSError("w3c_feedvalidator.py: no network")


socket.getaddrinfo = no_network
socket.create_connection = no_network
socket.socket.connect = no_network


def feed_files(root):
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders.sort()
        for name in sorted(files):
            if name in FEED_NAMES:
                yield os.path.join(folder, name)


def self_url(data, path):
    """The document's own `rel="self"` link, else a file: URL."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return "file://" + os.path.abspath(path)  # the validator says why
    container = root.find("channel") if root.tag == "rss" else root
    for link in [] if container is None else container.findall("{%s}link" % ATOM_NS):
        if link.get("rel") == "self" and link.get("href"):
            return link.get("href")
    return "file://" + os.path.abspath(path)


def is_mathml(event):
    value = str(event.params.get("value", ""))
    return value == "math" or value in ("semantics", "annotation") or value.startswith("m")


def main(args):
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, os.path.join(os.path.abspath(args[0]), "src"))
    os.environ["LANGUAGE"] = "en"
    import feedvalidator
    from feedvalidator import compatibility
    from feedvalidator.formatter.text_plain import Formatter
    from feedvalidator.logging import Error, ValidationFailure

    files = [path for root in args[1:] for path in feed_files(root)]
    failures, allowed = 0, {}
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        try:
            result = feedvalidator.validateStream(io.BytesIO(data), firstOccurrenceOnly=1, base=self_url(data, path))
            events = result["loggedEvents"]
        except ValidationFailure as failure:
            events = [failure.event]
        events = compatibility.AA(events)
        text = Formatter(events)
        for event in events:
            name = event.__class__.__name__
            is_error = isinstance(event, Error)
            if not is_error and name in ALLOWED and (name != "NotHtml" or is_mathml(event)):
                allowed[name] = allowed.get(name, 0) + 1
                continue
            failures += 1
            level = "error" if is_error else "warning"
            line = event.params.get("line", "?")
            print(f"{path}:{line}: {level} {name}: {text.getMessage(event)}", file=sys.stderr)
    if not files:
        print(f"no feeds found under {args[1:]}", file=sys.stderr)
        return 1
    for name, count in sorted(allowed.items()):
        print(f"allowed: {name} x{count} ({ALLOWED[name]})")
    print(f"W3C feedvalidator: {len(files)} RSS and Atom documents, {failures} errors or warnings that fail")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
