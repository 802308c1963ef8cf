"""The lineage graph of a project: nodes and edges for the browser (plotly) and the API.

Built from LineageEdge rows plus registered models (service → model), in three queries whatever
the project's size.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Any, TypedDict

from django.urls import NoReverseMatch

from catalog.models import CatalogObject, LineageEdge, ModelConsumer, Project, Status

MODEL_KIND = "model"
SERVICE_MODEL_EDGE = "service_model"

# Left-to-right layers: sources and entities, feature views, on-demand views, services, models.
COLUMN_SOURCES, COLUMN_VIEWS, COLUMN_ON_DEMAND, COLUMN_SERVICES, COLUMN_MODELS = 0, 1, 2, 3, 4


class LineageNode(TypedDict, total=False):
    """A node of the graph (the focus flags are present only when a focus is given)."""

    id: str
    kind: str
    subkind: str
    name: str
    project: str
    status: str
    url: str
    column: int
    upstream_of_focus: bool
    downstream_of_focus: bool
    is_focus: bool


class LineageEdgeJson(TypedDict):
    """A directed edge, upstream → downstream."""

    source: str
    target: str
    kind: str


class LineageGraph(TypedDict):
    """`{"nodes": [...], "edges": [...]}`."""

    nodes: list[LineageNode]
    edges: list[LineageEdgeJson]


def node_id(kind: str, project: str, name: str) -> str:
    """A node's stable id: `<kind>:<project>/<name>` (models: `model:<project>/<name>@<version>`)."""
    return f"{kind}:{project}/{name}"


def _column(obj: CatalogObject) -> int:
    if obj.kind == CatalogObject.Kind.FEATURE_VIEW:
        return COLUMN_ON_DEMAND if obj.subkind == "on_demand" else COLUMN_VIEWS
    if obj.kind == CatalogObject.Kind.FEATURE_SERVICE:
        return COLUMN_SERVICES
    return COLUMN_SOURCES


def _model_url(consumer: ModelConsumer) -> str:
    # The model page belongs to the discovery pages; until its route exists the node has no link.
    try:
        return consumer.get_absolute_url()
    except NoReverseMatch:
        return ""


def _reachable(start: str, adjacency: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    queue = deque([start])
    while queue:
        for nxt in adjacency.get(queue.popleft(), []):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    seen.discard(start)
    return seen


def lineage_graph(*, user: Any, project: Project, focus: CatalogObject | None = None) -> LineageGraph:
    """The project's lineage as nodes (ordered by column, then kind and name) and edges.

    Removed objects are left out (the focus is kept even when removed). With a focus, every node
    says whether it is upstream of it, downstream of it, or the focus itself.
    """
    objects = list(
        CatalogObject.objects.visible_to(user)
        .filter(project=project)
        .exclude(status=Status.REMOVED)
        .exclude(kind=CatalogObject.Kind.PERMISSION)  # who may act on objects, not where data flows
        .only("id", "kind", "subkind", "name", "status", "project_id")
        .order_by("kind", "name")
    )
    if focus is not None and focus.project_id == project.pk and all(o.pk != focus.pk for o in objects):
        objects.append(focus)
    by_pk: dict[int, str] = {}
    nodes: dict[str, LineageNode] = {}
    for obj in objects:
        obj.project = project  # no extra query for the URL
        nid = node_id(obj.kind, project.name, obj.name)
        by_pk[obj.pk] = nid
        nodes[nid] = {
            "id": nid,
            "kind": obj.kind,
            "subkind": obj.subkind,
            "name": obj.name,
            "project": project.name,
            "status": obj.status,
            "url": obj.get_absolute_url(),
            "column": _column(obj),
        }
    edges: list[LineageEdgeJson] = []
    for up, down, kind in (
        LineageEdge.objects.filter(project=project)
        .order_by("kind", "upstream_id", "downstream_id")
        .values_list("upstream_id", "downstream_id", "kind")
    ):
        if up in by_pk and down in by_pk:
            edges.append({"source": by_pk[up], "target": by_pk[down], "kind": kind})
    consumers = (
        ModelConsumer.objects.filter(service_id__in=[pk for pk in by_pk])
        .only("id", "name", "version", "service_id")
        .order_by("name", "version", "pk")
        if nodes
        else ModelConsumer.objects.none()
    )
    for consumer in consumers:
        nid = node_id(MODEL_KIND, project.name, str(consumer))
        if nid not in nodes:  # one node per model@version, whatever the number of services it reads
            nodes[nid] = {
                "id": nid,
                "kind": MODEL_KIND,
                "subkind": "",
                "name": str(consumer),
                "project": project.name,
                "status": Status.ACTIVE,
                "url": _model_url(consumer),
                "column": COLUMN_MODELS,
            }
        edges.append({"source": by_pk[consumer.service_id], "target": nid, "kind": SERVICE_MODEL_EDGE})
    if focus is not None and focus.pk in by_pk:
        focus_id = by_pk[focus.pk]
        downstream: dict[str, list[str]] = defaultdict(list)
        upstream: dict[str, list[str]] = defaultdict(list)
        for edge in edges:
            downstream[edge["source"]].append(edge["target"])
            upstream[edge["target"]].append(edge["source"])
        ups, downs = _reachable(focus_id, upstream), _reachable(focus_id, downstream)
        for nid, node in nodes.items():
            node["is_focus"] = nid == focus_id
            node["upstream_of_focus"] = nid in ups
            node["downstream_of_focus"] = nid in downs
    ordered = sorted(nodes.values(), key=lambda n: (n["column"], n["kind"], n["name"]))
    return {"nodes": ordered, "edges": edges}
