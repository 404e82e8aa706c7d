"""Fixtures shared by every test: a real SQS endpoint (moto's HTTP server) on loopback, one per
session, and a fresh Live Events queue + DLQ per test (from the sandbox's reusable fixtures)."""

from consumer.sandbox.fixtures import local_sqs, queues

__all__ = ["local_sqs", "queues"]
