"""Checkout and orders."""

from __future__ import annotations

from zero_code_shop.cart import Cart

ORDERS: dict[str, list[float]] = {}


class PaymentDeclined(Exception):
    """The card was refused."""


def checkout(user: str, items: dict[str, int], card_number: str, gift_message: str = "") -> float:
    """One user action: fill a cart, place the order."""
    cart = Cart(user)
    for item_id, qty in items.items():
        cart.add_item(item_id, qty)
    return place_order(cart, card_number, gift_message)


def place_order(cart: Cart, card_number: str, gift_message: str = "") -> float:
    amount = cart.total()
    charge(amount, card_number)
    ORDERS.setdefault(cart.user, []).append(amount)
    return amount


def charge(amount: float, card_number: str) -> str:
    if card_number.endswith("0000"):
        raise PaymentDeclined(f"card refused for {amount}")
    return f"ok-{amount}"


def list_orders(user: str) -> list[float]:
    return list(ORDERS.get(user, []))
