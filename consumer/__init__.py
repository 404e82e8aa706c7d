"""sis-consumer: watch Canvas LMS SIS imports through Canvas Live Events on SQS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sis-consumer")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
