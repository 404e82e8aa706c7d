"""Where a person finds an import in Canvas: its account's SIS import page and its API URL. Pure."""

from __future__ import annotations

from urllib.parse import urlsplit


def canvas_origin(canvas_url: str | None) -> str | None:
    """`SIS_CONSUMER_CANVAS_URL` without credentials, query or fragment: safe to print anywhere."""
    if not canvas_url:
        return None
    parts = urlsplit(canvas_url)
    if not parts.scheme or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    host = host if parts.port is None else f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def import_links(canvas_url: str | None, account_id: str | None, sis_batch_id: int) -> dict[str, str] | None:
    """`canvas`: the account's SIS import page (Admin → account → SIS Import, where the latest
    imports show); `api`: `GET` it with an admin token for the whole SisImport."""
    origin = canvas_origin(canvas_url)
    if origin is None or not account_id:
        return None
    return {
        "canvas": f"{origin}/accounts/{account_id}/sis_import",
        "api": f"{origin}/api/v1/accounts/{account_id}/sis_imports/{sis_batch_id}",
    }
