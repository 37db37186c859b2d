"""deploy/docker-compose.yml: every file it mounts exists, and the pieces fit together.

No container engine runs here, so the compose file is checked as data: its mounts and
build context exist, the Prometheus it configures accepts its config and alerts
(``promtool check config`` on the files laid out as the container sees them), Grafana's
dashboard lands where the provisioning looks, and the seed script fills an S3 server
(moto's, over HTTP, as in the rest of the suite) the way LakeCircle's settings expect.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from tests.deploy_common import DEPLOY, GRAFANA, alert_rules, load_yaml, require_binary

COMPOSE = DEPLOY / "docker-compose.yml"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def mounts(service: dict[str, Any]) -> list[tuple[Path, PurePosixPath]]:
    """(host path, container path) of each bind mount, host paths resolved from the compose file."""
    found = []
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith((".", "/")):
            found.append(((COMPOSE.parent / source).resolve(), PurePosixPath(target)))
    return found


def test_compose_runs_lakecircle_s3_prometheus_and_grafana() -> None:
    services = compose()["services"]
    assert {"lakecircle", "s3", "prometheus", "grafana"} <= set(services)
    images = {name: str(s.get("image", "")) for name, s in services.items()}
    assert images["s3"].startswith("motoserver/moto:")
    assert images["prometheus"].startswith("prom/prometheus:")
    assert images["grafana"].startswith("grafana/grafana:")
    for name, image in images.items():
        assert not image.endswith(":latest"), f"{name}: pin the image"


def test_every_mounted_file_exists() -> None:
    services = compose()["services"]
    mounted = [(name, host) for name, service in services.items() for host, _ in mounts(service)]
    assert len(mounted) >= 5
    for name, host in mounted:
        assert host.exists(), f"{name} mounts {host}, which does not exist"


def test_the_image_is_built_from_the_repository_with_the_dockerfile() -> None:
    for name in ("lakecircle", "seed"):
        build = compose()["services"][name]["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert (context / "pyproject.toml").exists(), name
        assert (context / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()


def test_lakecircle_talks_to_the_s3_service_and_is_scraped_on_its_port() -> None:
    services = compose()["services"]
    env = services["lakecircle"]["environment"]
    s3_port = services["s3"]["environment"]["MOTO_PORT"]
    assert env["AWS_ENDPOINT_URL"] == f"http://s3:{s3_port}"
    assert env["LCC_VERIFY_ACCOUNT"] == "true", "moto answers STS; the account check stays on"
    assert env["LCC_METRICS_ADDR"] == "0.0.0.0:9739"
    assert services["lakecircle"]["depends_on"]["seed"]["condition"] == "service_completed_successfully"
    config_host = next(h for h, t in mounts(services["prometheus"]) if t.name == "prometheus.yml")
    config = load_yaml(config_host)
    [job] = config["scrape_configs"]
    assert job["job_name"] == "lakecircle", "the alerts select job=lakecircle"
    assert job["static_configs"][0]["targets"] == ["lakecircle:9739"]


def test_prometheus_accepts_the_config_and_alerts_as_mounted(tmp_path: Path) -> None:
    promtool = require_binary("promtool", "/usr/bin/promtool")
    service = compose()["services"]["prometheus"]
    config_flag = next(a for a in service["command"] if a.startswith("--config.file="))
    config_in_container = PurePosixPath(config_flag.partition("=")[2])
    root = tmp_path / "container"
    for host, target in mounts(service):
        local = root / target.relative_to("/")
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(host, local)
    config = root / config_in_container.relative_to("/")
    for rule_file in load_yaml(config)["rule_files"]:
        assert (config.parent / rule_file).exists(), f"rule file {rule_file} is not mounted next to the config"
    result = subprocess.run(  # noqa: S603 -- Debian's promtool on our own files
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_grafana_gets_the_dashboard_where_provisioning_looks() -> None:
    service = compose()["services"]["grafana"]
    provisioning = {target: host for host, target in mounts(service)}
    assert provisioning[PurePosixPath("/etc/grafana/provisioning")] == (GRAFANA / "provisioning").resolve()
    dashboards = [t for t, h in provisioning.items() if h == (GRAFANA / "lakecircle.json").resolve()]
    [dashboard_path] = dashboards
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "lakecircle.yml")["providers"][0]
    assert dashboard_path.parent == PurePosixPath(provider["options"]["path"])
    source = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert source["url"] == "http://prometheus:9090"


def test_the_seed_script_fills_the_s3_server_for_lakecircles_settings(moto: str, s3_client: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LCC_")}
    env["AWS_ENDPOINT_URL"] = moto
    seed = DEPLOY / "compose" / "seed.py"
    for _ in range(2):  # the second run finds the endpoint bucket and does nothing
        result = subprocess.run(  # noqa: S603 -- our own interpreter and script
            [sys.executable, str(seed)], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to do" in result.stdout
    endpoint = compose()["services"]["lakecircle"]["environment"]["LCC_ENDPOINT"]
    bucket, _, prefix = endpoint.removeprefix("s3://").partition("/")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}definition/")["Contents"]]
    assert keys
    assert all(k.endswith(".toml") for k in keys)
