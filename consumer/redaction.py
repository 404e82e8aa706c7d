"""Secrets out of everything the daemon shows: log lines, exception messages, CLI output.

Tokens never appear in logs, metrics, the store, exceptions or what a command prints. Every line
goes through `redact` (the last structlog processor before rendering); an error's message through
`redact_text` when it is made (`errors.CanvasError`); what a command prints through
`redact_text` (`views`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

REDACTED: Final = "[REDACTED]"
_SECRET_KEYS: Final = frozenset(
    {"access_token", "authorization", "token", "canvas_token", "password", "secret", "api_key"}
)
# `metadata.url` of Canvas events carries the query string as sent: `?access_token=...`, also
# URL-encoded inside another parameter (`?redirect=%2Fapi%3Faccess_token%3D...`, once or twice); a
# mapping printed into a message (an exception about request params, a JSON body) shows
# `'access_token': '...'`; a header shows `Authorization: ...`.
_QUERY_SECRET = re.compile(
    r"""(?i)((?:access_token|api_key|token|password|secret|authorization)"""
    r"""(?:=|%(?:25)*3D|\\*["']\s*:\s*\\*["']|:[ \t]+(?!(?:bearer|basic)\s)))[^&\s#"'\\]+"""
)
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9~._+/=-]{8,}")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
"""`https://user:password@host`: the credentials of a URL."""


def redact_text(text: str) -> str:
    if "=" not in text and " " not in text and ":" not in text and "%" not in text:
        return text
    # Bearer first: `"token": "Bearer <t>"` must not lose its `Bearer` to the key rule and keep `<t>`.
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return _QUERY_SECRET.sub(rf"\1{REDACTED}", text)


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in _SECRET_KEYS else redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """A structlog processor, after every one that adds to the line, so nothing escapes it."""
    out: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        out[key] = REDACTED if key.lower() in _SECRET_KEYS else redact_value(value)
    return dict(out)
