#!/usr/bin/env python3
"""feature_portal: the Feature Portal's command-line client for CI (Python 3.10+, standard library only).

Copy this one file into a CI image, or run it from a checkout (`python client/feature_portal.py ...` or
`python -m client.feature_portal ...`). It never imports Django or the portal's code.

    PORTAL_URL=https://features.example.com PORTAL_TOKEN=fpt_... \\
      python feature_portal.py plan feature_repo --project employee_attrition --ref acme/features@my-branch

Commands (`--help` on each):
  plan REPO_DIR   zip the repo folder, propose it for the branch (a new revision of the branch's change
                  request, or a new request), print the plan as Markdown for a pull-request comment
  status          a change request's state and approvals (by --id, or --project and --ref)
  apply REPO_DIR  after a merge: find the request that planned exactly this folder (or plan it), wait
                  (bounded) until it is approved, apply it and wait for the job
  verify          check a model's pinned contract hash against a feature service

Exit codes: 0 success (plan: safe, approved or nothing to change); 1 the change is not acceptable (plan:
breaking, refused as invalid, or rejected; apply: not approved in time, rejected, failed or stale; verify: a
mismatch); 2 anything else (configuration, network, authentication, timeouts). Errors are one line on
stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

VERSION = "1"
OK, NOT_ACCEPTABLE, ERROR = 0, 1, 2

# What the portal's upload extracts for the parse (catalog/feast_gateway/upload_archive.py): the rest (data,
# notebooks, images) it would skip anyway, so it is not sent. Hidden directories (.git, .github, .venv) and
# bytecode caches are left out too.
SENT_SUFFIXES = frozenset({".py", ".yaml", ".yml", ".md", ".txt", ".json", ".sql"})
SENT_NAMES = frozenset({".feastignore", ".gitignore"})
SKIPPED_DIRS = frozenset({"__pycache__", "__MACOSX"})
# Fixed member metadata: the same folder always zips to the same bytes (the portal compares their SHA-256).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
LIVE = ("draft", "submitted", "approved", "stale", "rejected", "failed", "applying")
PLAN_WAIT_SECONDS = 20.0  # how long the propose itself may wait for a quick plan before answering 202
SEVERITY_MARK = {"safe": "🟢 safe", "risky": "🟠 risky", "breaking": "🔴 breaking"}


class Failure(Exception):
    """Ends the run: one line on stderr and this exit code."""

    def __init__(self, message: str, code: int = ERROR) -> None:
        super().__init__(message)
        self.code = code


class ApiError(Failure):
    """The portal answered with its error shape (`{"error": {status, code, message, details}}`)."""

    def __init__(self, status: int, code: str, message: str, details: Any) -> None:
        super().__init__(message, ERROR)
        self.status, self.api_code, self.details = status, code, details


# --- HTTP ---------------------------------------------------------------------------------------------------


class Portal:
    """The portal's REST API (`/api/v1/`) over urllib, with one-line errors."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        if not url:
            raise Failure("PORTAL_URL is not set (the portal's address, e.g. https://features.example.com)")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Failure(f"PORTAL_URL {url!r} is not an http(s) URL")
        if not token:
            raise Failure("PORTAL_TOKEN is not set (an API token: see the portal's README, 'Machine tokens')")
        base = url.rstrip("/")
        self.base = base.removesuffix("/api/v1")
        self.token = token
        self.timeout = timeout

    def link(self, path: str) -> str:
        return self.base + path

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        json_body: Any = None,
        form: tuple[bytes, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """(HTTP status, decoded JSON) of a 2xx answer; ApiError for the portal's errors, Failure otherwise."""
        url = f"{self.base}/api/v1/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v not in (None, "")})
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": f"feature-portal-client/{VERSION}",
        }
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data, headers["Content-Type"] = form
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        wait = self.timeout if timeout is None else timeout
        try:
            with urllib.request.urlopen(request, timeout=wait) as response:
                return response.status, _decoded(response.read(), url, response.status)
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                error = json.loads(body)["error"]
                message = str(error["message"])
            except (ValueError, KeyError, TypeError):
                raise Failure(
                    f"{method} {url} answered HTTP {exc.code} without the portal's error body: is PORTAL_URL the "
                    "portal's address?"
                ) from None
            raise ApiError(exc.code, str(error.get("code", "")), message, error.get("details") or {}) from None
        except TimeoutError:
            raise Failure(f"the portal did not answer {method} {url} within {wait:g} s (--timeout)") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise Failure(f"the portal did not answer {method} {url} within {wait:g} s (--timeout)") from None
            raise Failure(f"cannot reach the portal at {self.base}: {reason}") from None
        except (OSError, ValueError) as exc:  # a reset connection, a malformed URL
            raise Failure(f"cannot talk to the portal at {self.base}: {exc}") from None

    def whoami(self) -> dict[str, Any]:
        """Who the token is, which also tells a wrong URL or a refused token apart, in one line."""
        try:
            _, me = self.call("GET", "me/")
        except ApiError as exc:
            if exc.status == 401:
                raise Failure(f"PORTAL_TOKEN was refused by {self.base}: {exc}") from None
            if exc.status == 403:
                raise Failure(f"PORTAL_TOKEN cannot read ({exc}); give the token the 'read' scope") from None
            raise
        if not isinstance(me, dict) or "username" not in me:
            raise Failure(f"{self.base} does not look like the Feature Portal (GET /api/v1/me/): is PORTAL_URL right?")
        return me


