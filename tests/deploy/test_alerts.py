"""deploy/prometheus: the alerting rules pass their promtool unit tests (alerts_test.yml), fire on
what the collector's real ``/metrics`` endpoint says on a bad day and stay quiet on a good one,
and name only metrics that polyfarm exports; prometheus.yml passes ``promtool check config``."""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from polyfarm.metrics import Metrics
from polyfarm.metrics_http import serve_metrics

from ..support import free_port
from .support import DEPLOY, tool

RULES = DEPLOY / "prometheus" / "alerts.yml"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "polyfarm.json"
# Prometheus' own series, not polyfarm's.
SCRAPE_SERIES = {"up"}
MINUTES = 40  # the scenarios' length: longer than every rule's `for` and range


def promtool() -> str:
    return tool("promtool", "Debian's package prometheus: apt-get install prometheus")


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_the_rules_pass_their_unit_tests() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", str(UNIT_TESTS)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_has_a_unit_test_and_a_severity() -> None:
    tested = set(re.findall(r"alertname: (\w+)", UNIT_TESTS.read_text()))
    for rule in rules():
        assert rule["alert"] in tested, f"{rule['alert']} has no unit test"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert {"summary", "description"} <= set(rule["annotations"])


def test_every_alert_is_explained_in_the_operator_guide() -> None:
    guide = (DEPLOY.parent / "docs" / "operations.md").read_text()
    for rule in rules():
        assert f"| `{rule['alert']}` | {rule['labels']['severity']} |" in guide, rule["alert"]


