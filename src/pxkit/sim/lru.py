"""A least-recently-used cache bounded by the total weight of what it holds (e.g. ticks), not by its entry count."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class WeightedLru(Generic[K, V]):
    """Memoises `build(key)`; evicts the least recently used values once their weights sum past `max_weight`.

    The newest value always stays, even when it alone weighs more than the budget.
    """

    def __init__(self, build: Callable[[K], V], weight: Callable[[V], int], max_weight: int) -> None:
        self._build = build
        self._weight = weight
        self.max_weight = max_weight
        self._values: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.total_weight = 0

    def __call__(self, key: K) -> V:
        entry = self._values.get(key)
        if entry is not None:
            self._values.move_to_end(key)
            return entry[0]
        value = self._build(key)
        weight = max(int(self._weight(value)), 1)
        self._values[key] = (value, weight)
        self.total_weight += weight
        while self.total_weight > self.max_weight and len(self._values) > 1:
            _, (_, dropped) = self._values.popitem(last=False)
            self.total_weight -= dropped
        return value

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> list[V]:
        """What is cached, least recently used first."""
        return [value for value, _ in self._values.values()]
