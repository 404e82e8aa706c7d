"""The daemon's small error hierarchy: `retryable` decides between retrying and giving up."""

from __future__ import annotations


class ConsumerError(Exception):
    retryable: bool = False


class ConfigError(ConsumerError):
    """The configuration is invalid; the message lists every problem, one per line."""


class StoreUnavailable(ConsumerError):
    """The store cannot take writes now (locked, disk full, I/O error): try again later."""

    retryable = True


class QueueError(ConsumerError):
    """An SQS call failed."""

    retryable = True
