"""The erp_export action plugin."""
