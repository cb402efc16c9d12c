"""Console pages: sign in with an API token, sign out, your tokens, and users (admin).

A session cookie (HttpOnly, SameSite=Lax, Secure under HTTPS) stands on the API token the
person signed in with (:mod:`assethub.hub.sessions`): revoking that token ends the session.
An admin gives a new user their first token on the users page (shown once), or with
``assethub token create --user NAME``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from assethub import errors
from assethub.console._web import (
    COOKIE,
    field,
    form_of,
    login_of,
    redirect,
    render,
    safe_next,
    secure,
    viewer,
)
from assethub.hub import Hub


def _days(value: str) -> float | None:
    if not value:
        return None
    try:
        days = float(value)
    except ValueError:
        raise errors.InvalidReferenceError(f"expiry must be a number of days, not {value!r}",
                                           part="expires_in_days", value=value[:20]) from None
    if not 0 < days <= 3650:
        raise errors.InvalidReferenceError("expiry must be between 0 and 3650 days",
                                           part="expires_in_days", value=value[:20])
    return days


def router(hub: Hub) -> APIRouter:
    r = APIRouter()

    @r.get("/signin")
    def signin_page(request: Request, next: str = "") -> Response:
        if login_of(hub, request) is not None:
            return redirect(safe_next(next))
        return render(hub, request, "signin.html", next=safe_next(next), error="")

    @r.post("/signin")
    async def signin(request: Request) -> Response:
        # no CSRF token exists before sign-in; the origin check still applies (login CSRF)
        form = await request.form()
        target = safe_next(str(form.get("next") or "/"))
        site = request.headers.get("sec-fetch-site")
        if site and site not in ("same-origin", "none"):
            return render(hub, request, "signin.html", status=403, next=target,
                          error="sign in from this site's own page")
        try:
            secret, login = hub.sessions.sign_in(str(form.get("token") or ""))
        except errors.AuthenticationError as e:
            return render(hub, request, "signin.html", status=401, next=target, error=str(e))
        response = redirect(target, f"Signed in as {login.principal.name}", request)
        response.set_cookie(COOKIE, secret, httponly=True, samesite="lax", secure=secure(request),
                            path="/", expires=login.expires_at)
        return response

    @r.post("/signout")
    async def signout(request: Request) -> Response:
        await form_of(hub, request)
        hub.sessions.sign_out(request.cookies.get(COOKIE))
        response = redirect("/signin", "Signed out", request)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=secure(request))
        return response

    # -- your tokens ---------------------------------------------------------------------------
    @r.get("/tokens")
    def tokens_page(request: Request) -> Response:
        who = viewer(hub, request)
        me = hub.require_user(who)
        login = login_of(hub, request)
        return render(hub, request, "tokens.html", tokens=hub.list_tokens(who, me),
                      current=login.token_id if login else None, created=None)

    @r.post("/tokens")
    async def create_token(request: Request) -> Response:
        login, form = await form_of(hub, request)
        who = login.principal
        me = hub.require_user(who)
        view, secret = hub.create_token(who, me, name=field(form, "name", limit=100),
                                        expires_in_days=_days(field(form, "expires_in_days")))
        # the secret is shown once, on this response (never in a URL or a cookie)
        return render(hub, request, "tokens.html", tokens=hub.list_tokens(who, me),
                      current=login.token_id, created=(view, secret))

    @r.post("/tokens/{token_id}/revoke")
    async def revoke_token(request: Request, token_id: int) -> Response:
        login, _ = await form_of(hub, request)
        hub.revoke_token(login.principal, token_id)
        if token_id == login.token_id:
            return redirect("/signin", "You revoked the token of this session: sign in again", request)
        return redirect("/tokens", f"Token {token_id} revoked", request)

    # -- users (admin) -------------------------------------------------------------------------
    @r.get("/admin/users")
    def users_page(request: Request) -> Response:
        who = viewer(hub, request)
        hub.require_admin(who)
        return render(hub, request, "users.html", users=hub.list_users(who),
                      groups=hub.list_groups(who), created=None)

    @r.post("/admin/users")
    async def create_user(request: Request) -> Response:
        login, form = await form_of(hub, request)
        who = login.principal
        hub.require_admin(who)
        name = field(form, "name", limit=63)
        hub.create_user(who, name, display_name=field(form, "display_name", limit=200),
                        email=field(form, "email", limit=320),
                        is_admin=form.get("is_admin") == "on")
        return _first_token(request, who, name, form)

    @r.post("/admin/users/{name}/tokens")
    async def user_token(request: Request, name: str) -> Response:
        login, form = await form_of(hub, request)
        hub.require_admin(login.principal)
        return _first_token(request, login.principal, name, form)

    def _first_token(request: Request, who: Any, name: str, form: Any) -> Response:
        view, secret = hub.create_token(who, name, name=field(form, "token_name", "console", 100),
                                        expires_in_days=_days(field(form, "expires_in_days")))
        return render(hub, request, "users.html", users=hub.list_users(who),
                      groups=hub.list_groups(who), created=(name, view, secret))

    return r
