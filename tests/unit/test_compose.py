"""docker-compose.yml, the Dockerfiles, deploy/prometheus.yml and the Grafana provisioning agree
with each other and with the code: there is no Docker engine here, so they are checked by parsing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no types-PyYAML in the lock
from faststream.rabbit.prometheus import RabbitPrometheusMiddleware
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from services.analytics import telemetry as analytics_series
from services.connectors import telemetry as connectors_series
from services.connectors.config import ConnectorSettings
from services.gateway import telemetry as gateway_series
from services.ingest import telemetry as ingest_series
from shared import dlq_watch, metrics
from shared.settings import Settings
from tests.infra import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
PYTHON_SERVICES = {"gateway": 8000, "ingest": 8001, "analytics": 8002, "connectors": 8003}
INFRA = ("rabbitmq", "mongo")
# Per-queue series of RabbitMQ's /metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count
# and aggregated ones of /metrics, as served by rabbitmq_prometheus 3.10 (read from a live node).
RABBITMQ_SERIES = {
    "rabbitmq_detailed_queue_messages_ready": {"vhost", "queue"},
    "rabbitmq_detailed_queue_messages_unacked": {"vhost", "queue"},
    "rabbitmq_detailed_queue_messages": {"vhost", "queue"},
    "rabbitmq_detailed_queue_consumers": {"vhost", "queue"},
    "rabbitmq_connections": set(),
    "rabbitmq_channels": set(),
}
TARGET_LABELS = {"job", "instance", "service", "__name__"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_every_service_has_an_image_or_build_and_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    expected = {*PYTHON_SERVICES, *INFRA, "sandbox", "prometheus", "grafana"}
    assert expected <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: no healthcheck"


def test_official_infrastructure_images(services: dict[str, dict[str, Any]]) -> None:
    assert services["rabbitmq"]["image"] == "rabbitmq:3-management"
    assert services["mongo"]["image"] == "mongo:7"
    rabbit_mounts = {m.split(":")[1]: m.split(":")[0] for m in services["rabbitmq"]["volumes"]}
    plugins = (ROOT / rabbit_mounts["/etc/rabbitmq/enabled_plugins"]).read_text()
    assert re.fullmatch(r"\[[a-z_,\s]+\]\.\s*", plugins), "enabled_plugins must be an Erlang list term"
    assert {"rabbitmq_prometheus", "rabbitmq_management"} <= set(re.findall(r"rabbitmq_\w+", plugins))
    conf = (ROOT / rabbit_mounts["/etc/rabbitmq/conf.d/20-saleswire.conf"]).read_text()
    assert "prometheus.tcp.port = 15692" in conf
    for line in conf.splitlines():  # sysctl format: `key = value` or comments
        assert not line.strip() or line.startswith("#") or re.fullmatch(r"[a-z_.]+ = \S+", line), line
    assert "15692:15692" in services["rabbitmq"]["ports"]


def test_depends_on_points_at_healthy_infrastructure(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    for name in PYTHON_SERVICES:
        depends = services[name]["depends_on"]
        for infra in INFRA:
            assert depends[infra]["condition"] == "service_healthy", f"{name} must wait for a healthy {infra}"
    assert services["connectors"]["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert set(services["prometheus"]["depends_on"]) >= {*PYTHON_SERVICES, "rabbitmq"}
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    # No cycles: a topological order exists.
    pending = {name: set(service.get("depends_on", {})) for name, service in services.items()}
    while pending:
        ready = [name for name, deps in pending.items() if not deps & set(pending)]
        assert ready, f"depends_on cycle among {sorted(pending)}"
        for name in ready:
            del pending[name]


def test_python_services_share_one_image_and_run_their_own_module(services: dict[str, dict[str, Any]]) -> None:
    fields = set(Settings.model_fields)
    connector_fields = set(ConnectorSettings.model_fields)
    images = set()
    for name, port in PYTHON_SERVICES.items():
        service = services[name]
        build = service["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).is_file()
        images.add(service["image"])
        assert service["command"] == [
            "uvicorn",
            f"services.{name}.main:app",
            "--host",
            "0.0.0.0",
            "--port",
            str(port),
        ]
        assert f"{port}:{port}" in service["ports"]
        env = env_of(service)
        assert env["SERVICE_PORT"] == str(port)  # what the healthcheck probes
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        assert env["SALESWIRE_RABBIT_URL"].split("@")[1].startswith("rabbitmq:5672")
        assert env["SALESWIRE_MONGO_URL"].startswith("mongodb://mongo:27017/")
        assert env["SALESWIRE_NAMESPACE"] and env["SALESWIRE_MONGO_DB"]
        for key in env:  # every SALESWIRE_* variable is a real setting (catches typos)
            if key.startswith("SALESWIRE_CONNECTORS_"):
                assert key.removeprefix("SALESWIRE_CONNECTORS_").lower() in connector_fields, key
            elif key.startswith("SALESWIRE_"):
                assert key.removeprefix("SALESWIRE_").lower() in fields, key
    assert len(images) == 1


def test_dockerfiles_copy_what_exists() -> None:
    for dockerfile in sorted((DEPLOY / "docker").glob("Dockerfile*")):
        if dockerfile.suffix == ".dockerignore":
            continue
        text = dockerfile.read_text()
        assert text.startswith("#") and "FROM python:3.11" in text
        for source in re.findall(r"^COPY (\S+) ", text, flags=re.M):
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
        assert "HEALTHCHECK" in text and "USER " in text


def test_sandbox_runs_the_emulators_on_the_ports_it_publishes(services: dict[str, dict[str, Any]]) -> None:
    sandbox = services["sandbox"]
    command = sandbox["command"]
    assert command[:3] == ["python", "-m", "deploy.sandbox"]
    assert (ROOT / "deploy" / "sandbox" / "__main__.py").is_file()
    ports = {api: command[command.index(f"--{api}") + 1] for api in ("sweetclub", "eduzz", "ofd")}
    assert command[command.index("--host") + 1] == "0.0.0.0"
    for port in ports.values():
        assert f"{port}:{port}" in sandbox["ports"]
        assert port in " ".join(sandbox["healthcheck"]["test"])
    dockerfile = (ROOT / sandbox["build"]["context"] / sandbox["build"]["dockerfile"]).read_text()
    assert f"CMD {json.dumps(command)}" in dockerfile  # the image runs the same thing by default


def test_mounted_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is missing"


def test_prometheus_scrapes_every_service_and_rabbitmq(services: dict[str, dict[str, Any]]) -> None:
    config = load_yaml(DEPLOY / "prometheus.yml")
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    assert (ROOT / mounts["/etc/prometheus/prometheus.yml"]).resolve() == (DEPLOY / "prometheus.yml").resolve()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    scraped = {
        target: static.get("labels", {})
        for static in jobs["saleswire"]["static_configs"]
        for target in static["targets"]
    }
    assert set(scraped) == {f"{name}:{port}" for name, port in PYTHON_SERVICES.items()}
    assert {labels["service"] for labels in scraped.values()} == set(PYTHON_SERVICES)
    assert jobs["saleswire"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["rabbitmq"]["static_configs"][0]["targets"] == ["rabbitmq:15692"]
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"
    assert "queue_coarse_metrics" in jobs["rabbitmq-queues"]["params"]["family"]


def test_grafana_provisioning_matches_compose(services: dict[str, dict[str, Any]]) -> None:
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(provisioning / "dashboards" / "saleswire.yml")["providers"]
    dashboards_dir = provider["options"]["path"]
    assert (ROOT / mounts[dashboards_dir] / "saleswire.json").is_file()
    dashboard = json.loads((ROOT / mounts[dashboards_dir] / "saleswire.json").read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["current"]["value"] == datasource["uid"]


def _known_series() -> dict[str, set[str]]:
    """Every series name a panel may use, with the labels it carries."""
    known: dict[str, set[str]] = {"up": set()}

    def add(collector: MetricWrapperBase) -> None:
        name, kind, labels = collector._name, collector._type, set(collector._labelnames)
        if kind == "counter":
            known[f"{name}_total"] = labels
        elif kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                known[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
        else:
            known[name] = labels

    for module in (metrics, dlq_watch, gateway_series, ingest_series, analytics_series, connectors_series):
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                add(value)
    registry = CollectorRegistry()
    RabbitPrometheusMiddleware(registry=registry)
    for collector in list(registry._collector_to_names):
        assert isinstance(collector, MetricWrapperBase)
        add(collector)
    known.update(RABBITMQ_SERIES)
    return known


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DEPLOY / "grafana" / "dashboards" / "saleswire.json").read_text())
    return data


def test_dashboard_uses_only_real_series_and_labels() -> None:
    known = _known_series()
    dashboard = _dashboard()
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    used: set[str] = set()
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            names = set(re.findall(r"\b((?:saleswire|faststream|rabbitmq)_[a-z_]+|up)\b(?=\s*[{\[)])", expr))
            assert names, f"{panel['title']}: no known series in {expr}"
            unknown = names - set(known)
            assert not unknown, f"{panel['title']}: unknown series {unknown}"
            labels = set().union(*(known[n] for n in names)) | TARGET_LABELS
            grouped = {x.strip() for group in re.findall(r"by \(([^)]*)\)", expr) for x in group.split(",")}
            matched = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"", expr))
            assert grouped | matched <= labels, f"{panel['title']}: unknown labels {(grouped | matched) - labels}"
            used |= names
    # Every Saleswire series has a panel.
    saleswire = {n for n in known if n.startswith("saleswire_") and not n.endswith(("_sum", "_count"))}
    histograms_by_bucket = {n.removesuffix("_bucket") for n in saleswire if n.endswith("_bucket")}
    missing = {
        n
        for n in saleswire
        if n not in used
        and n.removesuffix("_bucket") not in histograms_by_bucket & {u.removesuffix("_bucket") for u in used}
    }
    assert not missing, f"series without a panel: {sorted(missing)}"


def test_dashboard_has_the_operations_sections() -> None:
    rows = {p["title"] for p in _dashboard()["panels"] if p["type"] == "row"}
    assert {"Throughput", "Errors", "Latency", "Queues", "Dead letters", "Connectors and sync"} <= rows
    assert "Uploads and reports" in rows


# --- profile `cluster`: replica set, clustered RabbitMQ, two replicas of every service ---------

CLUSTER_RABBITS = ("cluster-rabbitmq-1", "cluster-rabbitmq-2", "cluster-rabbitmq-3")
CLUSTER_MONGOS = ("cluster-mongo-1", "cluster-mongo-2", "cluster-mongo-3")


def _cluster(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services.items() if "cluster" in s.get("profiles", [])}


def test_cluster_profile_is_separate_from_the_single_server_setup(services: dict[str, dict[str, Any]]) -> None:
    cluster = _cluster(services)
    expected = {*CLUSTER_RABBITS, *CLUSTER_MONGOS, "cluster-mongo-init"} | {f"cluster-{n}" for n in PYTHON_SERVICES}
    assert set(cluster) == expected
    assert all(name.startswith("cluster-") for name in cluster)
    for name in (*PYTHON_SERVICES, *INFRA):  # `docker compose up` alone still runs one of each
        assert not services[name].get("profiles"), name
    for name, service in cluster.items():  # nothing in the profile leans on the single-server infra
        assert not set(service.get("depends_on", {})) & {*PYTHON_SERVICES, *INFRA}, name
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), "two services publish the same host port"


def test_cluster_mongo_is_a_three_member_replica_set_with_an_init_step(services: dict[str, dict[str, Any]]) -> None:
    names = set()
    for name in CLUSTER_MONGOS:
        mongo = services[name]
        assert mongo["image"] == "mongo:7" and mongo["hostname"] == name
        command = mongo["command"]
        names.add(command[command.index("--replSet") + 1])
        assert any(v.endswith(":/data/db") for v in mongo["volumes"])
    [replica_set] = names
    assert len({v.split(":")[0] for n in CLUSTER_MONGOS for v in services[n]["volumes"]}) == 3  # own data each
    init = services["cluster-mongo-init"]
    script = init["command"][-1]
    assert f"_id: '{replica_set}'" in script and "rs.initiate" in script and "rs.status()" in script
    members = re.findall(r"\{_id: (\d), host: '([\w-]+):27017'\}", script)
    assert sorted(host for _, host in members) == list(CLUSTER_MONGOS)
    assert len({i for i, _ in members}) == 3
    assert set(init["depends_on"]) == set(CLUSTER_MONGOS)
    assert all(d["condition"] == "service_healthy" for d in init["depends_on"].values())
    for name in PYTHON_SERVICES:
        service = services[f"cluster-{name}"]
        assert service["depends_on"]["cluster-mongo-init"]["condition"] == "service_completed_successfully"
        url = env_of(service)["SALESWIRE_MONGO_URL"]
        hosts, _, query = url.removeprefix("mongodb://").partition("/?")
        assert sorted(h.removesuffix(":27017") for h in hosts.split(",")) == list(CLUSTER_MONGOS)
        assert f"replicaSet={replica_set}" in query and "directConnection" not in query


def test_cluster_rabbitmq_nodes_form_one_cluster(services: dict[str, dict[str, Any]]) -> None:
    cookies = set()
    for name in CLUSTER_RABBITS:
        node = services[name]
        assert node["image"] == "rabbitmq:3-management" and node["hostname"] == name
        cookies.add(node["environment"]["RABBITMQ_ERLANG_COOKIE"])
        mounts = {m.split(":")[1]: m.split(":")[0] for m in node["volumes"]}
        conf = (ROOT / mounts["/etc/rabbitmq/conf.d/30-cluster.conf"]).read_text()
        assert "cluster_formation.peer_discovery_backend = classic_config" in conf
        peers = re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = rabbit@([\w-]+)$", conf, flags=re.M)
        assert sorted(peers) == list(CLUSTER_RABBITS)
        assert "20-saleswire.conf" in " ".join(mounts)  # the same broker settings as the single node
        assert mounts["/var/lib/rabbitmq"] == f"{name}-data"
        assert "all_running" in " ".join(node["healthcheck"]["test"]) and "= 3" in node["healthcheck"]["test"][-1]
    assert len(cookies) == 1, "the nodes need one Erlang cookie"


def test_cluster_runs_two_replicas_of_every_service_on_every_node(services: dict[str, dict[str, Any]]) -> None:
    fields = set(Settings.model_fields)
    for name, port in PYTHON_SERVICES.items():
        service = services[f"cluster-{name}"]
        assert service["deploy"]["replicas"] == 2, name
        assert service["command"][1] == f"services.{name}.main:app"
        assert service["image"] == services[name]["image"]
        env = env_of(service)
        assert env["SERVICE_PORT"] == str(port)
        urls = env["SALESWIRE_RABBIT_URLS"].split(",")
        assert sorted(u.split("@")[1] for u in urls) == [f"{n}:5672/" for n in CLUSTER_RABBITS]
        assert Settings(rabbit_urls=env["SALESWIRE_RABBIT_URLS"]).rabbit_nodes == urls
        assert env["SALESWIRE_RABBIT_URL"] in urls
        for node in CLUSTER_RABBITS:
            assert service["depends_on"][node]["condition"] == "service_healthy"
        for key in env:
            if key.startswith("SALESWIRE_") and not key.startswith("SALESWIRE_CONNECTORS_"):
                assert key.removeprefix("SALESWIRE_").lower() in fields, key
    # Two gateway replicas need two host ports.
    [ports] = services["cluster-gateway"]["ports"]
    first, last = map(int, ports.split(":")[0].split("-"))
    assert last - first + 1 == services["cluster-gateway"]["deploy"]["replicas"]
    assert all(not services[f"cluster-{n}"].get("ports") for n in PYTHON_SERVICES if n != "gateway")
    assert services["cluster-connectors"]["depends_on"]["sandbox"]["condition"] == "service_healthy"
