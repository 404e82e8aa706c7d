"""The S3 drop folder: an SIS file uploaded to the bucket becomes one import, submitted here.

`IntakeHandler` takes the intake queue's S3 event notifications (through the same `Worker` as Live
Events). For each new object under a rule's prefix it reads the object, judges its bytes, and
submits it with the rule's options through `submit_content`: the submission is recorded before
the POST, and that record is the claim on the object version, so a notification delivered twice,
or to two replicas, submits once. A refused file is tagged where it lies, logged and counted.

`IntakeReporter` runs on the leader only (as the reconciler does for Canvas) and writes each
import's outcome and batch id back onto its object's tags once the import is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any, Protocol

import structlog

from consumer.ack import ACK, DeadLetter, Message, Outcome, Retry, retry_delay
from consumer.core.drop_folder import (
    IntakeResult,
    Refused,
    inspect,
    merged_tags,
    refusal_tags,
    report_for,
    too_large,
)
from consumer.core.drop_folder_rules import IntakeRule, match
from consumer.core.s3_events import NotificationError, ObjectCreated, S3TestEvent, decode_notification
from consumer.core.submission import ImportOptions, SourceObject
from consumer.daemon.loops import every
from consumer.errors import AlreadySubmitted, CanvasError, ObjectGone, ObjectStoreError, StoreUnavailable
from consumer.observability.metrics import Metrics
from consumer.ports import Canvas, Clock, ImportStore, IntakeStore, Leader, ObjectStorage, SubmissionStore
from consumer.submitting import resolve_account, submit_content

log = structlog.get_logger("sis_consumer.intake")


class Submitting(SubmissionStore, IntakeStore, Protocol):
    """The store roles the intake handler uses."""


class Reporting(ImportStore, IntakeStore, Protocol):
    """The store roles the reporter uses."""


async def write_back(objects: ObjectStorage, source: SourceObject, ours: Mapping[str, str]) -> None:
    """Put our tags on the object version, keeping its owner's."""
    await objects.put_tags(source, merged_tags(await objects.tags(source), ours))


