"""Per-instrument state: the order book, bars and the managers that wrap them."""