def _decoded(body: bytes, url: str, status: int) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        raise Failure(f"{url} answered HTTP {status} with something other than JSON: is PORTAL_URL right?") from None


def multipart(fields: dict[str, str], file_field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = f"----feature-portal-{uuid.uuid4().hex}"
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    out.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        "Content-Type: application/zip\r\n\r\n".encode()
    )
    out.write(content + f"\r\n--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


# --- The archive ----------------------------------------------------------------------------------------------


def repo_archive(folder: Path) -> tuple[bytes, list[str]]:
    """The repo folder as a zip the portal accepts, byte-identical for identical content: (bytes, members)."""
    if not folder.is_dir():
        raise Failure(f"{folder} is not a directory (give the Feast repo folder, where feature_store.yaml is)")
    members: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in files:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            if path.suffix.lower() in SENT_SUFFIXES or name in SENT_NAMES:
                members.append((path.relative_to(folder).as_posix(), path))
    members.sort()
    if not any(name.endswith(".py") for name, _ in members):
        raise Failure(f"{folder} holds no Python (.py) files: is it the Feast repo folder?", NOT_ACCEPTABLE)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            try:
                archive.writestr(info, path.read_bytes())
            except OSError as exc:
                raise Failure(f"cannot read {path}: {exc.strerror or exc}") from None
    return buffer.getvalue(), [name for name, _ in members]


def parse_ref(ref: str) -> tuple[str, str]:
    """REPO@BRANCH (split at the last '@', so `git@host:org/repo@main` works)."""
    repo, sep, branch = ref.rpartition("@")
    if not sep or not repo or not branch or any(c.isspace() for c in ref):
        raise Failure(f"--ref {ref!r} is not REPO@BRANCH (e.g. acme/features@my-branch)")
    return repo, branch


# --- Markdown -------------------------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _label(kind: str) -> str:
    return kind.replace("_", " ")


def plan_markdown(portal: Portal, cr: dict[str, Any], outcome: str) -> str:
    """The plan as a pull-request comment: severity, changes, what they break, approvals still needed."""
    plan = cr.get("plan") or {}
    approvals = cr.get("approvals") or {}
    severity = str(cr.get("severity", ""))
    ref = f"`{cr.get('external_repo')}@{cr.get('external_branch')}`" if cr.get("external_repo") else ""
    sha = f" at `{str(cr.get('external_sha'))[:12]}`" if cr.get("external_sha") else ""
    lines = [
        f"### Feature Portal: CR-{cr['id']} revision {cr['revision']}: {SEVERITY_MARK.get(severity, severity)}",
        "",
        (
            f"**{_cell(cr.get('title', ''))}** · project `{cr.get('project')}` · {ref}{sha} · status "
            f"**{cr.get('status')}** · [open in the portal]({portal.link(str(cr.get('url', '')))})"
        ),
        "",
    ]
    if outcome == "revised":
        lines += [
            (
                f"This run added revision {cr['revision']} to the branch's change request: approvals given to "
                "earlier revisions no longer count."
            ),
            "",
        ]
    elif outcome == "unchanged":
        lines += [f"Same definitions as revision {cr['revision']}: no new revision, its approvals stand.", ""]
    summary = plan.get("summary") or {}
    lines += [
        "{added} added, {changed} changed, {removed} removed ({breaking} breaking, {risky} risky, {safe} safe) under "
        "{mode} compatibility.".format(
            mode=plan.get("compatibility", "?"), **{k: summary.get(k, 0) for k in SUMMARY_KEYS}
        ),
        "",
        "| severity | object | change |",
        "|---|---|---|",
    ]
    for obj in plan.get("objects", []):
        items = [i for i in obj.get("items", []) if i.get("rule") != "object.follows_from"] or obj.get("items", [])
        for item in items:
            lines.append(
                f"| {SEVERITY_MARK.get(item.get('severity'), item.get('severity'))} "
                f"| {_label(obj['kind'])} `{_cell(obj['name'])}` ({obj.get('action')}) "
                f"| {_cell(item.get('message', ''))} (`{item.get('rule')}`) |"
            )
    impact = plan.get("impact") or {}
    broken = severity != "safe"
    if impact.get("services") or impact.get("models"):
        lines += ["", "**Breaks**" if severity == "breaking" else "**Affects**"]
        if impact.get("services"):
            lines.append("- feature services: " + ", ".join(f"`{_cell(s)}`" for s in impact["services"]))
        for model in impact.get("models", []):
            team = f", team {model['team']}" if model.get("team") else ""
            lines.append(
                f"- model `{_cell(model.get('name'))}` version {_cell(model.get('version'))} "
                f"(on `{_cell(model.get('service'))}`{team})"
            )
    elif broken:
        lines += ["", "No registered feature service or model reads what changes."]
    lines += ["", "**Approvals**"]
    given = approvals.get("approvals", [])
    lines.append(
        f"- {len(given)} of {approvals.get('required_approvals', '?')} on revision {cr['revision']}"
        + (": " + ", ".join(a["user"] for a in given) if given else "")
    )
    if cr.get("status") in ("approved", "applying", "applied"):
        lines.append("- approved: it is applied when this branch is merged")
    else:
        lines += [f"- still needed: {m}" for m in approvals.get("missing", [])]
    for old in approvals.get("superseded", []):
        lines.append(f"- {old['user']} ({old['decision']}) on revision {old['revision']}: superseded, not counted")
    warnings = plan.get("warnings") or []
    if warnings:
        lines += ["", "**Warnings**", *[f"- {_cell(w)}" for w in warnings]]
    return "\n".join(lines) + "\n"


SUMMARY_KEYS = ("added", "changed", "removed", "breaking", "risky", "safe")


def invalid_markdown(project: str, ref: str, error: ApiError) -> str:
    lines = [f"### Feature Portal: 🔴 the portal refused this repo (`{project}`, `{ref}`)", "", _cell(error), ""]
    details = error.details if isinstance(error.details, dict) else {}
    for field, messages in details.items():
        for message in messages if isinstance(messages, list) else [messages]:
            lines.append(f"- {field}: {_cell(message)}")
    lines.append("\nNothing was proposed.")
    return "\n".join(lines) + "\n"


def nothing_markdown(project: str, ref: str, live: dict[str, Any] | None, portal: Portal) -> str:
    lines = [
        f"### Feature Portal: 🟢 nothing to plan (`{project}`, `{ref}`)",
        "",
        "The registry already holds these definitions: nothing would change.",
    ]
    if live is not None:
        lines += [
            "",
            (
                f"CR-{live['id']} ({live['status']}) was opened from an earlier commit of this branch and still "
                f"proposes its change: withdraw it if the branch no longer needs it ({portal.link(str(live['url']))})."
            ),
        ]
    return "\n".join(lines) + "\n"


# --- Commands -------------------------------------------------------------------------------------------------


def _say(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def _note(text: str) -> None:
    sys.stderr.write(text + "\n")


def _live_for_ref(portal: Portal, project: str, repo: str, branch: str) -> dict[str, Any] | None:
    _, page = portal.call(
        "GET", "change-requests/", query={"project": project, "external_repo": repo, "external_branch": branch}
    )
    return next((c for c in page.get("results", []) if c.get("status") in LIVE), None)


def _detail(portal: Portal, cr_id: int) -> dict[str, Any]:
    try:
        _, cr = portal.call("GET", f"change-requests/{cr_id}/")
    except ApiError as exc:
        if exc.status == 404:
            raise Failure(f"there is no change request CR-{cr_id}") from None
        raise
    return dict(cr)


def _propose(portal: Portal, args: argparse.Namespace, archive: bytes, ref: tuple[str, str]) -> tuple[int, Any]:
    fields = {
        "project": args.project,
        "title": (args.title or f"{ref[0]}@{ref[1]}")[:200],
        "submit": "true",
        "external_repo": ref[0],
        "external_branch": ref[1],
    }
    if args.sha:
        fields["external_sha"] = args.sha
    if args.mode:
        fields["mode"] = args.mode
    form = multipart(fields, "archive", f"{Path(args.repo_dir).resolve().name or 'repo'}.zip", archive)
    deadline = time.monotonic() + args.timeout
    # The portal parses and plans the upload in a worker's plan job: a quick plan answers at once (`wait`),
    # a slow one answers 202 with the job, which is polled until it finishes (bounded by --timeout).
    wait = max(0.0, min(PLAN_WAIT_SECONDS, args.timeout - 5))
    status, body = portal.call(
        "POST", f"change-requests/?wait={wait:g}", form=form, timeout=min(args.timeout, wait + 60)
    )
    if status != 202:
        return status, body
    return _plan_job_outcome(portal, body, deadline=deadline, poll=args.poll)


def _plan_job_outcome(portal: Portal, job: dict[str, Any], *, deadline: float, poll: float) -> tuple[int, Any]:
    """Poll the plan job until it finishes: (200/201, the proposed request with its `outcome`), or the portal's
    error (ApiError) the job failed with, as the propose itself would have answered it."""
    while job.get("status") not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() >= deadline:
            raise Failure(
                f"the portal's plan (job {job['id']}) did not finish in time (--timeout); see "
                + portal.link(f"/jobs/{job['id']}/")
            )
        time.sleep(poll)
        _, job = portal.call("GET", f"jobs/{job['id']}/")
    result = job.get("result") or {}
    if job["status"] != "succeeded":
        code = int(result.get("status_code") or 400)
        raise ApiError(code, str(result.get("code") or "invalid"), str(job.get("error") or "the plan failed"), {})
    cr = _detail(portal, int(result["change_request"]))
    cr["outcome"] = result.get("outcome", "created")
    return (201 if cr["outcome"] == "created" else 200), cr


def _explain(exc: ApiError, doing: str) -> Failure:
    """A portal error as the one line CI shows."""
    hints = {
        401: "PORTAL_TOKEN was refused",
        403: "the token's user or scopes do not allow this",
        404: "not found",
        409: "conflict",
        413: "the archive is larger than the portal accepts",
        429: "rate-limited: retry later",
    }
    hint = hints.get(exc.status, f"HTTP {exc.status}")
    return Failure(f"{doing}: {hint}: {exc}")


def cmd_plan(portal: Portal, args: argparse.Namespace) -> int:
    ref = parse_ref(args.ref)
    archive, _members = repo_archive(Path(args.repo_dir))
    portal.whoami()
    ref_text = f"{ref[0]}@{ref[1]}"
    try:
        status, cr = _propose(portal, args, archive, ref)
    except ApiError as exc:
        if exc.status == 400 and exc.api_code == "unchanged":
            text = nothing_markdown(args.project, ref_text, _live_for_ref(portal, args.project, *ref), portal)
            _emit(args, text)
            return OK
        if exc.status == 400:
            _emit(args, invalid_markdown(args.project, ref_text, exc))
            _note(f"feature_portal: the portal refused the repo: {exc}")
            return NOT_ACCEPTABLE
        raise _explain(exc, f"proposing {args.repo_dir} for {ref_text}") from None
    _emit(args, plan_markdown(portal, cr, str(cr.get("outcome", "created" if status == 201 else "revised"))))
    return _plan_exit(cr, args.fail_on)


def _plan_exit(cr: dict[str, Any], fail_on: str) -> int:
    if cr.get("status") in ("approved", "applying", "applied"):
        return OK
    if cr.get("status") == "rejected":
        return NOT_ACCEPTABLE
    order = ["safe", "risky", "breaking"]
    severity = str(cr.get("severity", "breaking"))
    return NOT_ACCEPTABLE if order.index(severity) >= order.index(fail_on) else OK


def _emit(args: argparse.Namespace, text: str) -> None:
    if getattr(args, "markdown_out", None):
        try:
            Path(args.markdown_out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise Failure(f"cannot write --markdown-out {args.markdown_out}: {exc.strerror or exc}") from None
    _say(text)


def cmd_status(portal: Portal, args: argparse.Namespace) -> int:
    portal.whoami()
    if args.id is not None:
        cr = _detail(portal, args.id)
    else:
        if not (args.project and args.ref):
            raise Failure("status needs --id N, or --project and --ref REPO@BRANCH")
        repo, branch = parse_ref(args.ref)
        live = _live_for_ref(portal, args.project, repo, branch)
        if live is None:
            raise Failure(f"no live change request for {repo}@{branch} in project {args.project}")
        cr = _detail(portal, int(live["id"]))
    if args.json:
        _say(json.dumps(cr, indent=2, sort_keys=True))
        return OK
    approvals = cr.get("approvals") or {}
    lines = [
        f"CR-{cr['id']} revision {cr['revision']}: {cr['status']} ({cr['severity']}) {portal.link(str(cr['url']))}",
        f"approvals: {len(approvals.get('approvals', []))} of {approvals.get('required_approvals')} on revision "
        f"{cr['revision']}" + "".join(f"; {a['user']}" for a in approvals.get("approvals", [])),
        *[f"still needed: {m}" for m in approvals.get("missing", []) if cr["status"] == "submitted"],
        *[
            f"superseded: {a['user']} ({a['decision']}) on revision {a['revision']}"
            for a in approvals.get("superseded", [])
        ],
    ]
    if cr.get("stale_reason"):
        lines.append(f"stale: {cr['stale_reason']}")
    if (cr.get("apply_result") or {}).get("error"):
        lines.append(f"apply: {cr['apply_result']['error']}")
    _say("\n".join(lines))
    return OK


def _find_for_apply(portal: Portal, args: argparse.Namespace) -> dict[str, Any] | None:
    """The request to apply: --id, else the repository's live request planned from exactly this folder, else
    the one this folder is proposed as (plan); None when the registry already holds the folder."""
    if args.id is not None:
        return _detail(portal, args.id)
    if not args.project or not args.ref:
        raise Failure("apply needs --id N, or REPO_DIR with --project and --ref REPO@BRANCH")
    if not args.repo_dir:
        raise Failure("apply with --ref needs REPO_DIR (the merged repo folder)")
    repo, branch = parse_ref(args.ref)
    archive, _ = repo_archive(Path(args.repo_dir))
    digest = hashlib.sha256(archive).hexdigest()
    _, page = portal.call(
        "GET", "change-requests/", query={"project": args.project, "external_repo": repo, "archive_sha256": digest}
    )
    candidates = [c for c in page.get("results", []) if c.get("status") in LIVE and c.get("status") != "rejected"]
    rank = {"applying": 0, "approved": 1}
    candidates.sort(key=lambda c: (rank.get(c["status"], 2), -int(c["id"])))
    if candidates:
        _say(f"CR-{candidates[0]['id']} planned exactly this folder")
        return _detail(portal, int(candidates[0]["id"]))
    # No request planned this folder as it is (e.g. a merge combined several branches): propose it for this
    # branch, so it is reviewed like any other change.
    try:
        _, cr = _propose(portal, args, archive, (repo, branch))
    except ApiError as exc:
        if exc.status == 400 and exc.api_code == "unchanged":
            return None
        if exc.status == 400:
            raise Failure(f"the portal refused {args.repo_dir}: {exc}", NOT_ACCEPTABLE) from None
        raise _explain(exc, f"proposing {args.repo_dir} for {repo}@{branch}") from None
    _say(f"no request planned this folder as it is; proposed it as CR-{cr['id']}")
    return dict(cr)


def cmd_apply(portal: Portal, args: argparse.Namespace) -> int:
    portal.whoami()
    cr = _find_for_apply(portal, args)
    if cr is None:
        _say("Nothing to apply: the registry already holds these definitions.")
        return OK
    name = f"CR-{cr['id']}"
    deadline = time.monotonic() + args.wait_approval
    while cr["status"] in ("draft", "submitted", "stale", "failed") and time.monotonic() < deadline:
        time.sleep(args.poll)
        cr = _detail(portal, int(cr["id"]))
    status = cr["status"]
    if status == "applied":
        _say(f"{name} is already applied.")
        return OK
    if status in ("rejected", "withdrawn"):
        raise Failure(f"{name} was {status}; nothing applied", NOT_ACCEPTABLE)
    if status != "approved" and status != "applying":
        missing = "; ".join((cr.get("approvals") or {}).get("missing", []))
        raise Failure(
            f"{name} is {status}, not approved, after waiting {args.wait_approval:g} s"
            + (f" (still needs {missing})" if missing and status == "submitted" else "")
            + (f": {cr.get('stale_reason')}" if cr.get("stale_reason") else "")
            + f"; nothing applied: {portal.link(str(cr['url']))}",
            NOT_ACCEPTABLE,
        )
    if status == "approved":
        try:
            _, job = portal.call("POST", f"change-requests/{cr['id']}/apply/")
            _say(f"applying {name} (job {job.get('id')})")
        except ApiError as exc:
            if exc.status != 409:  # 409: someone (auto-apply) started it meanwhile: wait for that apply
                raise _explain(exc, f"starting the apply of {name}") from None
    deadline = time.monotonic() + args.timeout
    while True:
        cr = _detail(portal, int(cr["id"]))
        if cr["status"] not in ("approved", "applying"):
            break
        if time.monotonic() >= deadline:
            raise Failure(
                f"{name} is still {cr['status']} after {args.timeout:g} s (--timeout); see {portal.link(cr['url'])}"
            )
        time.sleep(args.poll)
    result = cr.get("apply_result") or {}
    if cr["status"] == "applied":
        applied = ", ".join(result.get("applied", [])) or "nothing"
        _say(f"{name} applied: {applied}")
        return OK
    reason = cr.get("stale_reason") or result.get("error") or "see the request"
    registry = f" (registry {result['registry']})" if result.get("registry") else ""
    raise Failure(f"{name} was not applied: {cr['status']}{registry}: {reason}", NOT_ACCEPTABLE)


def cmd_verify(portal: Portal, args: argparse.Namespace) -> int:
    portal.whoami()
    service = urllib.parse.quote(urllib.parse.quote(args.service, safe=""), safe="")
    project = urllib.parse.quote(urllib.parse.quote(args.project, safe=""), safe="")
    try:
        _, result = portal.call(
            "POST", f"projects/{project}/feature-services/{service}/contract/verify/", json_body={"hash": args.hash}
        )
    except ApiError as exc:
        raise _explain(exc, f"verifying {args.project}/{args.service}") from None
    if args.json:
        _say(json.dumps(result, indent=2, sort_keys=True))
    if result.get("result") == "match":
        if not args.json:
            _say(f"match: {args.service} still serves contract {args.hash[:12]} (version {result.get('version')})")
        return OK
    if not args.json:
        diff = result.get("diff") or []
        _say(
            f"mismatch: {args.service} now serves contract {str(result.get('current_hash'))[:12]}, not the pinned "
            f"{args.hash[:12]}"
            + (f" (known as version {result['known_version']})" if result.get("known_version") else "")
        )
        for change in diff if isinstance(diff, list) else []:
            _say(f"- {json.dumps(change, sort_keys=True)}")
    return NOT_ACCEPTABLE


# --- Entry point ----------------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="feature_portal",
        description="The Feature Portal's CI client. PORTAL_URL and PORTAL_TOKEN come from the environment.",
        epilog="Exit codes: 0 success, 1 the change is not acceptable (breaking, invalid, rejected, not approved, "
        "failed, mismatch), 2 any other error.",
    )
    top.add_argument("--url", default=os.environ.get("PORTAL_URL", ""), help="default: $PORTAL_URL")
    top.add_argument("--token", default=os.environ.get("PORTAL_TOKEN", ""), help="default: $PORTAL_TOKEN")
    sub = top.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="propose the repo folder for a branch and print the plan as Markdown")
    plan.add_argument("repo_dir", help="the Feast repo folder (as checked out)")
    plan.add_argument("--project", required=True, help="the Feast project it defines")
    plan.add_argument("--ref", required=True, help="REPO@BRANCH, e.g. acme/features@my-branch")
    plan.add_argument("--sha", default="", help="the commit (recorded on the request)")
    plan.add_argument("--title", default="", help="the request's title (default: REPO@BRANCH)")
    plan.add_argument("--mode", choices=["partial", "full"], default=None, help="full: deletes what the repo omits")
    plan.add_argument("--fail-on", choices=["risky", "breaking"], default="breaking", help="exit 1 from this severity")
    plan.add_argument("--markdown-out", default="", help="also write the Markdown to this file")
    plan.add_argument("--timeout", type=float, default=300, help="seconds to wait for the plan (default 300)")

    status = sub.add_parser("status", help="a change request's state and approvals")
    status.add_argument("--id", type=int, default=None, help="the request's number (CR-N)")
    status.add_argument("--project", default="")
    status.add_argument("--ref", default="", help="REPO@BRANCH: the branch's live request")
    status.add_argument("--json", action="store_true", help="the whole request as JSON")
    status.add_argument("--timeout", type=float, default=60)

    apply = sub.add_parser("apply", help="after a merge: wait until approved, apply, wait for the job")
    apply.add_argument("repo_dir", nargs="?", default="", help="the merged Feast repo folder")
    apply.add_argument("--project", default="")
    apply.add_argument("--ref", default="", help="REPO@BRANCH being deployed, e.g. acme/features@main")
    apply.add_argument("--sha", default="")
    apply.add_argument("--title", default="")
    apply.add_argument("--mode", choices=["partial", "full"], default=None)
    apply.add_argument("--id", type=int, default=None, help="apply this request (CR-N) instead")
    apply.add_argument("--wait-approval", type=float, default=0, help="seconds to wait for approvals (default 0)")
    apply.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the apply (default 1800)")

    verify = sub.add_parser("verify", help="check a model's pinned contract hash against a feature service")
    verify.add_argument("--project", required=True)
    verify.add_argument("--service", required=True, help="the feature service the model reads")
    verify.add_argument("--hash", required=True, help="the contract hash the model pinned")
    verify.add_argument("--json", action="store_true", help="the whole answer as JSON")
    verify.add_argument("--timeout", type=float, default=60)

    for command in (plan, status, apply, verify):
        command.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)
    return top


COMMANDS = {"plan": cmd_plan, "status": cmd_status, "apply": cmd_apply, "verify": cmd_verify}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        # every call but the plan's upload and the apply's wait is short: a minute at most
        portal = Portal(args.url, args.token, min(float(args.timeout), 60.0))
        return COMMANDS[args.command](portal, args)
    except Failure as exc:
        _note(f"feature_portal: {exc}")
        return exc.code
    except KeyboardInterrupt:
        _note("feature_portal: interrupted")
        return ERROR
    except Exception as exc:  # noqa: BLE001  (never a traceback in a CI log: one line, exit 2)
        _note(f"feature_portal: unexpected error: {type(exc).__name__}: {exc}")
        return ERROR


if __name__ == "__main__":
    sys.exit(main())
