"""docker-compose.yml: valid (docker-compose config), scalable workers, no secrets in the file."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from tests.deploy.helpers import COMPOSE_FILE, ENV_EXAMPLE, REPO, read_env_file, require_tool

CLUSTER_NODES = {f"redis-node-{n}" for n in range(1, 7)}
EXPECTED_SERVICES = {"kafka", "kafka-init", "redis", "worker", "api", "prometheus", "grafana",
                     "redis-cluster-init", *CLUSTER_NODES}  # fmt: skip
ONE_SHOT = {"kafka-init", "redis-cluster-init"}
SECRET_NAME = re.compile(r"KEY|PASSWORD|SECRET|TOKEN", re.IGNORECASE)


def compose_config(env_file) -> subprocess.CompletedProcess:
    docker_compose = require_tool("docker-compose", "docker-compose")
    # A clean environment: only the env file decides (no FRAUDWATCH_* leaking from the shell,
    # no developer .env picked up).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "FRAUDWATCH_ENV_FILE": str(env_file)}  # the services' env_file too  # fmt: skip
    return subprocess.run(
        [docker_compose, "-f", str(COMPOSE_FILE), "--env-file", str(env_file), "config"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def volume_targets(svc: dict) -> set[str]:
    """Container paths of a service's volumes (short or long syntax, compose v1 or v2 output)."""
    targets = set()
    for vol in svc.get("volumes", []):
        if isinstance(vol, dict):
            targets.add(vol["target"])
        else:
            parts = vol.split(":")
            targets.add(parts[1] if len(parts) > 1 else parts[0])
    return targets


