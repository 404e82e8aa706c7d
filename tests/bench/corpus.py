"""The messages of a busy Canvas instance's Live Events queue, made deterministically (docs/canvas.md,
"Metadata").

About 95% are events the daemon drops (asset_accessed, logged_in, submission_created, grade_change,
discussion_entry_created...), with the metadata Canvas sends: user, context, request, session,
hostname, user agent, client IP, the full URL. About 5% are SIS batch events: whole import
lifecycles (initializing, created, importing, a finished state), some events delivered twice, in
roughly chronological order as a standard queue delivers them.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from consumer.sandbox.live_events import event_time as canvas_time
from tests.support.live_events import LEAKED_TOKEN, SHARD, sis_event

HOST: Final = "canvas.example.edu"
SIS_SHARE: Final = 0.05
DUPLICATE_SHARE: Final = 0.2
"""Share of SIS events delivered a second time."""
EVENTS_PER_IMPORT: Final = 4 * (1 + DUPLICATE_SHARE)
ACCOUNTS: Final = (
    ("8f1c2b9e-3d4a-4f6b-9a7c-1e2d3c4b5a60", 1),
    ("0a9b8c7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d", 2),
)
"""(root account UUID, local id): two institutions on the instance."""
FINAL_STATES: Final = (
    ("imported", 0.78),
    ("imported_with_messages", 0.14),
    ("failed_with_messages", 0.05),
    ("failed", 0.03),
)
USER_AGENTS: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "candroid/7.9.0 (Android 14; Pixel 8)",
    "iCanvas/7.12.0 (iPhone; iOS 18.1.1; Scale/3.00)",
)
OTHER_EVENTS: Final = (
    ("asset_accessed", 44),
    ("logged_in", 8),
    ("logged_out", 2),
    ("submission_created", 6),
    ("submission_updated", 6),
    ("grade_change", 6),
    ("discussion_entry_created", 4),
    ("discussion_topic_created", 1),
    ("wiki_page_updated", 2),
    ("enrollment_created", 2),
    ("enrollment_updated", 3),
    ("attachment_created", 3),
    ("assignment_updated", 3),
    ("conversation_message_created", 2),
    ("quiz_submitted", 2),
    ("user_account_association_created", 1),
    ("course_progress", 3),
)
_NAMES = tuple(name for name, _ in OTHER_EVENTS)
_WEIGHTS = tuple(weight for _, weight in OTHER_EVENTS)


@dataclass(frozen=True, slots=True)
class Corpus:
    bodies: list[str]
    finals: dict[tuple[str, int], str]
    """(root account UUID, sis_batch_id) -> the state the import ends in."""
    sis_messages: int

    @property
    def imports(self) -> int:
        return len(self.finals)

    @property
    def mean_size(self) -> float:
        return sum(len(b) for b in self.bodies) / max(1, len(self.bodies))


@dataclass
class _Timeline:
    items: list[tuple[float, str]] = field(default_factory=list)

    def add(self, at: float, body: str) -> None:
        self.items.append((at, body))

    def bodies(self) -> list[str]:
        return [body for _, body in sorted(self.items, key=lambda item: item[0])]


def build(n: int, *, seed: int = 2026, first_batch_id: int = 40_000, start: datetime | None = None) -> Corpus:
    """`n` message bodies; the SIS events among them make `round(n * 5% / 4.8)` whole imports."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    imports = max(1, round(n * SIS_SHARE / EVENTS_PER_IMPORT)) if n >= 20 else 0
    timeline = _Timeline()
    finals = _lifecycles(rng, timeline, imports, first_batch_id, start)
    sis_messages = len(timeline.items)
    for k in range(max(0, n - sis_messages)):
        timeline.add(rng.random(), other_event(rng, k, start))
    bodies = timeline.bodies()
    if len(bodies) != n:
        raise ValueError(f"{n} messages are too few for whole import lifecycles")
    return Corpus(bodies=bodies, finals=finals, sis_messages=sis_messages)


