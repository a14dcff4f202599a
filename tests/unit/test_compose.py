"""The container files hold together: compose.yaml's profiles and services, the load balancer's
configuration, the Dockerfile's final stage, and every ``LFUSYS_*`` variable they set being a real,
documented setting. (scripts/check-image builds and runs the image itself.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HAPROXY_CFG = ROOT / "deploy" / "compose" / "haproxy.cfg"
AWS_TEMPLATE = ROOT / "deploy" / "aws" / "lfusys.yaml"
README = ROOT / "README.md"
SETTINGS = ROOT / "src" / "lfusys" / "settings.py"

PROFILES = {
    "embedded": {"lfusys"},
    "distributed": {"migrate", "app1", "app2", "lb", "redis", "ministack"},
    "tracing": {"jaeger"},
}
APP_SERVICES = {"lfusys", "app1", "app2"}
"""The services that run ``lfusys serve`` (the image's default command)."""
REPLICAS = {"app1", "app2"}
LFUSYS_VARIABLE = re.compile(r"\bLFUSYS_[A-Z0-9_]+\b")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of compose's two forms it is written in."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def test_every_profile_has_its_services(services: dict[str, dict[str, Any]]) -> None:
    by_profile: dict[str, set[str]] = {}
    for name, service in services.items():
        assert service.get("profiles"), f"{name} has no profile: it would start with every profile"
        for profile in service["profiles"]:
            by_profile.setdefault(profile, set()).add(name)
    assert by_profile == PROFILES


def test_app_services_run_the_image_and_have_a_health_check(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES | {"migrate"}:
        assert services[name]["build"]["context"] == ".", name
        assert services[name]["image"] == services["lfusys"]["image"], name
    for name in APP_SERVICES:
        service = services[name]
        assert "command" not in service, f"{name} should run the image's default command (lfusys serve)"
        test = " ".join(service["healthcheck"]["test"])
        assert "/health/live" in test or "/health/ready" in test, f"{name}: {test}"


def test_the_embedded_service_keeps_its_data_on_a_volume(compose: dict[str, Any]) -> None:
    service = compose["services"]["lfusys"]
    volumes = [volume.split(":") for volume in service["volumes"]]
    assert [(source, target) for source, target, *_ in volumes] == [("lfusys-data", "/data")]
    assert "lfusys-data" in compose["volumes"]
    assert any(port.endswith(":8000") for port in service["ports"])


def test_replicas_start_after_migrate_on_the_aws_backend_with_redis(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["restart"] == "no"
    for name in REPLICAS:
        replica = services[name]
        assert replica["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        assert replica["depends_on"]["redis"] == {"condition": "service_healthy"}, name
        env = environment(replica)
        assert env["LFUSYS_BACKEND"] == "aws", name
        assert env["LFUSYS_REDIS_URL"].startswith("redis://redis:"), name
        assert env == environment(migrate), f"{name} and migrate must see the same backend"


def test_replicas_trust_only_the_load_balancer(services: dict[str, dict[str, Any]]) -> None:
    address = services["lb"]["networks"]["default"]["ipv4_address"]
    for name in REPLICAS:
        assert environment(services[name])["LFUSYS_TRUSTED_PROXIES"] == address, name


def test_tracing_is_off_unless_the_shell_names_a_collector(services: dict[str, dict[str, Any]]) -> None:
    """Jaeger runs only in the tracing profile: the app exports to it only when asked, so the other
    profiles do not log a failing export every few seconds."""
    for name in APP_SERVICES:
        env = environment(services[name])
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-}", name
        assert env["OTEL_SERVICE_NAME"] == "lfusys", name


def test_the_load_balancer_checks_readiness_round_robin_without_stickiness(
    services: dict[str, dict[str, Any]],
) -> None:
    mounts = [volume.split(":")[0] for volume in services["lb"]["volumes"]]
    assert mounts == ["./deploy/compose/haproxy.cfg"]
    assert HAPROXY_CFG.is_file()
    config = [line.split("#", 1)[0].split() for line in HAPROXY_CFG.read_text().splitlines()]
    assert ["option", "httpchk", "GET", "/health/ready"] in config
    assert ["balance", "roundrobin"] in config
    assert ["option", "forwardfor"] in config
    assert not [words for words in config if words[:1] in (["cookie"], ["stick"], ["stick-table"])]
    servers = {words[1]: words[2] for words in config if words[:1] == ["server"]}
    assert servers == {name: f"{name}:8000" for name in sorted(REPLICAS)}


def documented_variables() -> set[str]:
    """Every variable named in the first column of README's "## Configuration" table."""
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    names: set[str] = set()
    for row in rows[2:]:  # after the header and the |---| line
        names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def settings_variables() -> set[str]:
    """The ``LFUSYS_*`` variables settings.py reads: ``LFUSYS_X`` for each field ``x`` it declares, and
    any it names outright."""
    source = SETTINGS.read_text()
    fields = re.findall(r"^    ([a-z][a-z0-9_]*): ", source, re.MULTILINE)
    return {f"LFUSYS_{field.upper()}" for field in fields} | set(LFUSYS_VARIABLE.findall(source))


def test_the_readme_table_and_settings_are_read_right() -> None:
    documented, known = documented_variables(), settings_variables()
    assert {"LFUSYS_BACKEND", "LFUSYS_DATA_DIR", "LFUSYS_REDIS_URL", "LFUSYS_AWS_PREFIX"} <= documented
    assert {"LFUSYS_BACKEND", "LFUSYS_DATA_DIR", "LFUSYS_REDIS_URL", "LFUSYS_AWS_PREFIX"} <= known
    assert "LFUSYS_NO_SUCH_SETTING" not in documented | known


@pytest.mark.parametrize("path", [COMPOSE, DOCKERFILE, HAPROXY_CFG, AWS_TEMPLATE], ids=lambda path: path.name)
def test_every_lfusys_variable_is_a_documented_setting(path: Path) -> None:
    used = set(LFUSYS_VARIABLE.findall(path.read_text()))
    assert used or path == HAPROXY_CFG
    assert used - documented_variables() == set(), "not in README's Configuration table"
    assert used - settings_variables() == set(), "not read by src/lfusys/settings.py"


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_the_dockerfile_builds_in_stages_from_the_expected_bases() -> None:
    froms = [stage[0][1] for stage in dockerfile_stages()]
    assert froms == ["node:20-bookworm-slim AS web", "python:3.11-slim-bookworm AS build", "python:3.11-slim-bookworm"]


def test_the_final_stage_runs_unprivileged_with_a_health_check_and_a_volume() -> None:
    final = dockerfile_stages()[-1]
    instructions = {instruction for instruction, _ in final}
    users = [arguments for instruction, arguments in final if instruction == "USER"]
    assert users, "the final stage has no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [arguments for instruction, arguments in final if instruction == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/health/live" in healthchecks[0] or "/health/ready" in healthchecks[0]
    assert ("VOLUME", "/data") in final
    assert "ENTRYPOINT" in instructions
    assert ("EXPOSE", "8000") in final


def test_the_final_stage_installs_no_build_tools() -> None:
    final = dockerfile_stages()[-1]
    build_tools = re.compile(r"\b(gcc|g\+\+|make|build-essential|uv|npm|npx|node|nodejs|pip|apt-get|apt)\b")
    for instruction, arguments in final:
        if instruction == "RUN":
            assert not build_tools.search(arguments), f"RUN {arguments}"
        if instruction == "COPY" and "--from=" in arguments:
            # Only the service's virtualenv and the built web app come from the build stages.
            assert arguments.split()[1] in {"/opt/lfusys", "/src/web/dist"}, f"COPY {arguments}"