class IntakeHandler:
    def __init__(
        self,
        rules: Sequence[IntakeRule],
        objects: ObjectStorage,
        canvas: Canvas,
        store: Submitting,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self._rules = rules
        self._objects = objects
        self._canvas = canvas
        self._store = store
        self._metrics = metrics
        self._clock = clock

    async def handle(self, message: Message) -> Outcome:
        notification = decode_notification(message.body)
        if isinstance(notification, NotificationError):
            self._metrics.intake.labels(IntakeResult.INVALID.value).inc()
            log.warning("intake.invalid", reason=notification.reason, message_id=message.message_id)
            return DeadLetter(notification.reason)
        if isinstance(notification, S3TestEvent):
            self._metrics.intake.labels(IntakeResult.IGNORED.value).inc()
            log.info("intake.test_event", bucket=notification.bucket, message_id=message.message_id)
            return ACK
        for name in notification.others:
            self._metrics.intake.labels(IntakeResult.IGNORED.value).inc()
            log.info("intake.ignored", s3_event=name, message_id=message.message_id)
        results = [await self._object(message, created) for created in notification.created]
        if IntakeResult.RETRIED in results:
            return Retry(retry_delay(message.receive_count))
        return ACK

    async def _object(self, message: Message, created: ObjectCreated) -> IntakeResult:
        context: dict[str, Any] = {
            "bucket": created.bucket,
            "key": created.key,
            "version_id": created.version_id,
            "message_id": message.message_id,
        }
        if created.key.endswith("/"):  # a "folder" made in the console: not a file
            return self._done(IntakeResult.IGNORED, "intake.ignored", context, reason="folder placeholder")
        rule = match(self._rules, created.key)
        if rule is None:
            return self._done(IntakeResult.UNMATCHED, "intake.unmatched", context)
        try:
            fetched = await self._objects.fetch(
                created.bucket, created.key, created.version_id, rule.max_bytes
            )
        except ObjectGone as exc:
            return self._done(IntakeResult.GONE, "intake.gone", context, error=str(exc))
        except ObjectStoreError as exc:
            return self._done(IntakeResult.RETRIED, "intake.s3_failed", context, error=str(exc))
        source = SourceObject(
            bucket=created.bucket,
            key=created.key,
            etag=fetched.etag or created.etag or "",
            version_id=fetched.version_id,
            sequencer=created.sequencer,
        )
        context |= {"version_id": source.version_id, "size": fetched.size, "prefix": rule.prefix}
        if fetched.content is None:
            refused = too_large(fetched.size, rule.max_bytes)
            assert refused is not None
            return await self._refuse(source, refused, context)
        verdict = await asyncio.to_thread(inspect, fetched.content)  # unzips: off the loop
        if isinstance(verdict, Refused):
            return await self._refuse(source, verdict, context)
        return await self._submit(
            fetched.content, rule, replace(rule.options, extension=verdict.extension), source, context
        )

    async def _submit(
        self,
        content: bytes,
        rule: IntakeRule,
        options: ImportOptions,
        source: SourceObject,
        context: dict[str, Any],
    ) -> IntakeResult:
        try:
            # Learned (and cached) before anything is recorded: a bad token is retried, not lost.
            await resolve_account(self._canvas, self._store, rule.account)
            submitted = await submit_content(
                content,
                PurePosixPath(source.key).name,
                options,
                canvas=self._canvas,
                store=self._store,
                clock=self._clock,
                account_ref=rule.account,
                source=source,
            )
        except AlreadySubmitted as exc:
            return self._done(
                IntakeResult.DUPLICATE, "intake.duplicate", context, submission_id=exc.submission_id
            )
        except StoreUnavailable as exc:
            return self._done(IntakeResult.RETRIED, "intake.store_unavailable", context, error=str(exc))
        except CanvasError as exc:
            return await self._canvas_failed(exc, source, context)
        return self._done(
            IntakeResult.SUBMITTED,
            "intake.submitted",
            context,
            sis_batch_id=submitted.sis_batch_id,
            account=submitted.account,
            submission_id=submitted.submission_id,
        )

    async def _canvas_failed(
        self, exc: CanvasError, source: SourceObject, context: dict[str, Any]
    ) -> IntakeResult:
        if exc.nothing_sent:  # throttled, or never connected: Canvas made no import of it
            try:
                await self._store.release_object(source)
            except StoreUnavailable as store_error:
                log.error("intake.release_failed", error=str(store_error), **context)
            return self._done(IntakeResult.RETRIED, "intake.canvas_unavailable", context, error=str(exc))
        if exc.retryable:  # a timeout or a 5xx: an import may exist; sending it again could make two
            return self._done(IntakeResult.POST_FAILED, "intake.post_failed", context, error=str(exc))
        return self._done(
            IntakeResult.REJECTED, "intake.rejected", context, error=str(exc), status=exc.status
        )

    async def _refuse(self, source: SourceObject, refused: Refused, context: dict[str, Any]) -> IntakeResult:
        try:
            await write_back(self._objects, source, refusal_tags(refused))
        except ObjectStoreError as exc:  # the log line and the counter still say it
            log.warning("intake.tag_failed", error=str(exc), **context)
        return self._done(
            refused.reason.result,
            "intake.refused",
            context,
            reason=refused.reason.value,
            detail=refused.detail,
        )

    def _done(self, result: IntakeResult, event: str, context: dict[str, Any], **more: Any) -> IntakeResult:
        self._metrics.intake.labels(result.value).inc()
        level = {
            IntakeResult.SUBMITTED: "info",
            IntakeResult.DUPLICATE: "info",
            IntakeResult.IGNORED: "info",
            IntakeResult.UNMATCHED: "info",
            IntakeResult.GONE: "info",
            IntakeResult.POST_FAILED: "error",
        }.get(result, "warning")
        getattr(log, level)(event, result=result.value, **context, **more)
        return result


class IntakeReporter:
    """Writes each drop-folder import's outcome onto its object; on the leader only."""

    def __init__(
        self,
        store: Reporting,
        objects: ObjectStorage,
        clock: Clock,
        leader: Leader,
        interval: float,
    ) -> None:
        self._store = store
        self._objects = objects
        self._clock = clock
        self._leader = leader
        self._interval = interval

    async def run(self, stop: asyncio.Event) -> None:
        await every(self._interval, self.tick, stop, failed="intake.report_tick_failed")

    async def tick(self) -> None:
        if not self._leader.leading:
            return
        for submission in await self._store.unreported(limit=100):
            record = None
            if submission.account is not None and submission.sis_batch_id is not None:
                record = await self._store.record(submission.account, submission.sis_batch_id)
            report = report_for(submission, record, self._clock.now())
            source = submission.source
            if report is None or source is None or submission.id is None:
                continue
            if not self._leader.leading:
                return
            context = {"bucket": source.bucket, "key": source.key, "version_id": source.version_id}
            try:
                await write_back(self._objects, source, report.tags)
            except ObjectGone:
                log.info("intake.report_gone", status=report.status, **context)
            except ObjectStoreError as exc:
                log.warning("intake.report_failed", error=str(exc), **context)
                continue
            await self._store.mark_reported(submission.id, report.status)
            log.info(
                "intake.reported",
                status=report.status,
                sis_batch_id=submission.sis_batch_id,
                account=submission.account,
                **context,
            )
