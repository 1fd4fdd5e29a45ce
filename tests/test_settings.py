"""Production settings refuse to start without their deploy values and pass check --deploy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.prod",
    "DJANGO_SECRET_KEY": "x7" * 30 + "-a-long-random-production-secret",
    "ALLOWED_HOSTS": "poll.example.org",
    "DATABASE_URL": "sqlite:////tmp/zaalpeiling-check.sqlite3",
    "REDIS_URL": "redis://redis.internal:6379/0",
}


def manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in DEPLOY_ENV}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = manage(DEPLOY_ENV, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "REDIS_URL"]
)
def test_production_refuses_to_start_without(missing):
    env = {key: value for key, value in DEPLOY_ENV.items() if key != missing}
    result = manage(env, "check")
    assert result.returncode != 0
    assert f"Set the environment variable {missing}" in result.stderr


def test_postgresql_connections_ask_for_keepalives_and_keep_the_urls_own_options():
    env = {
        **DEPLOY_ENV,
        "DATABASE_URL": "postgres://zp:secret@10.0.0.20:5432/zp?options=-c%20search_path%3Dzp",
    }
    shown = (
        "import json; from django.conf import settings; "
        "print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    )
    result = manage(env, "shell", "-c", shown)
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    assert options["keepalives"] == 1 and options["tcp_user_timeout"] == 10_000
    assert options["options"].startswith("-c search_path=zp -c tcp_keepalives_idle=5 ")
