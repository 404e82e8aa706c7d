"""`make bench`: throughput, CPU and memory of the daemon against a bare loop and peer consumers,
event-to-metric latency, a micro-benchmark of decode/apply, and a soak. See `__main__.py`.

Nothing here is a pytest test (no `test_` files): pytest collects none of it.
"""
