"""The Content-Security-Policy header and templates it can be strict with."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TEMPLATE_DIRS = [ROOT / "templates", *ROOT.glob("*/templates")]
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "inline event handler"),
    (re.compile(r"\sstyle\s*=", re.I), "style attribute"),
    (re.compile(r"<style\b", re.I), "inline <style>"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
    (re.compile(r"\s(data-)?hx-on", re.I), "hx-on handler (needs eval)"),
    (re.compile(r"""hx-vals=["']\s*(js|javascript):""", re.I), "hx-vals with script"),
]


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


def test_templates_have_no_inline_script_handlers_or_styles():
    found = []
    for directory in TEMPLATE_DIRS:
        for path in directory.rglob("*.html"):
            text = path.read_text()
            for pattern, what in INLINE:
                for match in pattern.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    found.append(f"{path.relative_to(ROOT)}:{line}: {what}")
    assert found == []


@pytest.mark.django_db
def test_pages_send_a_strict_policy_whose_nonce_is_on_the_htmx_script(client, user):
    client.force_login(user)
    response = client.get("/")
    policy = directives(response["Content-Security-Policy"])
    nonce = re.fullmatch(r"'nonce-([\w-]+)'", policy["script-src"][1]).group(1)
    assert policy["script-src"] == ["'self'", f"'nonce-{nonce}'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"][0] == "'self'"
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    html = response.content.decode()
    scripts = re.findall(r"<script[^>]*>", html)
    assert any("htmx" in tag and f'nonce="{nonce}"' in tag for tag in scripts)
    assert all("src=" in tag for tag in scripts)  # no inline script at all


@pytest.mark.django_db
def test_every_response_gets_a_fresh_nonce(client, user):
    client.force_login(user)
    first = client.get("/")["Content-Security-Policy"]
    second = client.get("/")["Content-Security-Policy"]
    assert first != second


@pytest.mark.django_db
def test_htmx_is_configured_without_eval_or_inline_styles(client):
    html = client.get("/accounts/login/").content.decode()
    config = re.search(r'<meta name="htmx-config" content=\'([^\']+)\'>', html).group(1)
    import json

    values = json.loads(config)
    assert values["allowEval"] is False
    assert values["includeIndicatorStyles"] is False
    assert values["allowScriptTags"] is False
