"""The accounts and users of the simulated Canvas: who a token is, and which ids Canvas shows for them.

Canvas has two id spaces (CANVAS.md §3): local ids (what the REST API and event bodies show) and
global ids (shard x 10**13 + local id, what Live Event metadata shows). Every id here is local; the
`global_id` helpers make the other kind, so tests can check that the right one lands in each place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SHARD_FACTOR = 10**13
DEFAULT_SHARD = 2107  # the shard of Instructure's own examples: global id 21070000000000001


def global_id(shard: int, local_id: int) -> int:
    return shard * SHARD_FACTOR + local_id


@dataclass(frozen=True, slots=True)
class User:
    """The admin a token belongs to: what `user_*` request metadata and `SisImport.user` show."""

    id: int
    name: str
    login_id: str
    sis_user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """A Canvas account. Root accounts (`root_account_id is None`) own a token and SIS imports."""

    id: int
    name: str
    uuid: str
    token: str | None = None
    root_account_id: int | None = None
    parent_account_id: int | None = None
    shard: int = DEFAULT_SHARD
    sis_account_id: str | None = None
    time_zone: str = "America/Chicago"
    sis_imports_enabled: bool = True
    term_ids: frozenset[int] = frozenset({1, 2, 3})
    """Enrollment terms `batch_mode_term_id` may name."""
    admin: User = field(default_factory=lambda: User(1, "SIS Robot", "sis-robot", "sis-robot"))
    developer_key_id: int = 170000000056

    @property
    def is_root(self) -> bool:
        return self.root_account_id is None

    @property
    def root_id(self) -> int:
        return self.id if self.root_account_id is None else self.root_account_id

    @property
    def lti_guid(self) -> str:
        return f"{self.uuid}:canvas-lms"

    def global_id(self, local_id: int | None = None) -> int:
        return global_id(self.shard, self.id if local_id is None else local_id)


def default_accounts() -> tuple[Account, ...]:
    """Two root accounts (so per-account serial processing can be seen side by side) and a sub-account."""
    return (
        Account(
            id=1,
            name="Example University",
            uuid="VicYj3cu5BIFpoZhDVU4DZumnlBrWi1grgJEzADs",
            token="1~sandboxTokenExampleUniversity0000000000000000000000000000",  # noqa: S106  # sandbox only
            admin=User(109, "SIS Importer", "mysisimporterlogin", None),
        ),
        Account(
            id=2,
            name="Example College",
            uuid="Q2xnZXh9aHrHrxJqC2f8w5pTAm0LbVwAsKGu4hZd",
            token="2~sandboxTokenExampleCollege00000000000000000000000000000000",  # noqa: S106  # sandbox only
            admin=User(211, "College SIS Robot", "college-sis", "robot-211"),
            time_zone="America/New_York",
        ),
        Account(
            id=3,
            name="Example University: School of Music",
            uuid="cRq8J5dZyA0V7SEk3NPsWbI6uQhYf2oLxTmGeiHv",
            root_account_id=1,
            parent_account_id=1,
            sis_account_id="MUSIC",
        ),
    )


@dataclass(frozen=True, slots=True)
class Directory:
    """Account lookups by id and by token; `self` resolves to the token's root account."""

    by_id: Mapping[int, Account]
    by_token: Mapping[str, Account]

    @classmethod
    def of(cls, accounts: Iterable[Account]) -> Directory:
        listed = tuple(accounts)
        by_id = {a.id: a for a in listed}
        if len(by_id) != len(listed):
            raise ValueError("account ids must be unique")
        for account in listed:
            if account.root_account_id is not None and account.root_account_id not in by_id:
                raise ValueError(f"account {account.id}: unknown root account {account.root_account_id}")
            if account.token is not None and not account.is_root:
                raise ValueError(f"account {account.id}: only root accounts hold a token here")
        by_token = {a.token: a for a in listed if a.token is not None}
        return cls(by_id=by_id, by_token=by_token)

    @property
    def roots(self) -> tuple[Account, ...]:
        return tuple(a for a in self.by_id.values() if a.is_root)

    def resolve(self, raw: str, token_account: Account) -> Account | None:
        """`:account_id` of a URL: `self`, a local id, or a global id of this shard."""
        if raw == "self":
            return token_account
        if not raw.isdigit():
            return None
        number = int(raw)
        if number >= SHARD_FACTOR:
            shard, local = divmod(number, SHARD_FACTOR)
            account = self.by_id.get(local)
            return account if account is not None and account.shard == shard else None
        return self.by_id.get(number)

    def can_manage(self, token_account: Account, account: Account) -> bool:
        """A root account's admin token reaches the root and its sub-accounts, nothing else."""
        return account.root_id == token_account.id
