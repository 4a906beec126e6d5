"""Parses `shorts serve`'s metrics (standard input) with the Prometheus
project's own OpenMetrics parser (the `prometheus-client` package), as a
scraper would; exit 1 with the parser's complaint if it refuses them, 3 if
the parser is not installed (the test skips, unless CI requires it)."""

import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:
    print(f"no OpenMetrics parser: {e}", file=sys.stderr)
    sys.exit(3)

text = sys.stdin.read()
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # the parser raises ValueError and friends
    print(f"the OpenMetrics parser refused the metrics: {e}", file=sys.stderr)
    sys.exit(1)
samples = sum(len(family.samples) for family in families)
print(f"{len(families)} families, {samples} samples")
