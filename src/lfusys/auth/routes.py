"""``/api/v1/auth``: register, log in, refresh, log out, who am I."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import Cookie, State
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT, HTTP_302_FOUND

from lfusys.auth.middleware import ANY_SCOPE, TOKEN_SCOPE_OPT, provide_current_user, requires_user
from lfusys.auth.oauth import CALLBACK_PATH, PROVIDER_NAMES, IdentityRefused, ProviderUnavailable
from lfusys.auth.oauth_state import STATE_TTL, SignInRefused
from lfusys.auth.records import User
from lfusys.auth.schemas import LoginRequest, ProviderList, RegisterRequest, SetPasswordRequest, UserOut
from lfusys.auth.service import AuthService, SignedIn
from lfusys.errors import NotAuthenticated, NotFound, error_response, error_responses
from lfusys.http import requires_json_body
from lfusys.rate_limits.limits import RATE_LIMIT_OPT, Rule
from lfusys.services import Services, services_from
from lfusys.storage.ports import KVUnavailable


async def provide_services(state: State) -> Services:
    return services_from(state)


def _signed_in(services: Services, signed_in: SignedIn) -> Response[UserOut]:
    return Response(
        UserOut.of(signed_in.user),
        status_code=HTTP_200_OK,
        cookies=services.cookies.session_cookies(signed_in.access_token, signed_in.refresh_token),
    )


def _to_sign_in_page(message: str, *cookies: Cookie) -> Redirect:
    """Back to the web app's sign-in page, which shows ``message`` (never a stack trace or JSON)."""
    return Redirect(f"/signin?{urlencode({'error': message})}", status_code=HTTP_302_FOUND, cookies=list(cookies))


def _callback_url(services: Services, provider: str) -> str:
    """Where ``provider`` sends the browser back: the redirect URI of both the authorization request and
    the code exchange, which must be the same."""
    return services.settings.core.public_url.rstrip("/") + CALLBACK_PATH.format(provider=provider)


