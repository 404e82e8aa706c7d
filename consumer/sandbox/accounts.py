"""The accounts and users of the simulated Canvas: who a token is, and which ids Canvas shows for them.

Canvas has two id spaces (docs/canvas.md, "Ids"): local ids (what the REST API and event bodies
show) and global ids (shard x 10**13 + local id, what Live Event metadata shows). Every id here is
local; the `global_id` helpers make the other kind, so tests can check that the right one lands in
each place. Wherever Canvas takes an id in a URL or a parameter it also takes the object's SIS id
(`sis_account_id:MUSIC`, `sis_term_id:2026FA`) and a global id of the same shard: `find_by_ref`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

SHARD_FACTOR = 10**13
DEFAULT_SHARD = 2107  # the shard of Instructure's own examples: global id 21070000000000001


def global_id(shard: int, local_id: int) -> int:
    return shard * SHARD_FACTOR + local_id


@dataclass(frozen=True, slots=True)
class Term:
    """An enrollment term of a root account: what `batch_mode_term_id` names."""

    id: int
    name: str
    sis_term_id: str | None = None


def default_terms(first_id: int) -> tuple[Term, ...]:
    """Canvas gives every root account a "Default Term" without a SIS id; SIS imports add the rest."""
    return (
        Term(first_id, "Default Term"),
        Term(first_id + 1, "Fall 2026", "2026FA"),
        Term(first_id + 2, "Spring 2027", "2027SP"),
    )


T = TypeVar("T")


def find_by_ref(
    ref: str,
    shard: int,
    candidates: Iterable[T],
    local_id: Callable[[T], int],
    sis_id: Callable[[T], str | None],
    sis_key: str,
) -> T | None:
    """Canvas's `api_find`: a local id, a global id of this shard, or `<sis_key>:<SIS id>`."""
    prefix = f"{sis_key}:"
    if ref.startswith(prefix):
        wanted = ref.removeprefix(prefix)
        return next((c for c in candidates if sis_id(c) == wanted), None)
    if not ref.isdigit():
        return None
    number = int(ref)
    if number >= SHARD_FACTOR:
        ref_shard, number = divmod(number, SHARD_FACTOR)
        if ref_shard != shard:
            return None
    return next((c for c in candidates if local_id(c) == number), None)


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
    terms: tuple[Term, ...] = default_terms(1)
    """Enrollment terms of a root account: what `batch_mode_term_id` may name."""
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

    def term(self, ref: str) -> Term | None:
        """`batch_mode_term_id` (or a terms URL): a term id, a global id or `sis_term_id:...`."""
        return find_by_ref(
            ref, self.shard, self.terms, lambda t: t.id, lambda t: t.sis_term_id, "sis_term_id"
        )


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
            terms=default_terms(4),  # term ids are unique across root accounts, as in Canvas
        ),
        Account(
            id=3,
            name="Example University: School of Music",
            uuid="cRq8J5dZyA0V7SEk3NPsWbI6uQhYf2oLxTmGeiHv",
            root_account_id=1,
            parent_account_id=1,
            sis_account_id="MUSIC",
            terms=(),  # terms belong to root accounts
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
        """`:account_id` of a URL: `self`, a local id, a global id of this shard, `sis_account_id:...`."""
        if raw == "self":
            return token_account
        return find_by_ref(
            raw,
            token_account.shard,
            self.by_id.values(),
            lambda a: a.id,
            lambda a: a.sis_account_id,
            "sis_account_id",
        )

    def can_manage(self, token_account: Account, account: Account) -> bool:
        """A root account's admin token reaches the root and its sub-accounts, nothing else."""
        return account.root_id == token_account.id
