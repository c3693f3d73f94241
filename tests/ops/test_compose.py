"""docker-compose.yml as a real compose implementation resolves it: the deployment's shape."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    """`docker-compose config` (Debian's 1.29, no engine needed), as a dict."""
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose (Debian package) is installed by `make test`"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ANTHROPIC_"))}
    env |= {"SECRET_KEY": "compose-check", "POSTGRES_PASSWORD": "pw"}
    resolved = subprocess.run(
        [binary, "-f", "docker-compose.yml", "config"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    # docker-compose itself runs on Debian's python3 with PyYAML: read its YAML with that.
    to_json = "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"
    as_json = subprocess.run(
        ["/usr/bin/python3", "-c", to_json],
        input=resolved, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return json.loads(as_json)["services"]


def test_compose_runs_every_part(compose):
    assert set(compose) == {"db", "redis", "migrate", "web1", "web2", "proxy", "worker"}


def test_two_identical_web_processes_share_postgres_and_redis(compose):
    web1, web2 = compose["web1"], compose["web2"]
    assert web1["command"][0] == "daphne" and web1["command"][-1] == "chatsite.asgi:application"
    assert web1["command"] == web2["command"]
    assert web1["environment"] == web2["environment"]
    assert web1["environment"]["DATABASE_URL"] == "postgres://chatsite:pw@db:5432/chatsite"
    assert web1["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert web1["environment"]["LOG_FORMAT"] == "json"
    assert "/healthz" in " ".join(web1["healthcheck"]["test"])


def test_migrations_run_once_before_the_web_processes_and_the_worker(compose):
    assert compose["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    for name in ("web1", "web2", "worker"):
        assert compose[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_the_proxy_is_nginx_with_the_projects_config_in_front_of_both(compose):
    proxy = compose["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert proxy["volumes"] == [f"{ROOT}/deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro"]
    assert set(proxy["depends_on"]) == {"web1", "web2"}
    upstreams = re.findall(r"server (\S+:\d+)", (ROOT / "deploy" / "nginx.conf").read_text())
    assert upstreams == ["web1:8000", "web2:8000"]


def test_the_proxy_keeps_quiet_sockets_open(compose):
    # A chat socket outlives nginx's 60 s default; the live behaviour is in test_two_processes.
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert int(re.search(r"proxy_read_timeout (\d+)s;", conf).group(1)) >= 3600


def test_the_worker_runs_the_database_task_worker(compose):
    assert compose["worker"]["command"] == ["python", "manage.py", "db_worker"]
    assert compose["worker"]["environment"] == compose["web1"]["environment"]
