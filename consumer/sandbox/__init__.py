"""The embedded default: a local SQS endpoint and a simulated Canvas, for `sis-consumer demo` and tests."""
