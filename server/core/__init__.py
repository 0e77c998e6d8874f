"""The core: data model, services and (later) the workflow engine."""
