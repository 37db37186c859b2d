"""deploy/kubernetes/: the base, each account's overlay and the hub render to valid, consistent objects.

No kustomize binary is needed: :func:`build` does what the kustomizations here use
(resources, patches, namespace, labels) and refuses any other field, so an overlay can
never rely on something these tests ignore. Where ``kubectl`` is installed, its
``kubectl kustomize`` output must equal :func:`build`'s. Every rendered object is
validated against the Kubernetes schemas (PyPI's kubernetes-validate), the Prometheus
operator's objects against a schema of their fields, and the settings of each
overlay's ConfigMap through LakeCircle's own settings loader. The hub overlay (one
LakeCircle for an organization's accounts) is checked against the member role it assumes
(deploy/aws/member-role.yaml) and its own policy (deploy/iam-policy-hub.json).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]  # no stubs; a mypy override is the lead's call
import pytest
import yaml

from lakecircle.engine.write import SHIELDED_TIMEOUT
from lakecircle.setting_values import check_replica_id
from lakecircle.settings import ENV_PREFIX, Settings, load_settings
from tests.deploy_common import ALERTS, DEPLOY, load_cloudformation, load_yaml, load_yaml_all

KUBERNETES = DEPLOY / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAYS = sorted(p for p in (KUBERNETES / "overlays").iterdir() if (p / "kustomization.yaml").exists())
KUBERNETES_VERSION = "1.30.0"

MULTI_ACCOUNT_SETTINGS = frozenset({"LCC_ACCOUNTS", "LCC_ROLE_NAME", "LCC_ACCOUNT_FILTER"})
"""The settings of multi-account mode (issue 16); an overlay that sets LCC_ACCOUNTS is a hub."""

SUPPORTED = {"apiVersion", "kind", "namespace", "labels", "resources", "patches"}
"""The kustomization fields :func:`build` implements."""

CLUSTER_SCOPED = {"Namespace"}

Object = dict[str, Any]


# -- a small kustomize --------------------------------------------------------------


def _merge(target: Object, patch: Object, where: str) -> None:
    """A strategic merge patch without lists: maps merge key by key, scalars replace."""
    for key, value in patch.items():
        assert not isinstance(value, list), f"{where}: a patch with a list ({key}) needs real kustomize"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, where)
        else:
            target[key] = copy.deepcopy(value)


def build(directory: Path) -> list[Object]:
    """The objects ``kustomize build directory`` prints, for the fields in :data:`SUPPORTED`."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    unsupported = set(kustomization) - SUPPORTED
    assert not unsupported, f"{directory}: {sorted(unsupported)} not understood by these tests"
    assert kustomization["kind"] == "Kustomization"
    objects: list[Object] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory / 'kustomization.yaml'}: resource {entry} does not exist"
        objects.extend(build(path) if path.is_dir() else load_yaml_all(path))
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"{directory}: only file patches are understood: {patch}"
        path = directory / patch["path"]
        assert path.is_file(), f"{directory / 'kustomization.yaml'}: patch {patch['path']} does not exist"
        for document in load_yaml_all(path):
            key = (document["kind"], document["metadata"]["name"])
            targets = [o for o in objects if (o["kind"], o["metadata"]["name"]) == key]
            assert len(targets) == 1, f"{path}: patches {key}, which the resources hold {len(targets)} times"
            _merge(targets[0], {k: v for k, v in document.items() if k not in ("apiVersion", "kind")}, str(path))
    for entry in kustomization.get("labels", []):
        assert set(entry) <= {"pairs"}, f"{directory}: labels with selectors or templates need real kustomize"
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    namespace = kustomization.get("namespace")
    if namespace is not None:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
    return objects


def by_kind(objects: list[Object]) -> dict[str, Object]:
    found: dict[str, Object] = {}
    for obj in objects:
        assert obj["kind"] not in found, f"two {obj['kind']} objects: one of each is expected"
        found[obj["kind"]] = obj
    return found


