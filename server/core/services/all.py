"""Import every record service, so each registers its record type with the engine."""

from server.core.services import communications, contacts, deals, leads, outreach

__all__ = ["communications", "contacts", "deals", "leads", "outreach"]
