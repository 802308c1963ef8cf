"""HTML views: parse input, call a selector or service, render."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalog import selectors
from catalog.decorators import reader_required
from catalog.exceptions import InvalidInput
from catalog.freshness import feature_view_freshness
from catalog.models import ApiToken, CatalogObject, ObjectVersion, Project
from catalog.models.objects import GOVERNED_KINDS
from catalog.permissions import can_operate, can_register_model, user_roles
from catalog.proposal_drafts import proposal_draft_take
from catalog.services.change_requests import can_propose
from catalog.services.tokens import api_token_create, api_token_revoke
from catalog.snippets import fetch_snippets
from catalog.timeparse import NotAnInstant, parse_instant


@reader_required
def home(request: HttpRequest) -> HttpResponse:
    """Dashboard: counts, recent registry changes, recent syncs."""
    context = {
        "counts": selectors.dashboard_counts(user=request.user),
        "changes": selectors.recent_changes(user=request.user),
        "syncs": selectors.sync_run_list(user=request.user, limit=5),
        "projects": selectors.project_list(user=request.user),
        "can_operate": can_operate(request.user),
        "change_requests": selectors.open_change_requests(),
    }
    return render(request, "catalog/home.html", context)


@reader_required
def project_detail(request: HttpRequest, project: str) -> HttpResponse:
    """A project's objects by kind."""
    try:
        proj = selectors.project_get(user=request.user, name=project)
    except Project.DoesNotExist:
        raise Http404(f"No project named {project!r}.") from None
    grouped = selectors.project_objects(user=request.user, project=proj)
    sections = [
        (CatalogObject.Kind(kind).label, selectors.SLUG_FOR_KIND[kind], objs)
        for kind, objs in grouped.items()
        if objs or kind in GOVERNED_KINDS  # saved datasets, permissions...: listed only where there are some
    ]
    return render(request, "catalog/project_detail.html", {"project": proj, "sections": sections})


@reader_required
def object_detail(request: HttpRequest, project: str, kind_slug: str, name: str) -> HttpResponse:
    """One object: its definition, features or vector, lineage and history (with a diff of two versions)."""
    kind = selectors.KIND_SLUGS.get(kind_slug)
    if kind is None:
        raise Http404("Unknown kind of object.")
    try:
        obj = selectors.object_get(user=request.user, project=project, kind=kind, name=name)
    except CatalogObject.DoesNotExist:
        raise Http404(f"No {CatalogObject.Kind(kind).label.lower()} named {name!r} in {project!r}.") from None
    history = list(selectors.object_history(user=request.user, obj=obj))
    compare: dict[str, object] = {}
    if request.GET.get("from") and request.GET.get("to"):
        try:
            a, b = int(request.GET["from"]), int(request.GET["to"])
            compare = {
                "from": a,
                "to": b,
                "changes": selectors.version_diff(user=request.user, obj=obj, from_version=a, to_version=b),
            }
        except (ValueError, ObjectVersion.DoesNotExist):
            compare = {"error": "Pick two versions this object has."}
    features = list(obj.features.all()) if kind in ("feature_view", "data_source") else []
    context = {
        "obj": obj,
        "kind_slug": kind_slug,
        "features": features,
        "vector": obj.vector.select_related("view__project").all() if kind == "feature_service" else [],
        "lineage": selectors.object_lineage(user=request.user, obj=obj),
        "history": history,
        "compare": compare,
        "slugs": selectors.SLUG_FOR_KIND,
    }
    if kind == "data_source":
        context["source_columns"] = selectors.source_columns(source_name=obj.name, project=obj.project)
    if kind == "feature_view":
        context["freshness"] = feature_view_freshness(obj)
        context["transformation"] = selectors.view_transformation(user=request.user, obj=obj)
        context["usage"] = selectors.view_feature_usage(view=obj)
        context["on_demand_readers"] = readers = selectors.view_on_demand_readers(view=obj)
        context["on_demand_reader_views"] = list({r.pk: r for rs in readers.values() for r in rs}.values())
        active = [f.name for f in features if f.status != "removed"]
        # What "Remove a field" may offer: Feast refuses to drop a field an on-demand view reads, or the last one.
        context["removable"] = [name for name in active if name not in readers] if len(active) > 1 else []
    if kind == "feature_service":
        context["consumers"] = selectors.service_consumers(user=request.user, service=obj)
        context["can_register_model"] = can_register_model(request.user)
    context["can_propose"] = (
        obj.kind in GOVERNED_KINDS  # saved datasets, validation references and permissions are shown, not governed
        and bool(obj.project.repo_key)
        and obj.status != "removed"
        and not obj.read_error
        and can_propose(request.user)
    )
    if context["can_propose"]:
        from catalog.views_governance import DTYPES

        context["dtypes"] = DTYPES
        if kind == "feature_view" and obj.batch_source_name:
            context["source_columns"] = selectors.source_columns(source_name=obj.batch_source_name, project=obj.project)
    context["open_change_requests"] = selectors.open_change_requests(obj=obj)
    context["draft"] = proposal_draft_take(request, obj) if context["can_propose"] else None
    if kind in ("feature_view", "feature_service"):
        context["snippets"] = fetch_snippets(obj, base_url=request.build_absolute_uri("/"))
    return render(request, "catalog/object_detail.html", context)


@reader_required
def catalog_as_of(request: HttpRequest) -> HttpResponse:
    """The catalog as it was at a past date and time (UTC)."""
    raw = request.GET.get("at", "")
    when = None
    error = ""
    if raw:
        try:
            when = parse_instant(raw, date_means="end")  # a date: as it was at that day's end, as in the API
        except NotAnInstant:
            error = f"{raw!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM."
    objects = list(selectors.catalog_as_of(user=request.user, when=when)[:2000]) if when else []
    context = {"at": raw, "when": when, "error": error, "objects": objects, "slugs": selectors.SLUG_FOR_KIND}
    return render(request, "catalog/catalog_as_of.html", context)


# --- Profile: the user's API tokens -------------------------------------------------------------


class ApiTokenForm(forms.Form):
    """Create an API token from the profile page."""

    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. ci-pipeline.")
    scopes = forms.MultipleChoiceField(
        choices=ApiToken.Scope.choices, widget=forms.CheckboxSelectMultiple, initial=["read"]
    )
    expires_in_days = forms.IntegerField(min_value=1, max_value=366, required=False, initial=90)


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    """The user's roles, teams and API tokens; POST creates a token and shows it once."""
    form = ApiTokenForm(request.POST or None)
    created: tuple[ApiToken, str] | None = None
    if request.method == "POST" and form.is_valid():
        try:
            created = api_token_create(
                actor=request.user,
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except InvalidInput as exc:
            for field, errors in exc.details.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            form = ApiTokenForm()
    context = {
        "form": form,
        "created": created,
        "tokens": selectors.api_token_list(user=request.user),
        "roles": sorted(user_roles(request.user)),
        "teams": list(request.user.teams.values_list("name", flat=True)),  # type: ignore[union-attr]
    }
    return render(
        request, "catalog/profile.html", context, status=400 if request.method == "POST" and not created else 200
    )


@login_required
@require_POST
def profile_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Revoke one of the user's tokens (another user's token is a 404)."""
    token = get_object_or_404(selectors.api_token_list(user=request.user), pk=pk)
    api_token_revoke(actor=request.user, token=token)
    messages.success(request, f"Token {token.name} ({token.prefix}) revoked.")
    return redirect("catalog:profile")