RENDERED = {"base": BASE, **{f"overlays/{p.name}": p for p in OVERLAYS}}


@pytest.fixture(params=sorted(RENDERED), scope="module")
def rendered(request: pytest.FixtureRequest) -> dict[str, Object]:
    return by_kind(build(RENDERED[request.param]))


# -- schemas of the Prometheus operator's objects -------------------------------------

DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
CRD_SCHEMAS: dict[str, dict[str, Any]] = {
    # The fields of monitoring.coreos.com/v1 these manifests use, as the operator's CRDs define them.
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": STRING_MAP},
                    },
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": DURATION,
                                "scrapeTimeout": DURATION,
                                "honorLabels": {"type": "boolean"},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": METADATA,
            "spec": {
                "type": "object",
                "required": ["groups"],
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1},
                                "interval": DURATION,
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["expr"],
                                        "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                        "additionalProperties": False,
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": ["string", "integer"]},
                                            "for": DURATION,
                                            "keep_firing_for": DURATION,
                                            "labels": STRING_MAP,
                                            "annotations": STRING_MAP,
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def validate(obj: Object) -> None:
    schema = CRD_SCHEMAS.get(obj["kind"])
    if schema is not None:
        jsonschema.validate(obj, schema)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# -- the tests ------------------------------------------------------------------------


def test_every_kustomization_references_existing_files() -> None:
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        data = load_yaml(kustomization)
        for entry in data.get("resources", []):
            assert (kustomization.parent / entry).exists(), f"{kustomization}: {entry}"
        for patch in data.get("patches", []):
            assert (kustomization.parent / patch["path"]).is_file(), f"{kustomization}: {patch}"


