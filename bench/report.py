"""Render bench/results/catalog_sync.json as the Markdown table the README shows."""

import json
import platform
import sys
from datetime import UTC, datetime

with open(sys.argv[1]) as handle:
    rows = json.load(handle)
print(
    f"Catalog sync vs Feast `list_*` on the same SQL registry (PostgreSQL 15, {platform.node() or 'local'}, "
    f"{datetime.now(UTC):%Y-%m-%d}; 2 cores). Lower is better.\n"
)
print(
    "| views × fields | features | Feast list_* | full sync | ratio (≤ 1.0) | no-op sync | ratio (≤ 0.2) "
    "| one change | RSS growth, full sync | max RSS | then: search index build |"
)
print("|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(
        f"| {r['views']:,} × {r['fields_per_view']} | {r['features']:,} | {r['feast_list_s']:.2f} s "
        f"| {r['full_sync_s']:.2f} s | {r['full_sync_vs_feast']:.2f}× | {r['noop_sync_s'] * 1000:.0f} ms "
        f"| {r['noop_sync_vs_feast']:.3f}× | {r['one_change_sync_s']:.2f} s "
        f"| {r['peak_rss_growth_mib']['full_sync']:.0f} MiB | {r['max_rss_mib']:.0f} MiB "
        f"| {r.get('search_index_build_s', 0):.1f} s ({r.get('search_entries', 0):,} entries) |"
    )
if len(rows) >= 2:
    a, b = rows[0], rows[-1]
    scale = b["views"] / a["views"]
    print(
        f"\nScaling {a['views']:,} → {b['views']:,} views ({scale:.0f}×): full sync "
        f"{b['full_sync_s'] / a['full_sync_s']:.1f}×, Feast list {b['feast_list_s'] / a['feast_list_s']:.1f}× "
        "(linear is the same factor as the views)."
    )
