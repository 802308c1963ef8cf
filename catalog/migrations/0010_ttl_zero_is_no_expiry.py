"""A batch or stream view's TTL of 0 is Feast's "no expiry" (`0s`), which the sync used to store as null.

The sync rewrites an object's columns only when its spec changes, so views mirrored before are corrected
here. On-demand views have no TTL and stay null.
"""

from typing import Any

from django.db import migrations


def ttl_zero(apps: Any, schema_editor: Any) -> None:
    CatalogObject = apps.get_model("catalog", "CatalogObject")
    CatalogObject.objects.filter(kind="feature_view", subkind__in=["batch", "stream"], ttl_seconds__isnull=True).update(
        ttl_seconds=0
    )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0009_search_words")]

    operations = [migrations.RunPython(ttl_zero, migrations.RunPython.noop)]
