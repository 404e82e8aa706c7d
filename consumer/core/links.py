"""Where a person finds an import in Canvas: its SIS import page and its API URL. Pure.

Every page and every `import.stuck` line carries these, so that on-call goes from the alert to
the import in one click. Built from `SIS_CONSUMER_CANVAS_URL` and the import's local ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class ImportLinks:
    ui: str
    """The account's SIS Import page (Canvas shows the imports there)."""
    api: str
    """`GET` the SisImport: its state, progress, counts, errors."""


def canvas_base(url: str) -> str:
    """The Canvas base URL as it may be shown: scheme, host and path only (no user, password,
    query or fragment, should someone have put one in the setting)."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def import_links(canvas_url: str, account_id: str, sis_batch_id: int) -> ImportLinks:
    base = canvas_base(canvas_url)
    return ImportLinks(
        ui=f"{base}/accounts/{account_id}/sis_import",
        api=f"{base}/api/v1/accounts/{account_id}/sis_imports/{sis_batch_id}",
    )


def canvas_origin(canvas_url: str | None) -> str | None:
    """`canvas_base`, or None when the setting is unset or not a URL (nothing to link to)."""
    if not canvas_url:
        return None
    parts = urlsplit(canvas_url.strip())
    return canvas_base(canvas_url) if parts.scheme and parts.hostname else None


def links_json(canvas_url: str | None, account_id: str | None, sis_batch_id: int) -> dict[str, str] | None:
    """The links as `imports --json` and `submit --json` show them: `canvas` (the page), `api`."""
    if canvas_origin(canvas_url) is None or not account_id:
        return None
    assert canvas_url is not None
    links = import_links(canvas_url, account_id, sis_batch_id)
    return {"canvas": links.ui, "api": links.api}
