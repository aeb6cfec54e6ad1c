"""The example shop: consumers for orders and refunds."""