def sis_only(n: int, *, seed: int = 2026, first_batch_id: int = 40_000) -> list[str]:
    """`n` SIS batch event bodies (whole lifecycles, with duplicates, the last one maybe cut short)."""
    rng = random.Random(seed)
    timeline = _Timeline()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    _lifecycles(rng, timeline, n // 4 + 1, first_batch_id, start)
    return timeline.bodies()[:n]


def _lifecycles(
    rng: random.Random, timeline: _Timeline, imports: int, first_batch_id: int, start: datetime
) -> dict[tuple[str, int], str]:
    """Add `imports` whole lifecycles to the timeline (positions 0..1); returns their final states."""
    finals: dict[tuple[str, int], str] = {}
    for i in range(imports):
        uuid_, account_id = ACCOUNTS[i % len(ACCOUNTS)]
        batch = first_batch_id + i
        final = _pick(rng, FINAL_STATES)
        finals[(uuid_, batch)] = final
        at = start + timedelta(minutes=rng.uniform(0, 300))
        gaps = [0.0, rng.uniform(1, 5), rng.uniform(5, 600), rng.uniform(60, 3600)]
        position = rng.uniform(0, 0.85)
        token = LEAKED_TOKEN if rng.random() < 0.1 else None
        request_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for state, gap in zip(("initializing", "created", "importing", final), gaps, strict=True):
            at += timedelta(seconds=gap)
            body = sis_event(
                account_uuid=uuid_,
                account_id=account_id,
                sis_batch_id=batch,
                state=state,
                at=at,
                request_id=request_id,
                url_token=token,
            )
            position += rng.uniform(0.0, 0.05)
            timeline.add(position, body)
            if rng.random() < DUPLICATE_SHARE:
                timeline.add(position + rng.uniform(0.0, 0.02), body)
    return finals


def other_stream(seed: int, start: datetime | None = None) -> Iterator[str]:
    """An endless stream of dropped Live Events, for steady background load."""
    rng = random.Random(seed)
    start = start or datetime.now(UTC) - timedelta(hours=1)
    k = 0
    while True:
        yield other_event(rng, k, start)
        k += 1


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def other_event(rng: random.Random, k: int, start: datetime) -> str:
    """One Live Event the daemon drops, about 1-2 KB like Canvas's."""
    name = rng.choices(_NAMES, _WEIGHTS)[0]
    uuid_, account_id = ACCOUNTS[k % len(ACCOUNTS)]
    user = 10_000 + rng.randrange(40_000)
    course = 2_000 + rng.randrange(3_000)
    at = start + timedelta(seconds=k * 0.05 + rng.uniform(0, 2))
    path, body = _payload(rng, name, user, course, at)
    metadata: dict[str, Any] = {
        "root_account_uuid": uuid_,
        "root_account_id": str(SHARD + account_id),
        "root_account_lti_guid": f"{uuid_}:canvas-lms",
        "user_login": f"u{user}@students.example.edu",
        "user_account_id": str(SHARD + account_id),
        "user_sis_id": f"S{user:07d}",
        "user_id": str(SHARD + user),
        "time_zone": "America/Chicago",
        "context_type": "Course",
        "context_id": str(SHARD + course),
        "context_sis_source_id": f"2026FA-{course}-001",
        "context_account_id": str(SHARD + 100 + course % 40),
        "context_role": "StudentEnrollment",
        "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "session_id": f"{rng.getrandbits(128):032x}",
        "hostname": HOST,
        "http_method": "POST" if name.endswith(("created", "submitted", "updated")) else "GET",
        "user_agent": rng.choice(USER_AGENTS),
        "client_ip": f"198.51.100.{rng.randrange(1, 255)}",
        "url": f"https://{HOST}{path}",
        "referrer": f"https://{HOST}/courses/{course}",
        "producer": "canvas",
        "event_name": name,
        "event_time": canvas_time(at),
    }
    return json.dumps({"metadata": metadata, "body": body}, separators=(",", ":"))


def _payload(
    rng: random.Random, name: str, user: int, course: int, at: datetime
) -> tuple[str, dict[str, Any]]:
    when = canvas_time(at)
    item = rng.randrange(1, 900_000)
    if name == "asset_accessed":
        kind = rng.choice(
            ["course", "wiki_page", "assignment", "attachment", "quizzes:quiz", "discussion_topic"]
        )
        return f"/courses/{course}/pages/week-{item % 15}-reading?module_item_id={item}", {
            "asset_name": f"Week {item % 15} reading: primary sources and commentary",
            "asset_type": kind,
            "asset_id": str(SHARD + item),
            "asset_subtype": None if kind != "course" else rng.choice(["modules", "assignments", "grades"]),
            "category": kind.split(":")[-1] + "s",
            "role": "StudentEnrollment",
            "level": rng.choice(["view", "participate"]),
            "filename": None,
            "display_name": None,
            "domain": HOST,
            "enrollment_id": str(SHARD + item + 7),
            "section_id": str(SHARD + course * 3),
        }
    if name in {"logged_in", "logged_out"}:
        return "/login/saml", {"redirect_url": f"https://{HOST}/?login_success=1"}
    if name in {"submission_created", "submission_updated", "quiz_submitted"}:
        return f"/courses/{course}/assignments/{item}/submissions", {
            "submission_id": str(SHARD + item * 11),
            "assignment_id": str(SHARD + item),
            "user_id": str(SHARD + user),
            "submitted_at": when,
            "lti_user_id": f"{rng.getrandbits(160):040x}",
            "graded_at": None,
            "updated_at": when,
            "score": None,
            "grade": None,
            "submission_type": rng.choice(["online_upload", "online_text_entry", "online_quiz"]),
            "body": "<p>My essay on the causes of the French Revolution begins with the fiscal crisis</p>",
            "url": None,
            "attempt": rng.randrange(1, 4),
            "lti_assignment_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "group_id": None,
            "late": rng.random() < 0.1,
            "missing": False,
            "workflow_state": "submitted",
        }
    if name == "grade_change":
        score = round(rng.uniform(40, 100), 1)
        return f"/courses/{course}/gradebook/update_submission", {
            "submission_id": str(SHARD + item * 11),
            "assignment_id": str(SHARD + item),
            "assignment_name": f"Problem set {item % 12}",
            "grade": str(score),
            "old_grade": None,
            "score": score,
            "old_score": None,
            "points_possible": 100.0,
            "old_points_possible": 100.0,
            "grader_id": str(SHARD + 501),
            "student_id": str(SHARD + user),
            "student_sis_id": f"S{user:07d}",
            "user_id": str(SHARD + user),
            "grading_complete": True,
            "muted": False,
            "course_id": str(SHARD + course),
        }
    if name in {"discussion_entry_created", "discussion_topic_created", "conversation_message_created"}:
        return f"/courses/{course}/discussion_topics/{item}/entries", {
            "user_id": str(SHARD + user),
            "created_at": when,
            "discussion_entry_id": str(SHARD + item * 3),
            "discussion_topic_id": str(SHARD + item),
            "parent_discussion_entry_id": None,
            "text": "<p>I think the reading's second argument ignores the role of the guilds.</p>",
        }
    if name in {"enrollment_created", "enrollment_updated", "user_account_association_created"}:
        return f"/api/v1/courses/{course}/enrollments", {
            "enrollment_id": str(SHARD + item),
            "course_id": str(SHARD + course),
            "user_id": str(SHARD + user),
            "user_name": f"Student {user}",
            "type": "StudentEnrollment",
            "created_at": when,
            "updated_at": when,
            "limit_privileges_to_course_section": False,
            "course_section_id": str(SHARD + course * 3),
            "associated_user_id": None,
            "workflow_state": "active",
        }
    if name == "course_progress":
        return f"/courses/{course}/modules/items/{item}", {
            "user": {"id": str(SHARD + user), "name": f"Student {user}", "email": None},
            "course": {"id": str(SHARD + course), "name": "HIST 210: Revolutions", "account_id": "1"},
            "progress": {
                "requirement_count": 24,
                "requirement_completed_count": rng.randrange(24),
                "next_requirement_url": f"https://{HOST}/courses/{course}/modules/items/{item + 1}",
                "completed_at": None,
            },
        }
    # wiki_page_updated, attachment_created, assignment_updated
    return f"/courses/{course}/pages/{item}", {
        "id": str(SHARD + item),
        "title": f"Unit {item % 9}: sources",
        "context_id": str(SHARD + course),
        "context_type": "Course",
        "updated_at": when,
        "workflow_state": "active",
        "body": "<h2>Readings</h2><ul><li>Chapter 4</li><li>Primary source packet</li></ul>",
    }
