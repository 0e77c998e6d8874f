"""Trigger sources: one module per kind of event that can start a workflow."""

from server.triggers.base import Trigger
from server.triggers.lead_acquired import TRIGGER as LEAD_ACQUIRED
from server.triggers.record_saved import TRIGGER as RECORD_SAVED
from server.triggers.schedule import TRIGGER as SCHEDULE
from server.triggers.score_threshold import TRIGGER as SCORE_THRESHOLD
from server.triggers.stage_changed import TRIGGER as STAGE_CHANGED
from server.triggers.webhook import TRIGGER as WEBHOOK

TRIGGERS: dict[str, Trigger] = {
    t.name: t
    for t in (RECORD_SAVED, STAGE_CHANGED, SCORE_THRESHOLD, LEAD_ACQUIRED, WEBHOOK, SCHEDULE)
}

__all__ = ["TRIGGERS", "Trigger"]
