"""Token authentication of WebService calls, the ways LoyJoy's module can send a token."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

from flask import Request


def presented_token(request: Request) -> str | None:
    """The token a call presents: ``Authorization: Bearer <token>``, ``Authorization: Basic``
    with the token as password (any user name), or a ``token`` query parameter."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return request.args.get("token")


def authorized(presented: str | None, tokens: Sequence[str]) -> bool:
    """Whether ``presented`` is one of ``tokens``, in time that does not depend on which or where.

    Every token is compared, in constant time, whatever matched already: several valid tokens at
    once let a deployment rotate them.
    """
    candidate = (presented or "").encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token.encode())
    return matched and presented is not None
