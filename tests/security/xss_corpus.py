"""XSS and HTML-injection payloads fed wherever people or the model write text.

Every payload that could run script tries to set the canary `window.__xss` (or to open a
dialog); the ones that could load something point at evil.example or /xss-probe, so a
test can see any request they cause. Grouped by trick; the total is asserted (>= 50).
"""

CANARY = "window.__xss=1"

SCRIPT_TAGS = [
    f"<script>{CANARY}</script>",
    f"<SCRIPT>{CANARY}</SCRIPT>",
    f'<script src="data:text/javascript,{CANARY}"></script>',
    f"<scr<script>ipt>{CANARY}</scr</script>ipt>",
    f'"><script>{CANARY}</script>',
    f"'><script>{CANARY}</script>",
    f"</textarea><script>{CANARY}</script>",
    f"</title><script>{CANARY}</script>",
    f"</script><script>{CANARY}</script>",
    "<script>alert(document.domain)</script>",
    f"<template><script>{CANARY}</script></template>",
]

EVENT_HANDLERS = [
    f'<img src=x onerror="{CANARY}">',
    "<img src=x onerror=alert(1)>",
    f'<svg onload="{CANARY}">',
    f'<body onload="{CANARY}">',
    f'<div onmouseover="{CANARY}" class="content">hover me</div>',
    f'<input autofocus onfocus="{CANARY}">',
    f'<details open ontoggle="{CANARY}"><summary>x</summary></details>',
    f'<video><source onerror="{CANARY}"></video>',
    f"<audio src=x onerror={CANARY}>",
    f'" onmouseover="{CANARY}" x="',
    f"' autofocus onfocus='{CANARY}' x='",
    f'<marquee onstart="{CANARY}">m</marquee>',
    f'<button form=composer formaction="javascript:{CANARY}">go</button>',
    f'<select autofocus onfocus="{CANARY}"></select>',
]

URLS = [
    f'<a href="javascript:{CANARY}">click</a>',
    f'<a href="JaVaScRiPt:{CANARY}">click</a>',
    f'<a href="&#106;avascript:{CANARY}">click</a>',
    f'<a href="java\tscript:{CANARY}">click</a>',
    f'<a href="\x01javascript:{CANARY}">click</a>',
    '<iframe src="javascript:parent.__xss=1"></iframe>',
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    f'<object data="javascript:{CANARY}"></object>',
    f'<embed src="javascript:{CANARY}">',
    f'<form action="javascript:{CANARY}"><button>go</button></form>',
    f'<meta http-equiv="refresh" content="0;url=javascript:{CANARY}">',
    '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    '<base href="https://evil.example/">',
    '<a href="data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==">d</a>',
    '<img src="https://evil.example/track.png">',
]

SVG_AND_MATHML = [
    f"<svg><script>{CANARY}</script></svg>",
    f'<svg><a xlink:href="javascript:{CANARY}"><text x="20" y="20">x</text></a></svg>',
    f'<svg><animate onbegin="{CANARY}" attributeName="x" dur="1s"/></svg>',
    f"<svg><foreignObject><img src=x onerror={CANARY}></foreignObject></svg>",
    f'<svg><set attributeName="onmouseover" to="{CANARY}"/></svg>',
    f"<math><mtext><table><mglyph><style><img src=x onerror={CANARY}>",
    f'<svg><use href="data:image/svg+xml,<svg id=x onload={CANARY}>#x"/></svg>',
]

CSS = [
    f'<style>@import "javascript:{CANARY}";</style>',
    f'<div style="background:url(javascript:{CANARY})">styled</div>',
    '<style>*{background:url("https://evil.example/leak.png")}</style>',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<div style="position:fixed;inset:0;z-index:9999;background:red">cover</div>',
]

MARKDOWN = [
    f"[click me](javascript:{CANARY})",
    f"[click](JAVASCRIPT:{CANARY})",
    f'![img](x" onerror="{CANARY})',
    f"![x](javascript:{CANARY})",
    "[d](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    f'<https://example.com" onmouseover="{CANARY}>',
    f"[a](<javascript:{CANARY}>)",
    f"[x]: javascript:{CANARY}\n\n[ref][x]",
    f"```html\n<script>{CANARY}</script>\n```",
    f"`<img src=x onerror={CANARY}>`",
    "![track](https://evil.example/pixel.png)",
    f"[x](javascript&#58;{CANARY})",
    f"| a | b |\n|---|---|\n| <img src=x onerror={CANARY}> | [c](javascript:{CANARY}) |",
]

UNICODE = [
    f"\uff1cscript\uff1e{CANARY}\uff1c/script\uff1e",
    f"\u202e<script>{CANARY}</script>",
    f"<scr\u200bipt>{CANARY}</scr\u200bipt>",
    f"\ufeff<svg/onload={CANARY}>",
    "<img src=x onerror=\\u0061lert(1)>",
    "<img src=x onerror=&#x77;indow.__xss=1>",
    f"\u2028<script>{CANARY}</script>\u2029",
]

HTMX_AND_TEMPLATES = [
    '<div hx-get="/xss-probe" hx-trigger="load">htmx get</div>',
    f'<div hx-on:htmx:load="{CANARY}">htmx on</div>',
    f'<button hx-on::click="{CANARY}">htmx click</button>',
    '<div hx-ext="ws" ws-connect="wss://evil.example/ws">ws</div>',
    "{{ request.user.password }}{% debug %}",
    f'<!--<img src="--><img src=x onerror={CANARY}//">',
    f'<noscript><p title="</noscript><img src=x onerror={CANARY}>">',
]

PAYLOADS: list[str] = [
    *SCRIPT_TAGS,
    *EVENT_HANDLERS,
    *URLS,
    *SVG_AND_MATHML,
    *CSS,
    *MARKDOWN,
    *UNICODE,
    *HTMX_AND_TEMPLATES,
]


def labelled(payload: str, index: int, limit: int | None = None) -> str:
    """The payload with a unique prefix, cut to a field's length (titles, names)."""
    text = f"x{index} {payload}"
    return text[:limit] if limit else text
