"""A shopping cart."""

from __future__ import annotations

PRICES = {"apple": 0.5, "bread": 2.25, "cheese": 6.0}


class Cart:
    """The items one user is buying."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.items: dict[str, int] = {}

    def add_item(self, item_id: str, qty: int = 1) -> int:
        self.items[item_id] = self.items.get(item_id, 0) + qty
        return self.items[item_id]

    def remove_item(self, item_id: str) -> None:
        self.items.pop(item_id, None)

    def total(self) -> float:
        return round(sum(self._price(item) * qty for item, qty in self.items.items()), 2)

    def _price(self, item_id: str) -> float:
        return PRICES[item_id]
