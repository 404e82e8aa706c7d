"""The daemon's small error hierarchy: `retryable` decides between retrying and giving up."""

from __future__ import annotations

from consumer.redaction import redact_text


class ConsumerError(Exception):
    retryable: bool = False


class ConfigError(ConsumerError):
    """The configuration is invalid; the message lists every problem, one per line."""


class ListenError(ConsumerError):
    """The metrics endpoint cannot listen where SIS_CONSUMER_METRICS_ADDR says (the port is taken)."""


class StoreUnavailable(ConsumerError):
    """The store cannot take writes now (locked, disk full, I/O error): try again later."""

    retryable = True


class AlreadySubmitted(ConsumerError):
    """This drop-folder object version was submitted before (by us, or by another replica)."""

    def __init__(self, message: str, submission_id: int) -> None:
        super().__init__(message)
        self.submission_id = submission_id


class QueueError(ConsumerError):
    """An SQS call failed."""

    retryable = True


class ObjectStoreError(ConsumerError):
    """An S3 call failed (throttled, unreachable, access denied): try again later."""

    retryable = True


class ObjectGone(ObjectStoreError):
    """The object (or that version of it) is no longer in the bucket."""

    retryable = False


class CanvasError(ConsumerError):
    """A Canvas API call failed; the message is redacted, so it may be logged as is."""

    nothing_sent: bool = False
    """Canvas cannot have acted on the request (it never arrived, or was refused unread): a POST
    may be sent again without risking a second import."""

    def __init__(self, message: str, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(redact_text(message))
        self.status = status
        self.request_id = request_id
        """`X-Request-Context-Id` of the failed request: a 400 may still have created a batch."""


class CanvasBadRequest(CanvasError):
    """400: Canvas refused the request; the message says why."""


class CanvasUnauthorized(CanvasError):
    """401: the token is missing, wrong, or expired."""


class CanvasForbidden(CanvasError):
    """403 (not throttling): the token may not do this, or SIS imports are disabled."""


class CanvasNotFound(CanvasError):
    """404."""


class CanvasUnavailable(CanvasError):
    """5xx, a network failure, or still throttled after every retry: try later."""

    retryable = True


class CanvasUnreachable(CanvasUnavailable):
    """No connection could be made (refused, DNS): the request never left."""

    nothing_sent = True


class CanvasUnanswered(CanvasUnavailable):
    """A POST that created something got no usable answer: Canvas may or may not have done it."""


class CanvasThrottled(CanvasUnavailable):
    """403 "Rate Limit Exceeded" or 429: refused before anything ran, so always safe to retry."""

    nothing_sent = True
