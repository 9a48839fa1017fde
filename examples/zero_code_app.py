"""An application that knows nothing of otel_usage, tracked without changing a line of it.

Run it plainly, and it just works::

    python examples/zero_code_app.py

Run it under ``opentelemetry-instrument`` with the functions to record named in the environment, and
every user action (each ``checkout`` and ``list_orders`` call) becomes one usage log in ``usage.jsonl``::

    OTEL_USAGE_PROBES="zero_code_shop.orders:*[-gift_message],zero_code_shop.cart:Cart.*=INFO" \\
        opentelemetry-instrument python examples/zero_code_app.py

``checkout`` is recorded with ``place_order`` and ``charge`` nested under it (``card_number`` is redacted
by default, ``gift_message`` left out by the ``[-gift_message]`` filter); the cart's methods are INFO
probes, recorded only with ``OTEL_USAGE_LEVEL=INFO`` (or ``opentelemetry-instrument --usage_level INFO``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shop package sits beside this script

from zero_code_shop.orders import PaymentDeclined, checkout, list_orders


def main() -> int:
    print("alice pays", checkout("alice", {"apple": 4, "bread": 1}, "4111111111111111", gift_message="enjoy"))
    print("bob pays", checkout("bob", {"cheese": 1}, "5500000000000004"))
    try:
        checkout("carol", {"bread": 2}, "4000000000000000")
    except PaymentDeclined as exc:
        print("carol:", exc)
    print("alice's orders", list_orders("alice"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
