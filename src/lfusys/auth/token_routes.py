"""``/api/v1/tokens``: a signed-in browser session makes, lists and revokes the user's personal API tokens
(a token cannot manage tokens)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from lfusys.auth.middleware import provide_current_user, requires_user
from lfusys.auth.records import ApiToken, User
from lfusys.auth.routes import provide_services
from lfusys.errors import error_responses
from lfusys.http import requires_json_body
from lfusys.services import Services


class CreateToken(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: Annotated[list[str], msgspec.Meta(max_length=3)]
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None


class TokenView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenView:
        return cls(
            id=token.id,
            name=token.name,
            scopes=list(token.scopes),
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
        )


class CreatedToken(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scopes: list[str]
    token: str
    """The secret, shown this once."""
    created_at: datetime
    expires_at: datetime | None


class TokenList(msgspec.Struct, frozen=True, kw_only=True):
    tokens: list[TokenView]


class TokensController(Controller):
    path = "/tokens"
    tags = ["tokens"]
    guards = [requires_user]  # and no token scope: only a browser session manages tokens
    dependencies = {"current_user": Provide(provide_current_user), "services": Provide(provide_services)}

    @post(
        "/",
        operation_id="createToken",
        status_code=HTTP_201_CREATED,
        guards=[requires_json_body],
        responses=error_responses(401, 403, 413, 415, 429),
    )
    async def create(
        self, data: JSONBody[CreateToken], current_user: NamedDependency[User], services: NamedDependency[Services]
    ) -> CreatedToken:
        """Make a personal API token; its secret (``token``, starting ``lfusys_``) is in this answer only."""
        token, secret = await services.api_tokens.create(
            current_user.id, name=data.name, scopes=data.scopes, expires_in_days=data.expires_in_days
        )
        return CreatedToken(
            id=token.id,
            name=token.name,
            scopes=list(token.scopes),
            token=secret,
            created_at=token.created_at,
            expires_at=token.expires_at,
        )

    @get("/", operation_id="listTokens", responses=error_responses(401, 403, 429))
    async def list_tokens(self, current_user: NamedDependency[User], services: NamedDependency[Services]) -> TokenList:
        """The user's tokens, newest first: name, scopes, when made, last used and expiring; never a secret."""
        return TokenList(tokens=[TokenView.of(token) for token in await services.api_tokens.list(current_user.id)])

    @delete(
        "/{token_id:str}",
        operation_id="revokeToken",
        status_code=HTTP_204_NO_CONTENT,
        responses=error_responses(401, 403, 404, 429),
    )
    async def revoke(
        self, token_id: FromPath[str], current_user: NamedDependency[User], services: NamedDependency[Services]
    ) -> None:
        """Revoke a token: refused at once, on every replica."""
        await services.api_tokens.revoke(current_user.id, token_id)
