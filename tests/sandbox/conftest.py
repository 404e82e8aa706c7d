"""The sandbox's fixtures; `local_sqs` and `queues` come from tests/conftest.py."""

from consumer.sandbox.fixtures import canvas, canvas_accounts, http, inbox, knobs, sqs_publisher

__all__ = ["canvas", "canvas_accounts", "http", "inbox", "knobs", "sqs_publisher"]
