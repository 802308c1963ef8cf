"""Render bench/results/discovery.json as a Markdown table (the README shows it)."""

import json
import platform
import sys
from datetime import UTC, datetime

with open(sys.argv[1]) as handle:
    r = json.load(handle)
print(
    f"Discovery on {r['views']:,} views × 20 fields ({r['entries']:,} search entries), PostgreSQL 15, "
    f"{platform.node() or 'local'}, {datetime.now(UTC):%Y-%m-%d}; 2 cores.\n"
)
print("| search | matches (median) | p50 | p95 | target p95 |")
print("|---|---|---|---|---|")
for name, row in r["search_ms"].items():
    matches = f"{row['median_matches']:,}" if "median_matches" in row else "—"
    print(f"| {name.replace('_', ' ')} | {matches} | {row['p50']:.1f} ms | {row['p95']:.1f} ms | 25 ms |")
estimated = [
    f"{name.replace('_', ' ')} ({row['estimated']:.0%} of runs)"
    for name, row in r["search_ms"].items()
    if row.get("estimated")
]
if estimated:
    print(
        "\nMatches: exact counts, taken apart from the timed runs. Search counts exactly up to 2,000 matches; past "
        "that the total and the facet counts shown are estimates from a 1-in-16 sample of the matches, labelled "
        f'"about N" and "≈ n": {", ".join(estimated)}. Hits, their order and paging are exact.'
    )
print("\n| page | p50 | p95 | SQL queries | target p95 |")
print("|---|---|---|---|---|")
for name, row in r["page_ms"].items():
    print(f"| {name.replace('_', ' ')} | {row['p50']:.1f} ms | {row['p95']:.1f} ms | {row['queries']} | 150 ms |")
feast = r.get("feast_search_ms", {})
if feast.get("ms"):
    calls = ", ".join(f"{ms / 1000:.1f} s" for ms in feast["ms"])
    print(
        f"\nFeast 0.67's registry search (`feast ui`, GET /api/v1/search) on the same registry: {calls} per call; "
        f"the portal's typical-word search is **{r['feast_search_vs_portal']:.0f}× faster** (target ≥ 100×)."
    )
elif feast.get("error"):
    print(f"\nFeast's registry search could not be measured: {feast['error']}")
