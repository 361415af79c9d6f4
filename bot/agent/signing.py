"""Pure: HMAC-signed, expiring media links that reveal nothing but an opaque file reference."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode


def signature(secret: bytes, file_id: str, kind: str, expires: int) -> str:
    message = f"{kind}\n{file_id}\n{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:40]


def signed_url(base_url: str, secret: bytes, file_id: str, kind: str, expires: int) -> str:
    query = urlencode({"exp": expires, "sig": signature(secret, file_id, kind, expires)})
    return f"{base_url.rstrip('/')}/media/{kind}/{quote(file_id, safe='')}?{query}"


def verify(secret: bytes, file_id: str, kind: str, expires: str, sig: str, now: float) -> bool:
    """True for a link this secret signed that has not expired."""
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12) or int(expires) < now:
        return False
    expected = signature(secret, file_id, kind, int(expires))
    return hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace"))