def published_targets(svc: dict) -> set[int]:
    """Container ports a service publishes (short or long syntax)."""
    targets = set()
    for port in svc.get("ports", []):
        if isinstance(port, dict):
            targets.add(int(port["target"]))
        else:
            targets.add(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return targets


@pytest.fixture(scope="module")
def config() -> dict:
    result = compose_config(ENV_EXAMPLE)
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def test_every_setting_in_the_env_file_reaches_the_worker_and_the_api(tmp_path):
    # Only 13 settings were passed on: one added to .env (as the runbook says to widen the
    # event-time window) never reached the containers.
    env_file = tmp_path / ".env"
    env_file.write_text(
        ENV_EXAMPLE.read_text() + "\nFRAUDWATCH_EVENT_TIME_EARLIEST=1990-01-01T00:00:00Z\n"
    )
    result = compose_config(env_file)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for app in ("worker", "api"):
        env = services[app]["environment"]
        assert env["FRAUDWATCH_EVENT_TIME_EARLIEST"] == "1990-01-01T00:00:00Z"
        assert env["FRAUDWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"  # the file's own still win


def test_config_has_every_service(config):
    assert set(config["services"]) == EXPECTED_SERVICES


def test_images_are_pinned(config):
    for name, svc in config["services"].items():
        image = svc.get("image", "")
        if "build" in svc:
            continue  # our own image, tagged by FRAUDWATCH_IMAGE_TAG
        assert "@sha256:" in image or re.search(r":v?\d+\.\d+\.\d+$", image), (
            f"service {name}: image {image!r} is not pinned to an exact version"
        )


def test_health_checks_and_restart_policies(config):
    for name, svc in config["services"].items():
        if name in ONE_SHOT:
            assert svc.get("restart") in ("no", None), f"{name}: a one-shot must not restart"
            continue
        assert svc.get("restart") == "unless-stopped", f"{name}: restart policy"
        assert svc.get("healthcheck", {}).get("test"), f"{name}: no health check"


def test_depends_on_use_conditions(config):
    services = config["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on without conditions"
        for dep, spec in deps.items():
            assert spec.get("condition") in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }, f"{name} -> {dep}"
    for app in ("worker", "api"):
        deps = services[app]["depends_on"]
        assert deps["kafka-init"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["kafka"]["condition"] == "service_healthy"


def test_worker_is_scalable(config):
    worker = config["services"]["worker"]
    assert "container_name" not in worker, "a fixed container_name breaks --scale"
    assert not worker.get("ports"), "a published host port breaks --scale"
    assert worker["command"] == ["worker"]
    assert config["services"]["api"]["command"] == ["api"]


def test_app_environment(config):
    for app in ("worker", "api"):
        env = config["services"][app]["environment"]
        assert env["FRAUDWATCH_ENV"] == "prod"
        assert env["FRAUDWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["FRAUDWATCH_REDIS_URL"] == "redis://redis:6379/0"
        assert env["FRAUDWATCH_API_HOST"] == "0.0.0.0"
        assert env["FRAUDWATCH_PII_KEY"], "prod refuses to start without a PII key"
        assert (
            env["FRAUDWATCH_REDIS_PASSWORD"]
            == read_env_file(ENV_EXAMPLE)["FRAUDWATCH_REDIS_PASSWORD"]
        )
    assert published_targets(config["services"]["api"]) == {8000}


def test_kafka_kraft_and_topics(config):
    kafka = config["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    init = config["services"]["kafka-init"]["environment"]
    assert init["TOPICS"].split() == ["transfers", "accounts", "alerts", "transfers.dlq"]
    assert init["PARTITIONS"] == read_env_file(ENV_EXAMPLE)["FRAUDWATCH_PARTITIONS"]
    assert "REPLICATION_FACTOR" in init and "MIN_INSYNC_REPLICAS" in init
    script = REPO / "deploy" / "kafka" / "create-topics.sh"
    bash = require_tool("bash", "bash")
    assert subprocess.run([bash, "-n", str(script)]).returncode == 0


def test_partition_default_is_six_without_env(tmp_path):
    env_file = tmp_path / "secrets-only.env"
    example = read_env_file(ENV_EXAMPLE)
    env_file.write_text("".join(f"{k}={example[k]}\n" for k in example if SECRET_NAME.search(k)))
    result = compose_config(env_file)
    assert result.returncode == 0, result.stderr
    cfg = yaml.safe_load(result.stdout)
    assert cfg["services"]["kafka-init"]["environment"]["PARTITIONS"] == "6"


def test_redis_requires_the_password_from_env(config):
    redis = config["services"]["redis"]
    password = read_env_file(ENV_EXAMPLE)["FRAUDWATCH_REDIS_PASSWORD"]
    command = redis["command"]
    assert command[command.index("--requirepass") + 1] == password
    # The health check's redis-cli authenticates through REDISCLI_AUTH.
    assert redis["environment"]["REDISCLI_AUTH"] == password
    assert "redis-cli" in " ".join(redis["healthcheck"]["test"])


def test_redis_persistence_and_eviction(config):
    redis = config["services"]["redis"]
    assert "--maxmemory" in redis["command"]
    assert "/data" in volume_targets(redis)
    assert "/usr/local/etc/redis/redis.conf" in volume_targets(redis)


def test_prometheus_and_grafana_are_provisioned(config):
    prom = config["services"]["prometheus"]
    assert {"/etc/prometheus", "/prometheus"} <= volume_targets(prom)
    assert {"/etc/grafana/provisioning", "/etc/grafana/dashboards"} <= volume_targets(
        config["services"]["grafana"]
    )


def test_missing_secrets_refuse_to_render(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose_config(empty)
    assert result.returncode != 0
    named = ("FRAUDWATCH_API_KEYS", "FRAUDWATCH_PII_KEY", "FRAUDWATCH_REDIS_PASSWORD")
    assert any(name in result.stderr for name in named)


def test_no_secret_values_in_compose_file():
    raw = COMPOSE_FILE.read_text()
    example = read_env_file(ENV_EXAMPLE)
    secrets = [k for k in example if SECRET_NAME.search(k) and not k.endswith("_USER")]
    assert {
        "FRAUDWATCH_API_KEYS",
        "FRAUDWATCH_PII_KEY",
        "FRAUDWATCH_REDIS_PASSWORD",
        "GF_SECURITY_ADMIN_PASSWORD",
    } <= set(secrets)
    for key in secrets:
        assert re.search(r"\$\{" + key + r"(:?[-?][^}]*)?\}", raw), f"{key} not read from env"
        assert re.search(r"\$\{" + key + r":\?", raw), f"{key} must be required (${{{key}:?...}})"
        assert example[key] not in raw, f"value of {key} from .env.example is in the compose file"


def test_env_example_lists_every_variable():
    raw = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", raw))
    listed = set(read_env_file(ENV_EXAMPLE))
    assert used <= listed, f"not in .env.example: {sorted(used - listed)}"


def test_the_cluster_profile_runs_three_primaries_with_replicas(config):
    services = config["services"]
    for name in (*CLUSTER_NODES, "redis-cluster-init"):
        assert services[name]["profiles"] == ["cluster"], name
    for name in CLUSTER_NODES:
        command = services[name]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        password = command[command.index("--requirepass") + 1]
        assert command[command.index("--masterauth") + 1] == password
        assert "/data" in volume_targets(services[name])
    formed = " ".join(services["redis-cluster-init"]["command"])
    assert "--cluster create" in formed and "--cluster-replicas 1" in formed
    assert all(f"{node}:6379" in formed for node in CLUSTER_NODES)
    # The apps stay on the single Redis unless .env turns the cluster on.
    for app in ("worker", "api"):
        assert services[app]["environment"]["FRAUDWATCH_REDIS_CLUSTER"] == "false"
