"""The project as a whole: configuration, deployment files, the embedded default."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ANTHROPIC_"))}
    for name in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    env.update(extra)
    return env


def test_missing_secret_key_fails_at_start_naming_it():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=_clean_env(DEBUG="false"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is required" in result.stderr


def test_every_setting_read_from_the_environment_is_documented():
    settings_source = (ROOT / "chatsite" / "settings.py").read_text()
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    import re

    names = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    assert {"DATABASE_URL", "REDIS_URL", "ANTHROPIC_API_KEY", "CLAUDE_MODEL"} <= names
    missing_example = sorted(n for n in names if n not in example)
    missing_readme = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing_example == []
    assert missing_readme == []


def test_compose_file_is_valid_for_a_real_compose_implementation():
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian package) is installed by `make test`"
    result = subprocess.run(
        [compose, "-f", "docker-compose.yml", "config", "-q"],
        cwd=ROOT,
        env=_clean_env(SECRET_KEY="compose-check"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
