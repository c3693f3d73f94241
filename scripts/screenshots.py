"""Take the README's screenshots from a real server in demo mode.

Run: .venv/bin/python scripts/screenshots.py
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    tmp = tempfile.mkdtemp()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "REDIS_"))}
    env |= {"DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "DEBUG": "true", "DEMO_TTFT": "0.2"}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*manage, "shell", "-c",
         "from accounts.models import User; "
         "User.objects.create_user('grace', password='screenshot-pass-123')"],
        cwd=ROOT, env=env, check=True,
    )  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-p", str(port), "chatsite.asgi:application"],
        cwd=ROOT, env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(2)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(f"{url}/accounts/login/")
            page.fill("#id_username", "grace")
            page.fill("#id_password", "screenshot-pass-123")
            page.click("button[type=submit]")
            notice = page.get_by_role("button", name=re.compile("^Got it"))
            if notice.count():
                notice.click()
            for title, text in [
                ("Weekly report", None),
                ("Trip to Lisbon", None),
                ("Parsing CSV files", "How do I read a CSV file in Python?"),
            ]:
                page.click("text=+ New conversation")
                page.fill("input[name=title]", title)
                page.click("text=Rename")
                if text:
                    page.wait_for_selector("#chat[data-ws-state=open]")
                    page.fill("#composer-text", text)
                    page.press("#composer-text", "Enter")
                    page.wait_for_selector("article.assistant[data-status=complete]", timeout=30000)
            page.reload()
            page.screenshot(path=str(ROOT / "docs" / "screenshot-chat.png"))
            browser.close()
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
