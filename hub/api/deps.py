"""Dependencies shared by the routers: the hub and the operator token."""

import hmac

from fastapi import Header, HTTPException, Request

from hub.service import Hub


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def require_token(request: Request, authorization: str = Header(default="")) -> None:
    token = get_hub(request).config.api_token
    if not token:
        return
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
        raise HTTPException(401, "this operation needs the hub's API token (Authorization: Bearer …)")
