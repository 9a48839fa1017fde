"""Helpers for testing code that records usage: capture the usage logs it produces.

    import otel_usage
    from otel_usage.testing import capture_usage

    @otel_usage.traced_usage
    def checkout(cart):
        return len(cart)

    with capture_usage() as usage:
        checkout(["book"])
    assert len(usage) == 1
    assert usage[0]["data"][0]["function"].endswith("checkout")

While the block runs, every usage log the process records goes to the capture and nowhere else:

- with a pipeline installed (``configure()``, ``opentelemetry-instrument``), the logs its span processor
  assembles are diverted from its exporters to the capture (its usage processors still run), so an app
  instrumented before the capture started, against the global providers, is captured as it is;
- without one, a private pipeline records the probes, and spans made through the global tracer provider
  (instrumentations such as Flask's) reach it too: a global SDK provider gets a relay span processor
  (one, idle outside captures), and when there is no global SDK provider yet one is installed for that.

The capture is a read-only sequence of the finished logs, oldest first: ``len(usage)``, ``usage[0]``,
``for log in usage``, ``usage.logs`` (a list). Every read flushes first, so it sees every log whose unit
of work has ended. ``tracer_provider`` is the provider to hand to an instrumentation explicitly
(``UsageTracking(app, tracer_provider=usage.tracer_provider)``). The pytest fixture ``usage_capture``
(registered by the package's pytest plugin entry point) yields the same object.
"""

from otel_usage._testing import CapturedUsage, capture_usage, usage_capture

__all__ = ["CapturedUsage", "capture_usage", "usage_capture"]
