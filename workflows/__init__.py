"""Shipped workflow definitions (JSON), loaded as a starter set."""