def test_the_prometheus_configuration_is_valid(tmp_path: Path) -> None:
    """The compose file mounts the rules at /etc/prometheus and the API token at /run/secrets:
    the same configuration, those two paths pointed at local copies."""
    token = tmp_path / "api_token"
    token.write_text("a-token-of-sixteen-or-more\n")
    config = (
        (DEPLOY / "prometheus" / "prometheus.yml")
        .read_text()
        .replace("/etc/prometheus/alerts.yml", str(RULES))
        .replace("/run/secrets/api_token", str(token))
    )
    (tmp_path / "prometheus.yml").write_text(config)
    result = subprocess.run(
        [promtool(), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def scrape(metrics: Metrics) -> str:
    """The text of a real ``GET /metrics`` of the collector's endpoint."""
    port, stop = free_port(), asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(serve_metrics(metrics, "127.0.0.1", port, stop))
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(100):
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                            return await response.text()
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            raise AssertionError("the metrics endpoint did not answer")
        finally:
            stop.set()


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    # A family without a sample yet still declares its series.
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        names.add(name)
        if kind == "histogram":
            names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
    return names


def referenced_names(expressions: list[str]) -> set[str]:
    found = set()
    for expr in expressions:
        found.update(re.findall(r"\b(polyfarm_[a-z0-9_]+|up)\b", expr))
    return found


async def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    exported = exported_names(await scrape(Metrics())) | SCRAPE_SERIES
    in_rules = referenced_names([rule["expr"] for rule in rules()])
    panels = json.loads(DASHBOARD.read_text())["panels"]
    in_dashboard = referenced_names([t["expr"] for p in panels for t in p["targets"]])
    assert in_rules - exported == set(), "alert rules name metrics polyfarm does not export"
    assert in_dashboard - exported == set(), "the dashboard names metrics polyfarm does not export"


# -- the rules against the real endpoint's output ----------------------------------------------


def bad_day(collector: Metrics, api: Metrics, minute: int) -> None:
    """Everything an operator must hear about at once; ``minute`` 0 or 1 (two scrapes)."""
    collector.last_success.labels("prices").set(0.0)
    collector.last_success.labels("metadata").set(MINUTES * 60 - 30)
    collector.messages.labels("book").inc(100 if minute == 0 else 0)
    collector.ws_connected.set(4)
    collector.feed_gaps.labels("trades", "unrepaired").inc(1)
    collector.api_errors.labels("clob", "http_5xx").inc(60)
    collector.database_up.set(0)
    collector.journal_bytes.set(900 * 2**20)
    collector.journal_max_bytes.set(1024 * 2**20)
    collector.disk_days_left.set(1.5)
    collector.timescaledb_jobs.labels("failing").set(2)
    collector.timescaledb_jobs.labels("ok").set(9)
    api.http_requests.labels("/api/markets", "200").inc(90)
    api.http_requests.labels("/api/markets", "500").inc(10)


def good_day(collector: Metrics, api: Metrics, minute: int) -> None:
    for name in ("prices", "metadata", "orderbooks", "resolutions", "maintenance"):
        collector.last_success.labels(name).set(MINUTES * 60 - 30)
    collector.messages.labels("book").inc(600)
    collector.ws_connected.set(4)
    collector.feed_gaps.labels("trades", "repaired").inc(1)
    collector.api_errors.labels("clob", "http_5xx")  # declared, never counted
    collector.database_up.set(1)
    collector.journal_max_bytes.set(1024 * 2**20)
    collector.journal_bytes.set(0)
    collector.disk_days_left.set(math.inf)  # not growing
    collector.timescaledb_jobs.labels("ok").set(9)
    api.http_requests.labels("/api/markets", "200").inc(90)


BAD_DAY_ALERTS = {
    "PolyfarmCollectorStale": [{"job": "polyfarm-collector", "collector": "prices"}],
    "PolyfarmWebSocketSilent": [{}],
    "PolyfarmUnrepairedGapsGrowing": [{"stream": "trades"}],
    "PolyfarmSourceErrors": [{"source": "clob"}],
    "PolyfarmDatabaseUnreachable": [{"job": "polyfarm-collector"}],
    "PolyfarmJournalFilling": [{"job": "polyfarm-collector"}],
    "PolyfarmJournalNearlyFull": [{"job": "polyfarm-collector"}],
    "PolyfarmDiskFilling": [{"job": "polyfarm-collector"}],
    "PolyfarmDiskNearlyFull": [{"job": "polyfarm-collector"}],
    "PolyfarmTimescaleJobsFailing": [{"state": "failing"}],
    "PolyfarmApiErrors": [{}],
}


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def input_series(first: str, second: str, job: str) -> list[dict[str, str]]:
    """Promtool input series from two scrapes a minute apart: each sample goes on at the pace
    it moved between them (counters) or stays (gauges), for ``MINUTES``."""
    before = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(first)
        for sample in family.samples
    }
    series = []
    for family in text_string_to_metric_families(second):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # when a counter was made: not a series any rule reads
            key = (sample.name, tuple(sorted(sample.labels.items())))
            start = before.get(key, sample.value)
            step = sample.value - start
            values = " ".join(_number(sample.value + k * step) for k in range(MINUTES + 1))
            labels = ", ".join(
                f'{k}="{v}"' for k, v in sorted({**sample.labels, "job": job}.items())
            )
            series.append({"series": f"{sample.name}{{{labels}}}", "values": values})
    return series


async def run_scenario(
    tmp_path: Path, day: Callable[[Metrics, Metrics, int], None], expected: dict[str, Any]
) -> None:
    collector, api = Metrics(), Metrics()
    scrapes: dict[str, list[str]] = {"collector": [], "api": []}
    for minute in (0, 1):
        day(collector, api, minute)
        scrapes["collector"].append(await scrape(collector))
        scrapes["api"].append(await scrape(api))
    series = [
        *input_series(*scrapes["collector"], job="polyfarm-collector"),
        *input_series(*scrapes["api"], job="polyfarm-api"),
        {"series": 'up{job="polyfarm-collector"}', "values": f"1x{MINUTES}"},
        {"series": 'up{job="polyfarm-api"}', "values": f"1x{MINUTES}"},
    ]
    # Labels are what is checked here; the annotations' wording is alerts_test.yml's business.
    bare = {"groups": yaml.safe_load(RULES.read_text())["groups"]}
    for group in bare["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(bare))
    checks = [
        {
            "eval_time": f"{MINUTES}m",
            "alertname": rule["alert"],
            "exp_alerts": [
                {"exp_labels": {**labels, "severity": rule["labels"]["severity"]}}
                for labels in expected.get(rule["alert"], [])
            ],
        }
        for rule in rules()
    ]
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "30s",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(unit))
    result = await asyncio.to_thread(
        subprocess.run,
        [promtool(), "test", "rules", str(tmp_path / "test.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


async def test_a_bad_day_on_the_real_endpoint_raises_every_alert_it_should(
    tmp_path: Path,
) -> None:
    await run_scenario(tmp_path, bad_day, BAD_DAY_ALERTS)


async def test_a_good_day_on_the_real_endpoint_raises_nothing(tmp_path: Path) -> None:
    await run_scenario(tmp_path, good_day, {})


@pytest.mark.parametrize("value", [math.nan, math.inf, 1.5])
def test_numbers_are_written_as_promtool_reads_them(value: float) -> None:
    assert _number(value) in ("NaN", "+Inf", "1.5")
