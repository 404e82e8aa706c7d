"""What a Canvas token opens: which root account, and whether it may use the SIS Imports API.

`sis-consumer submit --dry-run` and `sis-consumer check-config --probe` ask this before anything
is sent: `GET /api/v1/accounts/:id` (the account and its UUID, what Live Events carry), then one
page of one import of `GET .../sis_imports` (Canvas answers 401/403 when the token may not).
"""

from __future__ import annotations

from dataclasses import dataclass

from consumer.errors import CanvasError
from consumer.ports import CanvasAdmin


@dataclass(frozen=True, slots=True)
class TokenAccess:
    account_id: str
    name: str
    uuid: str
    """The root account UUID: what `SIS_CONSUMER_ACCOUNTS` lists and Live Events carry."""
    root: bool
    refused: str | None = None
    """Why the token may not read SIS imports (Canvas's answer); None when it may."""

    @property
    def may_import(self) -> bool:
        return self.root and self.refused is None


async def token_access(canvas: CanvasAdmin, account_ref: str = "self") -> TokenAccess:
    """Raises `CanvasError` when Canvas will not show the account at all (a wrong token: 401)."""
    account = await canvas.account(account_ref)
    account_id = str(account.get("id") or account_ref)
    root = account.get("root_account_id") in (None, "")
    refused = None if root else "SIS imports run on root accounts only: use the root account's id"
    if root:
        try:
            await canvas.sis_imports(account_id, per_page=1, max_pages=1)
        except CanvasError as exc:
            if exc.retryable:
                raise
            refused = str(exc)
    return TokenAccess(
        account_id, str(account.get("name") or ""), str(account.get("uuid") or ""), root, refused
    )
