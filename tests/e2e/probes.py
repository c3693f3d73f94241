"""Browser probes for the security tests: log in by cookie, watch for script running,
navigation and stray requests, and audit the DOM against what the app itself puts there."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page

# Everything the sanitiser may emit (conversations.rendering) plus our own <mark> in search
# snippets: user and model text rendered anywhere must stay within these tags.
CONTENT_TAGS = [
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table",
    "tbody", "td", "th", "thead", "tr", "ul", "mark", "time",
]  # fmt: skip
# Where user or model text is rendered as markup (not as escaped text in an attribute).
CONTENT_SELECTORS = (
    ".content.markdown, .content.plain, .content.streaming, .hit-snippet, .review-labels li, "
    "#item-note, .review-context"
)

AUDIT_JS = """
([contentTags, contentSelectors]) => {
  const problems = [];
  const here = location.origin;
  const sameOrigin = (url) => { try { return new URL(url, here).origin === here; }
                                catch (e) { return false; } };
  const scheme = (v) => (v || "").replace(/[\\u0000-\\u0020]/g, "").toLowerCase();
  const where = (el) => { const p = el.parentElement;
    return p ? ` in <${p.tagName.toLowerCase()} id="${p.id}" class="${p.className}">` : ""; };
  const say = (el, what) => problems.push(`<${el.tagName.toLowerCase()}> ${what}${where(el)}`);
  for (const el of document.querySelectorAll("*")) {
    const tag = el.tagName.toLowerCase();
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value;
      if (name.startsWith("on")) say(el, `handler ${name}`);
      if (/^(data-)?hx-on/.test(name)) say(el, `htmx handler ${name}`);
      // The app's own <body hx-headers> carries a random CSRF token, which can spell "xss".
      const own = el === document.body && name === 'hx-headers';
      const htmxAttr = /^(data-)?(hx|ws)-/.test(name);
      if (!own && htmxAttr && /xss|evil/i.test(value)) say(el, `htmx ${name}`);
      if (name === "srcdoc") say(el, "srcdoc");
      if (name === "style") say(el, `style="${value}"`);
      if (["href", "src", "action", "formaction", "xlink:href", "data", "poster"].includes(name)) {
        const v = scheme(value);
        if (/^(javascript|vbscript|data):/.test(v)) say(el, `${name}=${value}`);
        else if (tag !== "a" && value && !sameOrigin(value)) say(el, `remote ${name}=${value}`);
      }
    }
    if (["iframe", "frame", "frameset", "object", "embed", "applet", "base", "portal"]
        .includes(tag)) say(el, "element");
    if (tag === "script" && !(el.src && sameOrigin(el.src) && /^\\/(static|admin\\/jsi18n)\\//
        .test(new URL(el.src).pathname))) say(el, `script ${el.src || "inline"}`);
    if (tag === "style" && !el.nonce) say(el, "style without nonce");
    if (tag === "meta" && el.httpEquiv) say(el, `http-equiv ${el.httpEquiv}`);
    if (tag === "link" && !sameOrigin(el.href)) say(el, `remote ${el.href}`);
    // Our own: pygal charts, icons drawn in buttons (thumbs up/down), the admin's sprite.
    const icon = tag === "svg" && ((el.getAttribute("aria-hidden") === "true"
      && el.parentElement.tagName === "BUTTON")
      || (el.classList.contains("base-svgs") && el.parentElement === document.body));
    if ((tag === "svg" || tag === "math") && !el.closest(".chart") && !icon) say(el, "element");
  }
  for (const region of document.querySelectorAll(contentSelectors)) {
    for (const el of region.querySelectorAll("*")) {
      const tag = el.tagName.toLowerCase();
      if (!contentTags.includes(tag)) say(el, "in rendered content");
    }
  }
  if (window.__xss !== undefined) problems.push(`canary window.__xss=${window.__xss}`);
  return problems;
}
"""


@dataclass
class Watch:
    """What a page did that it should not: dialogs, popups, navigations, stray requests."""

    dialogs: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)
    navigations: list[str] = field(default_factory=list)
    stray_requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Watch:
        def on_dialog(dialog) -> None:
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        def on_navigation(frame) -> None:
            if frame == page.main_frame:
                self.navigations.append(frame.url)

        def on_request(request) -> None:
            url = request.url
            if "evil.example" in url or "xss-probe" in url or url.startswith("data:text/html"):
                self.stray_requests.append(url)

        page.on("dialog", on_dialog)
        page.on("popup", lambda popup: self.popups.append(popup.url))
        page.on("framenavigated", on_navigation)
        page.on("request", on_request)
        page.context.route(lambda url: "evil.example" in url, lambda route: route.abort())
        return self

    def goto(self, page: Page, url: str) -> None:
        """Open a page of ours, then expect no navigation away from it."""
        page.goto(url)
        page.wait_for_load_state("networkidle")
        self.navigations.clear()


def inert(page: Page, watch: Watch) -> list[str]:
    """Everything on the page that shows injected markup ran or could run (empty: inert)."""
    page.wait_for_load_state("networkidle")
    problems = page.evaluate(AUDIT_JS, [CONTENT_TAGS, CONTENT_SELECTORS])
    problems += [f"dialog {d}" for d in watch.dialogs]
    problems += [f"popup {p}" for p in watch.popups]
    problems += [f"navigated to {n}" for n in watch.navigations]
    problems += [f"request {r}" for r in watch.stray_requests]
    return problems


def assert_inert(page: Page, watch: Watch, where: str) -> None:
    """Fail with what was found when the page is not inert."""
    problems = inert(page, watch)
    shown = "\n  ".join(problems[:25])
    assert not problems, f"{where}: {len(problems)} problems\n  {shown}"


def logged_in_context(browser: Browser, app_url: str, user, **options) -> BrowserContext:
    """A browser context with `user`'s session cookie (made server-side, no login form)."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(base_url=app_url, **options)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": app_url}]
    )
    return context
