"""Trigger sources: one module per kind of event that can start a workflow."""
