"""The data model; every model is re-exported here."""

from server.core.models.api_key import ApiKey
from server.core.models.audit import AuditEntry
from server.core.models.base import Base, utcnow
from server.core.models.communication import Communication
from server.core.models.console_session import ConsoleSession
from server.core.models.contact import Contact
from server.core.models.credential import TeamCredential
from server.core.models.deal import Deal
from server.core.models.event import ActionExecution, Event, Run
from server.core.models.hook import HookSecret, WebhookDelivery
from server.core.models.lead import Lead, LeadStageChange
from server.core.models.outreach import Outreach, OutreachType
from server.core.models.schedule import ScheduleOccurrence
from server.core.models.team import FieldDomain, Team
from server.core.models.user import User
from server.core.models.workflow import Workflow, WorkflowVersion

__all__ = [
    "ActionExecution",
    "Event",
    "HookSecret",
    "WebhookDelivery",
    "Run",
    "Workflow",
    "WorkflowVersion",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Communication",
    "ConsoleSession",
    "Contact",
    "Deal",
    "FieldDomain",
    "Lead",
    "LeadStageChange",
    "Outreach",
    "OutreachType",
    "ScheduleOccurrence",
    "Team",
    "TeamCredential",
    "User",
    "utcnow",
]
