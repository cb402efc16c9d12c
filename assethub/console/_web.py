"""What every console page shares: templates, the signed-in person, CSRF, flash messages,
error pages and the security headers.

Pages are rendered on the server (Jinja2, autoescaped); the only script is the console's own
``static/console.js`` (no third-party code). Every change is a POST carrying the session's CSRF
token (hidden ``csrf`` field or ``X-CSRF-Token`` header) from a same-origin page; GETs never
change anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assethub import errors
from assethub.hub import ANONYMOUS, ConsoleLogin, Hub, Principal

HERE = Path(__file__).parent
COOKIE = "assethub_session"
FLASH_COOKIE = "assethub_flash"
#: the Content-Security-Policy of every console page: our own script and styles only, no
#: inline script, no framing, forms post only here
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
       "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Vary": "Cookie",
}


def asset_url(path: Any, page: str = "", **query: Any) -> str:
    """``/a/<owner>/<kind>/<folder>/<name>[/<page>][?query]`` for an asset path (str or AssetPath)."""
    url = "/a/" + "/".join(quote(str(p), safe="") for p in str(path).split("/"))
    if page:
        url += "/" + page
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return url + ("?" + urlencode(q) if q else "")


def folder_url(path: Any) -> str:
    return "/f/" + "/".join(quote(str(p), safe="") for p in str(path).split("/"))


def _url(path: str, **query: Any) -> str:
    q = {k: v for k, v in query.items() if v not in (None, "")}
    return path + ("?" + urlencode(q) if q else "")


def _short(commit: Any, n: int = 12) -> str:
    return str(commit or "")[:n]


def _when(value: Any) -> Markup:
    """A <time> element: a short local form, the exact UTC time in its title."""
    if not value:
        return Markup("")
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    short = text[:16].replace("T", " ")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(text, short)


env = Environment(loader=FileSystemLoader(HERE / "templates"),
                  autoescape=select_autoescape(["html", "svg"], default_for_string=True),
                  trim_blocks=True, lstrip_blocks=True)
env.globals.update(asset_url=asset_url, folder_url=folder_url, url=_url)
env.filters.update(short=_short, when=_when)


def other_uis() -> dict[str, str]:
    """The other products' web UIs the console links to (server settings: ``assethub up`` sets
    ``ASSETHUB_PREFECT_UI_URL`` and ``ASSETHUB_MLFLOW_UI_URL``); only http(s) addresses."""
    found = {"Prefect": os.environ.get("ASSETHUB_PREFECT_UI_URL", ""),
             "MLflow": os.environ.get("ASSETHUB_MLFLOW_UI_URL", "")}
    return {k: v.rstrip("/") for k, v in found.items() if v.startswith(("http://", "https://"))}


env.globals.update(other_uis=other_uis)


def cookie_secret(request: Request) -> str | None:
    return request.cookies.get(COOKIE)


def login_of(hub: Hub, request: Request) -> ConsoleLogin | None:
    """The signed-in person of this request (kept on the request: one look-up per request)."""
    if "console_login" not in request.state._state:
        request.state.console_login = hub.sessions.check(cookie_secret(request))
    login: ConsoleLogin | None = request.state.console_login
    return login


def viewer(hub: Hub, request: Request) -> Principal:
    """Who is looking: the signed-in person, or anonymous (who sees what is public)."""
    login = login_of(hub, request)
    return login.principal if login else ANONYMOUS


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def render(hub: Hub, request: Request, template: str, status: int = 200,
           **context: Any) -> HTMLResponse:
    """A full page from ``template`` with the layout's context (who, CSRF token, flash,
    navigation) and the console's security headers."""
    login = login_of(hub, request)
    flash = request.cookies.get(FLASH_COOKIE, "")
    html = env.get_template(template).render(
        request=request, login=login, me=login.principal if login else ANONYMOUS,
        csrf=login.csrf if login else "", flash=flash, path=request.url.path,
        **context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def fragment(template: str, **context: Any) -> HTMLResponse:
    """A piece of a page (what console.js swaps in, e.g. a run's live status)."""
    return HTMLResponse(env.get_template(template).render(**context), headers=SECURITY_HEADERS)


def redirect(location: str, flash: str = "", request: Request | None = None) -> RedirectResponse:
    """303 to ``location`` (a path on this site), with a one-time message for the next page."""
    if not location.startswith("/") or location.startswith("//"):
        location = "/"
    response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
    if flash:
        response.set_cookie(FLASH_COOKIE, flash[:300], httponly=True, samesite="lax", path="/",
                            secure=bool(request and secure(request)), max_age=60)
    return response


def safe_next(target: str | None) -> str:
    """A redirect target taken from a form or query: a path on this site, else ``/``."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def same_origin(request: Request) -> bool:
    """A browser's own say on where a POST came from (Fetch metadata, then Origin)."""
    site = request.headers.get("sec-fetch-site")
    if site and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return urlsplit(origin).netloc == request.headers.get("host", "")
    return origin != "null"


async def form_of(hub: Hub, request: Request) -> tuple[ConsoleLogin, Mapping[str, Any]]:
    """The signed-in person and the posted form, once the CSRF token and the origin are checked.

    Not signed in: AuthenticationError (the page asks to sign in); a missing or wrong token or
    a cross-site origin: ForbiddenError, and nothing is done."""
    login = login_of(hub, request)
    if login is None:
        raise errors.AuthenticationError("sign in first")
    form = await request.form()
    presented = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
    if not hub.sessions.csrf_matches(login, presented) or not same_origin(request):
        hub.record(login.principal, "console.csrf", request.url.path, "denied",
                   "missing or wrong CSRF token, or a cross-site request")
        raise errors.ForbiddenError("this form is out of date or was not sent from the console "
                                    "(CSRF check failed): reload the page and try again")
    return login, form


def field(form: Mapping[str, Any], name: str, default: str = "", limit: int = 10_000) -> str:
    """A text field of a posted form, stripped and bounded."""
    value = form.get(name)
    if value is None or not isinstance(value, str):
        return default
    if len(value) > limit:
        raise errors.InvalidReferenceError(f"{name} is over {limit} characters", part=name,
                                           value=value[:40])
    return value.strip()


_TITLES = {401: "Sign in", 403: "Not allowed", 404: "Not found", 409: "Conflict",
           413: "Too large", 503: "Unavailable"}


def error_page(hub: Hub | None, request: Request, exc: Exception) -> Response:
    """The console's answer to an error: sign in first (401), else a page with the status and
    the error's own message (a hidden folder or asset reads exactly like a missing one: the hub
    raises the same NotFoundError for both)."""
    status, body = errors.to_wire(exc)
    if status == 401 and request.method == "GET":
        return redirect(_url("/signin", next=request.url.path +
                             (f"?{request.url.query}" if request.url.query else "")))
    context = {"code": status, "title": _TITLES.get(status, "Error" if status >= 500 else "Refused"),
               "message": body.get("message", ""), "kind": body.get("type", "")}
    if hub is None:
        return HTMLResponse(env.get_template("error.html").render(
            request=request, login=None, me=ANONYMOUS, csrf="", flash="", path=request.url.path,
            **context), status_code=status, headers=SECURITY_HEADERS)
    return render(hub, request, "error.html", status=status, **context)
