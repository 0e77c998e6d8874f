"""The notify_slack action plugin."""
