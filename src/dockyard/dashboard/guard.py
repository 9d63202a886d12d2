"""Who may talk to the dashboard: this machine's browser, with the token it printed.

- It listens on 127.0.0.1 only, and answers only Host headers naming that address or
  localhost on its port (a DNS-rebinding page cannot reach it by another name).
- Every path needs the token: ``?token=`` once (the answer sets an HttpOnly, SameSite=Strict
  cookie and redirects to the same path without it, so the token leaves the address bar,
  the history and any Referer), the cookie after that. Pages say ``Referrer-Policy:
  no-referrer`` and the server writes no access log.
- Another origin is refused (``Origin`` or ``Sec-Fetch-Site`` saying so), and an action (a
  POST) also needs the page's own CSRF value in a header, which another site cannot read.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

COOKIE = "dockyard_dashboard"
CSRF_HEADER = "x-dockyard-csrf"


@dataclass
class Verdict:
    status: int  # 0: let it through
    reason: str = ""
    set_cookie: bool = False
    redirect: str = ""


@dataclass
class Guard:
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    @property
    def origins(self) -> set[str]:
        return {f"http://{h}" for h in self.hosts}

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?token={self.token}"

    def _same(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def check(self, method: str, path: str, query: str, headers: dict[str, str]) -> Verdict:
        """``headers``: lower-case names."""
        if headers.get("host", "") not in self.hosts:
            return Verdict(403, "this dashboard answers on 127.0.0.1 only")
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return Verdict(403, "requests from another origin are refused")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return Verdict(403, "requests from another site are refused")
        params = parse_qsl(query, keep_blank_values=True)
        given = next((v for k, v in params if k == "token"), None)
        if given is not None:
            if not self._same(given):
                return Verdict(401, "wrong token: use the address `dockyard dashboard` printed")
            rest = urlencode([(k, v) for k, v in params if k != "token"])
            return Verdict(303, set_cookie=True, redirect=path + (f"?{rest}" if rest else ""))
        if not self._same(_cookie(headers.get("cookie", ""))):
            return Verdict(401, "open the address `dockyard dashboard` printed (with its token)")
        if method not in ("GET", "HEAD"):
            sent = headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), self.csrf.encode()):
                return Verdict(403, "an action needs the page's own request header")
        return Verdict(0)

    def cookie(self) -> str:
        return f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


#: Every answer carries these: no Referer, no framing, only this origin's scripts.
HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
