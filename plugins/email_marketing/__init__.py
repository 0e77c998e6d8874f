"""The email_marketing action plugin."""
