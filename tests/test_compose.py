"""docker-compose.yml: valid against the Compose specification, and a deployment that
keeps its promises (persistent Redis that never evicts, one beat, a ready-checked web,
scalable workers, configuration only through HCP_* variables, no secrets written in)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))


def words(command) -> list[str]:
    return command.split() if isinstance(command, str) else [str(w) for w in command]


def test_valid_against_the_compose_specification():
    tool = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run([str(tool), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_services(compose):
    assert {"postgres", "redis", "web", "worker", "beat", "flower"} <= set(compose["services"])


def test_redis_persists_and_never_evicts(compose):
    cmd = words(compose["services"]["redis"]["command"])
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_postgres_keeps_its_data_in_a_volume(compose):
    volumes = compose["services"]["postgres"]["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in volumes and "pgdata" in compose["volumes"]


def test_exactly_one_beat(compose):
    services = compose["services"]
    beats = [name for name, svc in services.items() if "beat" in words(svc.get("command", []))]
    assert beats == ["beat"]
    assert services["beat"]["deploy"]["replicas"] == 1
    # No worker embeds a beat (-B) either.
    assert "-B" not in words(services["worker"]["command"]) and "--beat" not in words(services["worker"]["command"])


def test_worker_scales(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert words(worker["command"])[:4] == ["celery", "-A", "workers", "worker"]


def test_web_runs_gunicorn_with_the_config_file_and_is_checked_on_readyz(compose):
    web = compose["services"]["web"]
    assert words(web["command"])[:3] == ["gunicorn", "-c", "python:config.gunicorn"]
    assert (ROOT / "config" / "gunicorn.py").exists()
    assert "/readyz" in " ".join(words(web["healthcheck"]["test"]))


def test_configuration_only_through_hcp_variables(compose):
    text = COMPOSE.read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert variables and all(v.startswith("HCP_") for v in variables), variables
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        assert all(key.startswith("HCP_") for key in env), (name, env)


def test_no_secret_is_written_in(compose):
    env = compose["services"]["web"]["environment"]
    for key in ("HCP_SECRET_KEY", "HCP_DATA_KEY"):
        assert re.fullmatch(r"\$\{%s:\?[^}]*\}" % key, env[key]), env[key]
    assert "${HCP_DB_PASSWORD:?" in env["HCP_DATABASE_URL"]
    # The example env file holds placeholders only, and names every required variable.
    example = (ROOT / "hcp.env.example").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(HCP_[A-Z0-9_]+):\?", COMPOSE.read_text(encoding="utf-8")))
    for name in required:
        assert re.search(rf"^{name}=\S*CHANGE-ME", example, re.M), name


def test_dockerfile_serves_hcp_with_gunicorn():
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r'^CMD \["gunicorn", "-c", "python:config.gunicorn"', dockerfile, re.M)
    assert re.search(r"^USER (?!root)", dockerfile, re.M)
