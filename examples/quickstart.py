"""Quickstart: probes, info and data become one usage log per unit of work, printed to the console.

pip install -e . && python examples/quickstart.py
"""

from __future__ import annotations

import otel_usage
from otel_usage import INFO, add_data, add_info, get_tracker, traced_usage, usage_context
from otel_usage.exporters.console import ConsoleUsageExporter

tr = get_tracker("shop")


class Cart:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: dict[int, int] = {}

    def __usage__(self) -> dict[str, object]:
        """How a cart appears in usage logs (python_tracker's ``__track__`` works too)."""
        return {"owner": self.owner, "items": len(self.items)}

    @traced_usage(level=INFO)
    def add_item(self, item_id: int, qty: int = 1) -> int:
        self.items[item_id] = self.items.get(item_id, 0) + qty
        return self.items[item_id]


@tr.probe(level=otel_usage.DEBUG)
def price_of(item_id: int) -> float:
    """Below the default threshold: not recorded, nor anything it calls."""
    return 9.99 + item_id


@tr.probe(level=otel_usage.DEFAULT, exc=["card_number"])
def checkout(cart: Cart, card_number: str, coupon: str | None = None) -> float:
    total = sum(price_of(item) * qty for item, qty in cart.items.items())
    if coupon:
        add_data("discount", 0.1)
        total *= 0.9
    add_info("order_total", round(total, 2))
    return total


@tr.probe(level=otel_usage.DEFAULT)
def session(user: str, password: str) -> None:
    """One unit of work: everything below lands in a single usage log."""
    add_info("user", user)
    cart = Cart(user)
    cart.add_item(1)
    cart.add_item(7, qty=2)
    checkout(cart, card_number="4111 1111 1111 1111", coupon="WELCOME")


def main() -> None:
    otel_usage.configure(exporters=[ConsoleUsageExporter(indent=2)], level=INFO, service_name="quickstart")
    with usage_context(tenant="acme", app_version="1.4.2"):
        session("alice", password="s3cret")
        session("bob", password="hunter2")
    otel_usage.force_flush()
    print("stats:", otel_usage.stats())


if __name__ == "__main__":
    main()
