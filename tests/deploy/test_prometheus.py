"""Prometheus config and rules: promtool checks, unit tests, and the rules' own conventions."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from tests.deploy.helpers import (
    EXTERNAL_METRICS,
    PROM_CONFIG,
    REPO,
    RULE_TESTS,
    RULES_FILE,
    RUNBOOK,
    alerting_rules,
    exported_metric_names,
    github_anchor,
    metric_names_in,
    recording_rule_names,
    require_tool,
)

REQUIRED_ALERTS = {
    "FraudwatchConsumerLagGrowing",
    "FraudwatchNoTransfers",
    "FraudwatchDLQRateHigh",
    "FraudwatchEventToAlertSLO",
    "FraudwatchAlertRateSpike",
    "FraudwatchRedisErrors",
    "FraudwatchWorkerDown",
    "FraudwatchNoWorkerUp",
    "FraudwatchApiDown",
}
REQUIRED_RECORDS = {
    "fraudwatch:transfers:rate1m",
    "fraudwatch:alerts_by_rule:rate1m",
    "fraudwatch:alert_ratio:rate5m",
    "fraudwatch:dlq:rate1m",
    "fraudwatch:event_to_alert_seconds:p99_5m",
}


def promtool(*args: str) -> subprocess.CompletedProcess:
    exe = require_tool("promtool", "prometheus")
    return subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_promtool_check_rules():
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config():
    result = promtool("check", "config", str(PROM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(test_file):
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_test_files_exist():
    assert "fraudwatch.test.yml" in {p.name for p in RULE_TESTS}


def test_required_rules_exist():
    assert {r["alert"] for r in alerting_rules()} >= REQUIRED_ALERTS
    assert recording_rule_names() >= REQUIRED_RECORDS


def test_every_alert_is_unit_tested_firing_and_not_firing():
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {r["alert"] for r in alerting_rules()}
    assert names <= firing, f"never shown firing: {sorted(names - firing)}"
    assert names <= silent, f"never shown not firing: {sorted(names - silent)}"


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: r["alert"])
def test_alert_conventions(rule):
    assert rule.get("for"), "every alert waits with a for: clause"
    assert rule["labels"]["severity"] in {"warning", "critical"}
    ann = rule["annotations"]
    assert ann.get("summary") and ann.get("description")
    url = ann["runbook_url"]
    assert url.startswith("deploy/RUNBOOK.md#"), url
    anchor = url.split("#", 1)[1]
    assert anchor == rule["alert"].lower()
    headings = {
        github_anchor(m) for m in re.findall(r"^#+\s+(.+)$", RUNBOOK.read_text(), re.MULTILINE)
    }
    assert anchor in headings, f"RUNBOOK.md has no section #{anchor}"


def test_rules_reference_only_exported_metrics():
    allowed = exported_metric_names() | recording_rule_names() | EXTERNAL_METRICS
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    unknown = {}
    for group in groups:
        for rule in group["rules"]:
            missing = metric_names_in(rule["expr"]) - allowed
            if missing:
                unknown[rule.get("record") or rule.get("alert")] = sorted(missing)
    assert not unknown, f"rules query metrics fraudwatch does not export: {unknown}"


def test_scrape_jobs():
    cfg = yaml.safe_load(PROM_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in cfg["scrape_configs"]}
    worker = jobs["fraudwatch-worker"]["dns_sd_configs"][0]
    assert worker["names"] == ["worker"] and worker["port"] == 9464
    assert jobs["fraudwatch-api"]["static_configs"][0]["targets"] == ["api:8000"]
    # the alert rules select these job names
    text = RULES_FILE.read_text()
    assert 'job="fraudwatch-worker"' in text and 'job="fraudwatch-api"' in text


def test_metric_name_extraction():
    expr = (
        'sum by (rule) (rate(fraudwatch_alerts_total{rule=~"a|b", x="y z"}[$__rate_interval]))'
        " / on () group_left (severity) fraudwatch:transfers:rate1m offset 1w"
        ' and absent(up{job="w"} == 1)'
        " or histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"
    )
    assert metric_names_in(expr) == {
        "fraudwatch_alerts_total",
        "fraudwatch:transfers:rate1m",
        "up",
        "h_bucket",
    }


def test_exported_names_reject_what_is_not_exposed():
    names = exported_metric_names()
    assert "fraudwatch_transfers_total" in names
    assert "fraudwatch_event_to_alert_seconds_bucket" in names
    assert "fraudwatch_http_requests_total" in names
    assert "fraudwatch_transfers" not in names  # a Counter is exposed only as ..._total
    assert "fraudwatch_no_such_metric_total" not in names
