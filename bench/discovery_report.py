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
