"""The notify_telegram action plugin."""
