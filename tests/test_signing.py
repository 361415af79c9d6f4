"""signing: HMAC-signed, expiring media links that reveal only an opaque file reference."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.agent.signing import signature, signed_url, verify

SECRET = b"media-secret-0123456789abcdef"
BASE = "https://bot.example.com"
FILE_ID = "AgACAgIAAxkBAAIBZ2Zm_tK-4aQ"
NOW = 1_750_000_000
EXP = NOW + 600


def link_parts(url: str) -> tuple[str, str, str, str]:
    """(kind, file_id, exp, sig) as the media server would read them from the link."""
    parts = urlsplit(url)
    _, media, kind, raw_id = parts.path.split("/")
    assert media == "media"
    query = parse_qs(parts.query, strict_parsing=True)
    return kind, unquote(raw_id), query["exp"][0], query["sig"][0]


def test_signed_url_has_the_documented_shape() -> None:
    """``{base}/media/{kind}/{file_id}?exp=..&sig=..``, the expiry in plain seconds."""
    url = signed_url(BASE, SECRET, FILE_ID, "image", EXP)
    sig = signature(SECRET, FILE_ID, "image", EXP)
    assert url == f"{BASE}/media/image/{FILE_ID}?exp={EXP}&sig={sig}"


def test_signed_url_tolerates_a_trailing_slash_on_the_base() -> None:
    """A base URL ending in '/' gives no double slash."""
    assert signed_url(BASE + "/", SECRET, FILE_ID, "pdf", EXP).startswith(f"{BASE}/media/pdf/")


def test_signed_url_quotes_the_file_id() -> None:
    """A file id with reserved characters stays one path segment and reads back intact."""
    odd = "a/b?c&d=e f#g%"
    url = signed_url(BASE, SECRET, odd, "image", EXP)
    assert "/media/image/a%2Fb%3Fc%26d%3De%20f%23g%25?" in url
    assert link_parts(url)[1] == odd


def test_signature_reveals_no_secret() -> None:
    """The signature is hex, neither the secret nor anything long enough to brute-force it from."""
    sig = signature(SECRET, FILE_ID, "image", EXP)
    assert len(sig) == 40
    assert int(sig, 16) >= 0
    assert SECRET.decode() not in signed_url(BASE, SECRET, FILE_ID, "image", EXP)


def test_fresh_link_verifies() -> None:
    """A link read back from its URL verifies before it expires, up to its expiry second."""
    kind, file_id, exp, sig = link_parts(signed_url(BASE, SECRET, FILE_ID, "image", EXP))
    assert verify(SECRET, file_id, kind, exp, sig, now=NOW)
    assert verify(SECRET, file_id, kind, exp, sig, now=EXP)


SIG = signature(SECRET, FILE_ID, "image", EXP)


@pytest.mark.parametrize(
    ("secret", "file_id", "kind", "exp", "sig", "now"),
    [
        pytest.param(SECRET, FILE_ID, "image", str(EXP), SIG, EXP + 1, id="expired"),
        pytest.param(SECRET, FILE_ID, "image", str(EXP), SIG[:-1] + ("0" if SIG[-1] != "0" else "1"),
                     NOW, id="tampered-sig"),
        pytest.param(SECRET, FILE_ID, "image", str(EXP), SIG[:20], NOW, id="truncated-sig"),
        pytest.param(SECRET, FILE_ID, "image", str(EXP), "", NOW, id="empty-sig"),
        pytest.param(SECRET, FILE_ID, "image", str(EXP), "é" * 40, NOW, id="non-ascii-sig"),
        pytest.param(SECRET, FILE_ID + "x", "image", str(EXP), SIG, NOW, id="other-file-id"),
        pytest.param(SECRET, FILE_ID, "pdf", str(EXP), SIG, NOW, id="other-kind"),
        pytest.param(b"another-secret", FILE_ID, "image", str(EXP), SIG, NOW, id="other-secret"),
        pytest.param(SECRET, FILE_ID, "image", str(EXP + 3600), SIG, NOW, id="extended-exp"),
        pytest.param(SECRET, FILE_ID, "image", "", SIG, NOW, id="empty-exp"),
        pytest.param(SECRET, FILE_ID, "image", "soon", SIG, NOW, id="word-exp"),
        pytest.param(SECRET, FILE_ID, "image", f"{EXP}.0", SIG, NOW, id="decimal-exp"),
        pytest.param(SECRET, FILE_ID, "image", f"-{EXP}", SIG, NOW, id="negative-exp"),
        pytest.param(SECRET, FILE_ID, "image", f" {EXP}", SIG, NOW, id="padded-exp"),
        pytest.param(SECRET, FILE_ID, "image", "²", SIG, NOW, id="superscript-digit-exp"),
        pytest.param(SECRET, FILE_ID, "image", "9" * 5000, SIG, NOW, id="overlong-exp"),
    ],
)
def test_link_is_refused(secret: bytes, file_id: str, kind: str, exp: str, sig: str, now: float) -> None:
    """Expired, altered, or malformed links (any field, any secret) are refused, never raising."""
    assert verify(secret, file_id, kind, exp, sig, now) is False


FILE_IDS = st.text(min_size=1, max_size=60)
KINDS = st.sampled_from(["image", "video", "audio", "pdf", "doc", "txt"]) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10
)
EXPIRIES = st.integers(min_value=NOW, max_value=NOW + 10**9)


@given(
    original=st.fixed_dictionaries({"file_id": FILE_IDS, "kind": KINDS, "exp": EXPIRIES}),
    field=st.sampled_from(["file_id", "kind", "exp"]),
    data=st.data(),
)
def test_any_change_to_a_signed_field_invalidates(
    original: dict[str, Any], field: str, data: st.DataObject
) -> None:
    """A signature is valid for exactly the file_id, kind and expiry it was made for."""
    sig = signature(SECRET, original["file_id"], original["kind"], original["exp"])
    strategy = {"file_id": FILE_IDS, "kind": KINDS, "exp": EXPIRIES}[field]
    changed = {**original, field: data.draw(strategy.filter(lambda value: value != original[field]))}
    assert verify(SECRET, original["file_id"], original["kind"], str(original["exp"]), sig, now=NOW)
    assert not verify(SECRET, changed["file_id"], changed["kind"], str(changed["exp"]), sig, now=NOW)
