"""Find markup in rendered HTML that could run script or navigate."""

from html.parser import HTMLParser

DANGEROUS_TAGS = {"script", "iframe", "object", "embed", "img", "svg", "style", "form", "base"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href"}


class _Finder(HTMLParser):
    def __init__(self, allowed_tags: set[str]) -> None:
        super().__init__()
        self.allowed_tags = allowed_tags
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in DANGEROUS_TAGS and tag not in self.allowed_tags:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in URL_ATTRIBUTES and value:
                scheme = value.strip().lower().replace("\t", "").replace("\n", "")
                if scheme.startswith(("javascript:", "data:", "vbscript:")):
                    self.found.append(f"<{tag} {name}={value}>")


def dangerous_markup(html: str, *, allowed_tags: frozenset[str] = frozenset()) -> list[str]:
    """Every element or attribute in html that could execute script or leak data."""
    finder = _Finder(set(allowed_tags))
    finder.feed(html)
    return finder.found