class AuthController(Controller):
    path = "/auth"
    tags = ["auth"]
    dependencies = {"services": Provide(provide_services)}
    opt = {RATE_LIMIT_OPT: Rule.AUTH}

    @post(
        "/register",
        operation_id="register",
        status_code=HTTP_201_CREATED,
        guards=[requires_json_body],
        responses=error_responses(403, 409, 413, 415, 429, 503),
        opt={RATE_LIMIT_OPT: Rule.REGISTER},
    )
    async def register(self, data: JSONBody[RegisterRequest], services: NamedDependency[Services]) -> UserOut:
        """Create an account. The email is case-insensitive; 409 if it already has one."""
        auth: AuthService = services.auth
        user = await auth.register(name=data.name, email=data.email, password=data.password)
        return UserOut.of(user)

    @post(
        "/login",
        operation_id="login",
        guards=[requires_json_body],
        responses=error_responses(401, 403, 413, 415, 429, 503),
        opt={RATE_LIMIT_OPT: Rule.LOGIN},
    )
    async def login(
        self, request: Request[Any, Any, Any], data: JSONBody[LoginRequest], services: NamedDependency[Services]
    ) -> Response[UserOut]:
        """Check email and password and set the access and refresh cookies. Any failure is one 401.

        Sign-ins are limited per client address and per email (429), both counted before the password
        is checked; 503 when the server is checking as many passwords as it can."""
        await services.rate_limits.admit_login(request.scope, data.email)
        return _signed_in(services, await services.auth.login(email=data.email, password=data.password))

    @post("/refresh", operation_id="refresh", responses=error_responses(401, 403, 429))
    async def refresh(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[Any]:
        """Rotate both cookies. Replaying a spent refresh token ends that sign-in everywhere."""
        token = request.cookies.get(services.cookies.refresh_name)
        try:
            signed_in = await services.auth.refresh(token)
        except NotAuthenticated as exc:
            response = error_response(exc.message, exc.status_code)
            response.cookies = services.cookies.cleared_cookies()
            return response
        return _signed_in(services, signed_in)

    @post(
        "/logout",
        operation_id="logout",
        status_code=HTTP_204_NO_CONTENT,
        # The handler returns a Response only to clear the cookies: the answer has no body.
        responses={**error_responses(403, 429), HTTP_204_NO_CONTENT: ResponseSpec(None, description="Signed out")},
    )
    async def logout(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[None]:
        """Revoke this sign-in (its refresh-token family) and clear the cookies."""
        await services.auth.logout(
            access_token=request.cookies.get(services.cookies.access_name),
            refresh_token=request.cookies.get(services.cookies.refresh_name),
        )
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=services.cookies.cleared_cookies())

    @get("/providers", operation_id="providers")
    async def providers(self, state: State) -> ProviderList:
        """The OAuth providers this server offers for sign-in (those whose client id and secret are set)."""
        return ProviderList(providers=services_from(state).settings.oauth.providers)

    @get(
        "/{provider:str}/login",
        operation_id="oauth_login",
        status_code=HTTP_302_FOUND,
        responses=error_responses(404, 429),
    )
    async def oauth_login(
        self,
        services: NamedDependency[Services],
        provider: FromPath[str],
        next_path: Annotated[str | None, QueryParameter(name="next")] = None,
    ) -> Redirect:
        """Start signing in with ``provider``: off to its approval page, then back to ``next`` (a path on
        this site). A provider that does not answer sends the browser to the sign-in page, which says so."""
        if not services.oauth.offers(provider):
            raise NotFound("unknown sign-in provider")
        try:
            endpoints = await services.oauth.of(provider)
            started = await services.sign_ins.begin(provider, next_path, with_nonce=provider == "google")
        except ProviderUnavailable as exc:
            return _to_sign_in_page(str(exc))
        except KVUnavailable:
            return _to_sign_in_page(f"Signing in with {PROVIDER_NAMES[provider]} is unavailable right now.")
        callback = _callback_url(services, provider)
        return Redirect(
            services.oauth.authorize_url(provider, endpoints, started, callback),
            status_code=HTTP_302_FOUND,
            cookies=[services.cookies.sign_in_state_cookie(started.browser_secret, STATE_TTL)],
        )

    @get(
        "/{provider:str}/callback",
        operation_id="oauth_callback",
        status_code=HTTP_302_FOUND,
        responses=error_responses(404, 429),
    )
    async def oauth_callback(
        self,
        request: Request[Any, Any, Any],
        services: NamedDependency[Services],
        provider: FromPath[str],
        code: Annotated[str | None, QueryParameter()] = None,
        returned_state: Annotated[str | None, QueryParameter(name="state")] = None,
        error: Annotated[str | None, QueryParameter()] = None,
    ) -> Redirect:
        """Where the provider sends the browser back: the sign-in is finished and the browser lands on the
        page it started from, signed in; anything wrong lands it on the sign-in page, which says what."""
        if not services.oauth.offers(provider):
            raise NotFound("unknown sign-in provider")
        name = PROVIDER_NAMES[provider]
        cleared = services.cookies.sign_in_state_cookie("", timedelta(0))
        try:
            secret = request.cookies.get(services.cookies.sign_in_state_name)
            pending = await services.sign_ins.take(provider, returned_state, secret)
            if error:
                raise SignInRefused(f"{name} did not allow the sign-in.")
            if not code:
                raise SignInRefused("The sign-in could not be completed: the provider's answer was incomplete.")
            callback = _callback_url(services, provider)
            endpoints = await services.oauth.of(provider)
            identity = await services.oauth.identity(
                provider, endpoints, code=code, verifier=pending.verifier, redirect_uri=callback, nonce=pending.nonce
            )
            signed_in = await services.auth.sign_in_with_identity(identity)
        except (SignInRefused, ProviderUnavailable, IdentityRefused) as exc:
            return _to_sign_in_page(str(exc), cleared)
        except KVUnavailable:
            return _to_sign_in_page(f"Signing in with {name} is unavailable right now.", cleared)
        cookies = services.cookies.session_cookies(signed_in.access_token, signed_in.refresh_token)
        return Redirect(pending.next, status_code=HTTP_302_FOUND, cookies=[*cookies, cleared])

    @get(
        "/me",
        operation_id="me",
        responses=error_responses(401, 403, 429),
        guards=[requires_user],
        opt={TOKEN_SCOPE_OPT: ANY_SCOPE},
        dependencies={"current_user": Provide(provide_current_user)},
    )
    async def me(self, current_user: NamedDependency[User], services: NamedDependency[Services]) -> UserOut:
        """The signed-in user, with every way they can sign in."""
        return UserOut.of(current_user, await services.backend.users.identities(current_user.id))

    @put(
        "/password",
        operation_id="set_password",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_user, requires_json_body],
        dependencies={"current_user": Provide(provide_current_user)},
        responses=error_responses(400, 401, 403, 413, 415, 429),
    )
    async def set_password(
        self,
        data: JSONBody[SetPasswordRequest],
        current_user: NamedDependency[User],
        services: NamedDependency[Services],
    ) -> None:
        """Set a password, so the account can also sign in with its email: the first one (an account
        made through a provider) needs none; a change needs ``current_password`` (403 if wrong)."""
        await services.auth.set_password(
            current_user.id, password=data.password, current_password=data.current_password
        )
