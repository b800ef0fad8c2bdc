"""A small stock-keeping module: the demo file for `sparkls complete`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0


@dataclass
class Inventory:
    items: dict[str, Item] = field(default_factory=dict)
    log: list[tuple[str, str, int]] = field(default_factory=list)

    def add(self, name: str, price: float, quantity: int = 1) -> Item:
        item = self.items.setdefault(name, Item(name, price))
        item.quantity += quantity
        self.log.append(("add", name, quantity))
        return item

    def remove(self, name: str, quantity: int = 1) -> Item:
        item = self.items[name]
        if quantity > item.quantity:
            raise ValueError(f"only {item.quantity} of {name} left")
        item.quantity -= quantity
        self.log.append(("remove", name, quantity))
        return item

    def restock(self, name: str, quantity: int) -> Item:
        item = self.items[name]
        item.quantity += quantity
        self.log.append(

    def value(self) -> float:
        return sum(item.price * item.quantity for item in self.items.values())
