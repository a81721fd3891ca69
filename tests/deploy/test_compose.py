"""deploy/compose.yaml: valid against the Compose specification's JSON schema (the copy that
the dev group's check-jsonschema ships), and shaped as the operator guide promises: pinned
images, health-gated start order, migrations before anything writes, named volumes, restart
policies, secrets from deploy/.env, nothing published beyond loopback unless configured."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest
import yaml

from .support import DEPLOY

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
LOOPBACK_UNLESS_CONFIGURED = "${POLYFARM_PUBLISH_ADDRESS:-127.0.0.1}:"
LONG_RUNNING = ("timescaledb", "collector", "api", "prometheus", "grafana")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def compose_schema() -> dict[str, Any]:
    try:
        vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    except ModuleNotFoundError:
        pytest.skip("SKIPPED: check-jsonschema (the dev group) ships the Compose schema")
    schema: dict[str, Any] = json.loads((vendor / "compose-spec.json").read_text())
    return schema


def test_valid_against_the_compose_specification(compose: dict[str, Any]) -> None:
    import jsonschema

    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_mistake(compose: dict[str, Any]) -> None:
    import jsonschema

    broken = {**compose, "services": {**compose["services"], "api": {"restart_policy": "x"}}}
    schema = compose_schema()
    assert list(jsonschema.validators.validator_for(schema)(schema).iter_errors(broken))


def test_every_image_is_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue  # polyfarm's own image, built from this checkout
        image = service["image"]
        assert ":" in image, f"{name}: no tag"
        tag = image.rpartition(":")[2]
        assert "latest" not in tag, f"{name}: {image}"
        assert re.search(r"\d+\.\d+", tag), f"{name}: {image} is not a version"
    assert re.fullmatch(
        r"timescale/timescaledb:\d+\.\d+\.\d+-pg\d+", compose["services"]["timescaledb"]["image"]
    )


def test_start_order_is_gated_on_health_and_migrations(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "test" in services["timescaledb"]["healthcheck"]
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert services["migrate"]["depends_on"] == {"timescaledb": {"condition": "service_healthy"}}
    done = {"migrate": {"condition": "service_completed_successfully"}}
    assert services["collector"]["depends_on"] == done
    assert services["api"]["depends_on"] == done
    assert services["collector"]["command"] == ["collect"]
    assert services["api"]["command"] == ["serve"]


def test_restart_policies_and_named_volumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("migrate", "backup"):
        assert services[name]["restart"] == "no", name
    state = {
        "timescaledb": "/var/lib/postgresql/data",
        "collector": "/var/lib/polyfarm",
        "api": "/var/lib/polyfarm",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    for name, path in state.items():
        sources = {v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == path}
        (source,) = sources
        assert source in compose["volumes"], f"{name}: {path} is not on a named volume"


def test_nothing_listens_beyond_loopback_unless_configured(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["timescaledb"], "the database is not published"
    assert "ports" not in services["collector"], "the metrics endpoint stays inside"
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith(LOOPBACK_UNLESS_CONFIGURED), f"{name}: {port}"
    env = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["POLYFARM_PUBLISH_ADDRESS"] == "127.0.0.1"


def test_secrets_come_from_the_env_file(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    documented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= documented, f"not in deploy/.env.example: {sorted(used - documented)}"
    for secret in ("POSTGRES_PASSWORD", "POLYFARM_READER_PASSWORD", "POLYFARM_API__TOKEN"):
        assert re.search(r"\$\{" + secret + r":\?", text), f"{secret} must be required"
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search("PASSWORD|TOKEN|SECRET|DATABASE_URL", key):
                assert "${" in str(value), f"{name}: {key} is written into the file"


def test_monitoring_is_an_optional_profile_with_its_files_present(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    assert services["backup"]["profiles"] == ["backup"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"
    assert not any("profiles" in services[name] for name in ("timescaledb", "collector", "api"))


def test_the_settings_example_is_valid_polyfarm_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from polyfarm.settings import Settings

    lines = (DEPLOY / "polyfarm.env.example").read_text().splitlines()
    assigned = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert "POLYFARM_STORAGE__DISK_BUDGET_GB" in assigned, "the disk alerts need a budget"
    for key, value in assigned.items():
        assert value, f"{key}: an empty value is not 'unset'"
        monkeypatch.setenv(key, value)
    settings = Settings()
    for key, value in assigned.items():
        node: object = settings
        for part in key.removeprefix("POLYFARM_").lower().split("__"):
            node = getattr(node, part)
        assert str(node).lower() == value.lower() or float(str(node)) == float(value), key


def test_the_api_answers_prometheus_by_its_service_name(compose: dict[str, Any]) -> None:
    allowed = compose["services"]["api"]["environment"]["POLYFARM_API__ALLOWED_HOSTS"]
    default = allowed.partition(":-")[2].rstrip("}")
    assert "api" in json.loads(default)
    targets = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    scraped = [c["static_configs"][0]["targets"] for c in targets["scrape_configs"]]
    assert ["api:8000"] in scraped
