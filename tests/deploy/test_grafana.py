"""Grafana: provisioning is consistent and every dashboard query names an exported metric."""

from __future__ import annotations

import json

import yaml

from tests.deploy.helpers import (
    DASHBOARD,
    EXTERNAL_METRICS,
    GRAFANA_PROVISIONING,
    dashboard_exprs,
    exported_metric_names,
    metric_names_in,
    recording_rule_names,
)


def load() -> dict:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_queries_name_exported_metrics():
    allowed = exported_metric_names() | recording_rule_names() | EXTERNAL_METRICS
    exprs = dashboard_exprs(load())
    assert len(exprs) >= 20
    unknown = {}
    for where, expr in exprs:
        names = metric_names_in(expr)
        assert names, f"{where}: no metric in {expr!r}"
        if names - allowed:
            unknown[where] = sorted(names - allowed)
    assert not unknown, f"dashboard queries metrics fraudwatch does not export: {unknown}"


def test_dashboard_covers_the_operators_questions():
    used = set().union(*(metric_names_in(e) for _, e in dashboard_exprs(load())))
    for metric in (
        "fraudwatch:transfers:rate1m",
        "fraudwatch_consumer_lag",
        "fraudwatch_event_to_alert_seconds_bucket",
        "fraudwatch_alerts_total",
        "fraudwatch_dlq_total",
        "fraudwatch_redis_errors_total",
        "fraudwatch_redis_used_memory_bytes",
        "fraudwatch_model_info",
        "fraudwatch_http_requests_total",
        "fraudwatch_http_request_seconds_bucket",
    ):
        assert metric in used, f"no panel shows {metric}"
    exprs = " ".join(e for _, e in dashboard_exprs(load()))
    assert "by (topic, partition)" in exprs
    assert "sum by (rule)" in exprs and "sum by (severity)" in exprs and "sum by (reason)" in exprs
    for q in ("0.50", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (le) (rate(fraudwatch_event_to_alert" in exprs


def test_panels_have_unique_ids_and_the_provisioned_datasource():
    ds = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    uid = ds["datasources"][0]["uid"]
    dash = load()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid


def test_dashboard_provider_points_at_the_mounted_folder():
    prov = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "fraudwatch.yml").read_text())
    assert prov["providers"][0]["options"]["path"] == "/etc/grafana/dashboards"
