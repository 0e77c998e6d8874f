"""The ``assign_owner`` action: give a lead to the next user of a side, round robin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pluggy

from server.core.action import Action, ActionContext

hookimpl = pluggy.HookimplMarker("dealflow")

CONFIG_SCHEMA = {
    "type": "object",
    "description": "Set a lead's owner to the next user of `side` (the team's "
    "settings.sales_users or settings.marketing_users): the one holding the fewest leads in "
    "that side's stages, ties in list order.",
    "properties": {"side": {"enum": ["sales", "marketing"]}},
    "required": ["side"],
    "additionalProperties": False,
}


def changes(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    # The lead service picks the user inside the save's transaction (it reads the team's
    # leads); the action only says which side.
    return {"assign_owner": config["side"]}


def preview(config: Mapping[str, Any], context: ActionContext) -> dict[str, Any]:
    return {"changes": changes(config, context)}


ASSIGN_OWNER = Action(
    name="assign_owner",
    kind="record",
    config_schema=CONFIG_SCHEMA,
    execute=changes,
    preview=preview,
    description="Give a lead to the next sales (or marketing) user, round robin by current load.",
)


@hookimpl
def dealflow_register_actions() -> list[Action]:
    return [ASSIGN_OWNER]
