#!/usr/bin/env python3
"""Lists functions in src/ longer than a limit (default 60 lines, from the
`fn` line to its closing brace), for issue 13's rule; exits 1 if any."""
import pathlib
import re
import sys

LIMIT = int(sys.argv[1]) if len(sys.argv) > 1 else 60
FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
found = 0
for path in sorted(pathlib.Path("src").rglob("*.rs")):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        indent = m.group(1)
        # A declaration without a body (in a trait) ends its signature with ";".
        signature_end = next(
            (k for k in range(i, len(lines)) if lines[k].rstrip().endswith(("{", ";"))), i
        )
        if lines[signature_end].rstrip().endswith(";"):
            continue
        # The body ends at the first line that is the indent plus "}".
        j = next((k for k in range(i, len(lines)) if lines[k] == indent + "}"), i)
        if line.rstrip().endswith("}"):
            j = i
        length = j - i + 1
        if length > LIMIT:
            found += 1
            print(f"{path}:{i + 1}: fn {m.group(7)} is {length} lines")
sys.exit(1 if found else 0)
