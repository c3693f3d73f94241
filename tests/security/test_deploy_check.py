"""Production settings: `manage.py check --deploy` is clean, and each knob it checks is
really driven by the environment (leave one out and the check says so)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "chat.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://chat.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "STATIC_MANIFEST": "false",  # no collectstatic in the test checkout
}


def check_deploy(**overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_"))}
    env.pop("SECURE_COOKIES", None)  # the suite turns secure cookies off for plain http
    env.pop("DATABASE_URL", None)  # the check needs no database
    env |= PRODUCTION | overrides
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_nothing_with_production_settings():
    result = check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_notices_insecure_settings():
    result = check_deploy(SECURE_HSTS_SECONDS="0", SECURE_COOKIES="false", DEBUG="true")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W012", "security.W016", "security.W018"):
        assert warning in result.stderr + result.stdout, warning
