"""Shared helpers of the deployment tests: paths, required tools, PromQL metric names."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
PROM_DIR = DEPLOY / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
RULES_FILE = PROM_DIR / "rules" / "fraudwatch.rules.yml"
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.test.yml"))
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "fraudwatch.json"
GRAFANA_PROVISIONING = DEPLOY / "grafana" / "provisioning"
RUNBOOK = DEPLOY / "RUNBOOK.md"
REDIS_CONF = DEPLOY / "redis" / "redis.conf"

# Series fraudwatch does not export itself but its queries may use: Prometheus's own.
EXTERNAL_METRICS = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


def require_tool(name: str, apt_package: str) -> str:
    """Path of a CLI the tests need; fail (not skip) when missing: CI installs it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` not found on PATH: install the Debian package `{apt_package}` "
            f"(apt-get install -y {apt_package})",
            pytrace=False,
        )
    return path


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
        env[key.strip()] = value.strip()
    return env


# ---------------------------------------------------------------- exported metric names

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def exported_metric_names() -> set[str]:
    """Series names fraudwatch exports, read from prometheus_client's default registry.

    Imports `streams.metrics` and `service.metrics`; a family contributes
    the names its type exposes (a Counter `x` as `x_total`, a Histogram as `x_bucket`,
    `x_sum`, `x_count`), whether or not a labelled child has been created yet.
    """
    from prometheus_client import REGISTRY

    importlib.import_module("streams.metrics")  # the workers' metrics
    importlib.import_module("service.metrics")  # the API's (HTTP, Redis memory)

    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def recording_rule_names() -> set[str]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def alerting_rules() -> list[dict]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w:.$])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels removed)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _LABEL_LIST.sub("", text)
    text = re.sub(r"@\s*[\w.()]+", "", text)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def dashboard_exprs(dashboard: dict) -> list[tuple[str, str]]:
    """(where, expr) of every PromQL query in a Grafana dashboard (panels, rows, annotations)."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((f"panel {panel.get('title')!r}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for ann in dashboard.get("annotations", {}).get("list", []):
        if ann.get("expr"):
            found.append((f"annotation {ann.get('name')!r}", ann["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and query:
            found.append((f"variable {var.get('name')!r}", query))
    return found


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")
