"""Reports over an Inventory."""

from inventory import Inventory


def low_stock(inventory: Inventory, threshold: int = 5) -> list[str]:
    return [name for name, item in inventory.items.items() if item.quantity < threshold]


def movements(inventory: Inventory, name: str) -> list[tuple[str, int]]:
    return [(kind, quantity) for kind, item_name, quantity in inventory.log if item_name == name]
