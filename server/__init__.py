"""Dealflow: a plugin-based workflow automation server for sales and marketing teams."""

__version__ = "0.1.0"