def test_every_manifest_file_is_used_by_a_kustomization() -> None:
    used: set[Path] = set()
    for kustomization in KUBERNETES.rglob("kustomization.yaml"):
        data = load_yaml(kustomization)
        used |= {(kustomization.parent / e).resolve() for e in data.get("resources", [])}
        used |= {(kustomization.parent / p["path"]).resolve() for p in data.get("patches", [])}
    files = {p.resolve() for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert files - used == set()


def _is_hub(overlay: Path) -> bool:
    return "LCC_ACCOUNTS" in by_kind(build(overlay))["ConfigMap"]["data"]


def test_there_is_an_overlay_per_account_for_at_least_two_accounts() -> None:
    single = [p for p in OVERLAYS if not _is_hub(p)]
    accounts = [by_kind(build(p))["ConfigMap"]["data"]["LCC_AWS_ACCOUNT"] for p in single]
    assert len(accounts) >= 2
    assert len(set(accounts)) == len(accounts), "one LakeCircle per account"
    namespaces = {by_kind(build(p))["Deployment"]["metadata"]["namespace"] for p in OVERLAYS}
    assert len(namespaces) == len(OVERLAYS)


def test_every_rendered_object_validates(rendered: dict[str, Object]) -> None:
    expected = {"ServiceAccount", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceMonitor"}
    expected |= {"PrometheusRule"}
    assert expected <= set(rendered)
    for obj in rendered.values():
        validate(obj)


def test_the_validation_can_fail() -> None:
    deployment = by_kind(build(BASE))["Deployment"]
    deployment["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    monitor = by_kind(build(BASE))["ServiceMonitor"]
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor)


def test_the_deployment_runs_non_root_read_only_replicas_with_probes(rendered: dict[str, Object]) -> None:
    spec = rendered["Deployment"]["spec"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == rendered["ServiceAccount"]["metadata"]["name"]
    [container] = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    assert container["envFrom"] == [{"configMapRef": {"name": rendered["ConfigMap"]["metadata"]["name"]}}]


# -- replicas: one writer at a time, by the lease ------------------------------------------


def test_the_deployment_runs_two_replicas_replaced_one_at_a_time(rendered: dict[str, Object]) -> None:
    spec = rendered["Deployment"]["spec"]
    assert spec["replicas"] == 2
    # The new pod starts (as a standby, ready) before an old one stops: never fewer than two.
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_a_disruption_budget_keeps_one_replica_of_the_deployment(rendered: dict[str, Object]) -> None:
    budget = rendered["PodDisruptionBudget"]["spec"]
    pod_labels = rendered["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert budget["minAvailable"] == 1 < rendered["Deployment"]["spec"]["replicas"]
    assert "maxUnavailable" not in budget
    assert budget["selector"] == rendered["Deployment"]["spec"]["selector"]
    assert budget["selector"]["matchLabels"].items() <= pod_labels.items()


def test_the_replicas_prefer_different_nodes(rendered: dict[str, Object]) -> None:
    template = rendered["Deployment"]["spec"]["template"]
    anti = template["spec"]["affinity"]["podAntiAffinity"]
    assert set(anti) == {"preferredDuringSchedulingIgnoredDuringExecution"}, "required would leave one pending"
    [preferred] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert "namespaces" not in term, "the replicas of this namespace's Deployment, not another account's"


def test_each_replica_is_named_by_its_pod(rendered: dict[str, Object]) -> None:
    [container] = rendered["Deployment"]["spec"]["template"]["spec"]["containers"]
    env = {entry["name"]: entry for entry in container["env"]}
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= known
    assert env["LCC_REPLICA_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "LCC_REPLICA_ID" not in rendered["ConfigMap"]["data"], "one name per pod, not one for all"
    assert check_replica_id("lakecircle-5d8f7c9b6-x2x7q") == "lakecircle-5d8f7c9b6-x2x7q"  # a pod's name fits


def test_the_grace_period_covers_the_writes_under_way_and_the_release_of_the_lease(
    rendered: dict[str, Object],
) -> None:
    data = rendered["ConfigMap"]["data"]
    defaults = Settings.model_fields
    shutdown = float(data.get("LCC_SHUTDOWN_TIMEOUT", defaults["shutdown_timeout"].default))
    lease = float(data.get("LCC_LEASE_SECONDS", defaults["lease_seconds"].default))
    assert lease > 0, "leases on: the base runs two replicas"
    grace = rendered["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    records = 2 * SHIELDED_TIMEOUT  # a cut write's change record and the cut cycle's report
    assert grace > shutdown + records + lease / 3


def test_ports_selectors_and_names_line_up(rendered: dict[str, Object]) -> None:
    pod = rendered["Deployment"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports, probe
    metrics_addr = rendered["ConfigMap"]["data"]["LCC_METRICS_ADDR"]
    host, _, port = metrics_addr.rpartition(":")
    assert host == "0.0.0.0", "in a pod LakeCircle must listen beyond loopback to be scraped and probed"  # noqa: S104
    assert int(port) in ports.values()

    service = rendered["Service"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert rendered["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    for port_spec in service_ports.values():
        assert port_spec["targetPort"] in ports

    monitor = rendered["ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= set(service_ports)
    # The alerts select job="lakecircle": the job label of a ServiceMonitor's targets is the Service's name.
    assert "jobLabel" not in monitor["spec"]
    assert service["metadata"]["name"] == "lakecircle"


def test_the_pod_runs_as_the_images_user(rendered: dict[str, Object]) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    user = next(line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER "))
    uid = int(user.split(":")[0])
    assert rendered["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_the_configmap_holds_settings_lakecircle_accepts(
    rendered: dict[str, Object], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = rendered["ConfigMap"]["data"]
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(data) - MULTI_ACCOUNT_SETTINGS <= known, f"not LakeCircle settings: {sorted(set(data) - known)}"
    pending = (set(data) & MULTI_ACCOUNT_SETTINGS) - known
    if pending:
        pytest.xfail(f"{sorted(pending)}: the settings of multi-account mode are not in this branch's Settings yet")
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    settings = load_settings(environ=data, **{k.removeprefix(ENV_PREFIX).lower(): v for k, v in data.items()})
    settings.require("endpoint", "aws_account", "aws_region")
    assert settings.metrics_host_port[1] == 9739


def test_the_service_account_assumes_a_role_in_its_own_account(rendered: dict[str, Object]) -> None:
    role = rendered["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.startswith("arn:aws:iam::")
    assert role.split(":")[4] == rendered["ConfigMap"]["data"]["LCC_AWS_ACCOUNT"]


# -- the hub: one LakeCircle for an organization ------------------------------------------

HUB = KUBERNETES / "overlays" / "hub"
MEMBER_ROLE = DEPLOY / "aws" / "member-role.yaml"
HUB_POLICY = DEPLOY / "iam-policy-hub.json"


def test_the_hub_overlay_is_the_only_one_that_manages_many_accounts() -> None:
    assert [p.name for p in OVERLAYS if _is_hub(p)] == [HUB.name]


def test_the_hub_manages_the_organization_through_the_member_roles_name() -> None:
    data = by_kind(build(HUB))["ConfigMap"]["data"]
    assert data["LCC_ACCOUNTS"] == "organization"
    member_role_name = load_cloudformation(MEMBER_ROLE)["Parameters"]["RoleName"]["Default"]
    assert data["LCC_ROLE_NAME"] == member_role_name, "the hub assumes the role the StackSet creates"


def test_the_hubs_own_role_is_not_named_like_the_member_role() -> None:
    """A member role may exist in the hub's account too (when that account is managed): the names must differ."""
    hub = by_kind(build(HUB))
    role_arn = hub["ServiceAccount"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role_arn.split(":")[4] == hub["ConfigMap"]["data"]["LCC_AWS_ACCOUNT"]
    assert role_arn.rpartition("/")[2] != hub["ConfigMap"]["data"]["LCC_ROLE_NAME"]


def test_the_hubs_policy_lets_it_assume_the_role_it_is_configured_to_assume() -> None:
    data = by_kind(build(HUB))["ConfigMap"]["data"]
    statements = json.loads(HUB_POLICY.read_text(encoding="utf-8"))["Statement"]
    [assume] = [s for s in statements if s["Action"] == ["sts:AssumeRole"]]
    assert assume["Resource"] == f"arn:aws:iam::*:role/{data['LCC_ROLE_NAME']}"


def test_the_prometheus_rule_carries_the_alerts_file() -> None:
    rule = by_kind(build(BASE))["PrometheusRule"]
    assert rule["spec"]["groups"] == load_yaml(ALERTS)["groups"]


def test_the_prometheus_rule_is_what_its_script_generates() -> None:
    script = DEPLOY / "prometheus" / "prometheusrule.py"
    namespace: dict[str, Any] = {"__name__": "prometheusrule", "__file__": str(script)}
    exec(compile(script.read_text(encoding="utf-8"), str(script), "exec"), namespace)  # noqa: S102 -- our script
    expected = namespace["render"](ALERTS.read_text(encoding="utf-8"))
    actual = (BASE / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert actual == expected, "run: python deploy/prometheus/prometheusrule.py"
    assert yaml.safe_load(expected)["spec"]["groups"] == load_yaml(ALERTS)["groups"]


@pytest.mark.parametrize("directory", sorted(RENDERED))
def test_kubectl_kustomize_renders_the_same(directory: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the small kustomize of this module stands in for it")
    result = subprocess.run(  # noqa: S603 -- kubectl on our own files
        [kubectl, "kustomize", str(RENDERED[directory])], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    theirs = sorted(yaml.safe_load_all(result.stdout), key=lambda o: (o["kind"], o["metadata"]["name"]))
    ours = sorted(build(RENDERED[directory]), key=lambda o: (o["kind"], o["metadata"]["name"]))
    assert ours == theirs
