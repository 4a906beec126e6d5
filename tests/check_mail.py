#!/usr/bin/env python3
"""Check sent digests and subscription emails the way a receiving mail system would.

  check_mail.py keygen DIR          write DIR/dkim.pem (RSA 2048, PKCS#8 as OpenSSL 3 writes it) and DIR/dkim.pub (base64 DER)
  check_mail.py verify OUTBOX PUB   check every .eml below OUTBOX; PUB is the dkim.pub file

For each message: Python's email parser with the strict default policy, one
each of the headers a bulk sender owes (MAIL.md), an https List-Unsubscribe
first plus a mailto, RFC 8058 one-click, multipart/alternative with text then
HTML, a visible unsubscribe link in both, and a DKIM signature that dkimpy
verifies against PUB, with d= aligned to From and both unsubscribe headers
in h=, and the complaint-routing headers (CFBL-Address, RFC 9477, and
Feedback-ID) present and signed: .ci/run sends with a bounce address.

A confirmation email (Message-ID <confirm-…>) goes to an address that has
not subscribed: it must have no List-* headers, and is otherwise held to the
same rules; welcome and manage emails are held to a digest's.
"""

import base64
import email
import email.policy
import pathlib
import re
import sys

LIST = ["List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"]
ONCE = ["From", "To", "Subject", "Date", "Message-ID", *LIST, "Auto-Submitted", "DKIM-Signature",
        "Feedback-ID", "CFBL-Address"]


def keygen(directory: str) -> int:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    (out / "dkim.pem").write_bytes(pem)
    (out / "dkim.pub").write_text(base64.b64encode(der).decode())
    return 0


def problems_in(path: pathlib.Path, public_key: str) -> list[str]:
    import dkim

    raw = path.read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    problems = []
    to_a_subscriber = not str(message.get("Message-ID", "")).startswith("<confirm-")
    for name in ONCE:
        expected = 1 if to_a_subscriber or name not in LIST else 0
        count = len(message.get_all(name, []))
        if count != expected:
            problems.append(f"{count} {name} headers, expected {expected}")
    if message.get("Precedence"):
        problems.append("has Precedence (MAIL.md: skip it)")
    unsubscribe = str(message.get("List-Unsubscribe", ""))
    uris = re.findall(r"<([^>]+)>", unsubscribe)
    if to_a_subscriber and (len(uris) != 2 or not uris[0].startswith("https://")
                            or not uris[1].startswith("mailto:")):
        problems.append(f"List-Unsubscribe is {unsubscribe!r}, expected <https://…>, <mailto:…>")
    if to_a_subscriber and str(message.get("List-Unsubscribe-Post", "")) != "List-Unsubscribe=One-Click":
        problems.append("List-Unsubscribe-Post is not List-Unsubscribe=One-Click")
    if message.get_content_type() != "multipart/alternative":
        problems.append(f"content type {message.get_content_type()}, expected multipart/alternative")
    else:
        parts = list(message.iter_parts())
        types = [p.get_content_type() for p in parts]
        if types != ["text/plain", "text/html"]:
            problems.append(f"parts {types}, expected text/plain then text/html")
        for part in parts:
            if uris and uris[0] not in part.get_content().replace("&amp;", "&"):
                problems.append(f"{part.get_content_type()} part has no visible unsubscribe link")
    signature = str(message.get("DKIM-Signature", ""))
    tags = dict(
        (k.strip(), v.strip()) for k, v in (t.split("=", 1) for t in signature.replace("\r\n", "").split(";") if "=" in t)
    )
    from_domain = str(message.get("From", "")).rsplit("@", 1)[-1].rstrip(">").lower()
    if tags.get("d", "").lower() != from_domain:
        problems.append(f"DKIM d={tags.get('d')!r} does not align with From domain {from_domain!r}")
    signed = [h.strip().lower() for h in re.sub(r"\s", "", tags.get("h", "")).split(":")]
    for header in ("list-unsubscribe", "list-unsubscribe-post", "from", "subject", "date", "to",
                   "cfbl-address", "feedback-id"):
        if header.startswith("list-") and not to_a_subscriber:
            continue
        if header not in signed:
            problems.append(f"DKIM h= does not cover {header}")

    def dns(name, timeout=5):
        return b"v=DKIM1; k=rsa; p=" + public_key.encode()

    if not dkim.verify(raw, dnsfunc=dns):
        problems.append("dkimpy does not verify the DKIM signature")
    return problems


def verify(outbox: str, public_key_file: str) -> int:
    public_key = pathlib.Path(public_key_file).read_text().strip()
    messages = sorted(pathlib.Path(outbox).rglob("*.eml"))
    if not messages:
        print(f"no .eml files under {outbox}", file=sys.stderr)
        return 1
    bad = 0
    for path in messages:
        problems = problems_in(path, public_key)
        bad += bool(problems)
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
    print(f"{len(messages) - bad} passed, {bad} failed")
    return 1 if bad else 0


def main(args: list[str]) -> int:
    if len(args) == 2 and args[0] == "keygen":
        return keygen(args[1])
    if len(args) == 3 and args[0] == "verify":
        return verify(args[1], args[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
