"""``schedule``: time passes — an SLA is breached, a contact goes silent, a close date nears.

``trigger`` defines the workflow-facing trigger, ``kinds`` finds due occurrences with SQL,
``scanner`` fires each once (``scan``) and runs scans periodically (``Scheduler``).
"""

from server.triggers.schedule.scanner import BATCH, Scheduler, scan
from server.triggers.schedule.trigger import KINDS, TRIGGER, Schedule

__all__ = ["BATCH", "KINDS", "TRIGGER", "Schedule", "Scheduler", "scan"]
