"""The one error hierarchy of Dealflow; the HTTP layer maps it to problem details."""

from __future__ import annotations


class DealflowError(Exception):
    """Base of every error Dealflow raises on purpose."""

    status = 400
    title = "Bad request"

    def __init__(
        self, message: str, *, field: str | None = None, errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.errors = errors


class ConfigError(DealflowError):
    """Raised when the settings (environment or TOML file) cannot be used."""

    title = "Invalid configuration"


class InvalidInput(DealflowError):
    """Raised when a request is well-formed but one of its fields breaks a rule."""

    status = 422
    title = "Invalid field"


class NotFound(DealflowError):
    """Raised when a record does not exist in the caller's team (or at all: the two look alike)."""

    status = 404
    title = "Not found"

    def __init__(self, entity: str, record_id: object, *, field: str | None = None) -> None:
        where = f" (referenced by {field})" if field else ""
        super().__init__(f"{entity} {record_id} not found{where}", field=field)
        self.entity = entity
        self.record_id = record_id


class Conflict(DealflowError):
    """Raised when a change collides with existing data, such as a duplicate unique value."""

    status = 409
    title = "Conflict"


class Unauthorized(DealflowError):
    """Raised when a request carries no API key, or one that is unknown or revoked."""

    status = 401
    title = "Unauthorized"


class InvalidWorkflow(InvalidInput):
    """Raised when a workflow definition fails validation; ``errors`` holds every problem
    as ``{"field": JSON path, "message": reason}``."""

    title = "Invalid workflow"

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        errors = [{"field": path, "message": message} for path, message in problems]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10])
        if len(errors) > 10:
            detail += f"; and {len(errors) - 10} more"
        super().__init__(
            f"{len(errors)} problem(s) in the workflow: {detail}",
            field=errors[0]["field"] if errors else None,
            errors=errors,
        )


class GroupConflict(Conflict):
    """Raised when a workflow save would make an exclusive group overlap; ``report`` is the
    validator's report of the group as it would be."""

    title = "Exclusive group would overlap"

    def __init__(self, report: dict[str, object]) -> None:
        super().__init__(str(report["summary"]), field="$.condition")
        self.report = report


class Forbidden(DealflowError):
    """Raised when the caller's role may not do what it asked; ``role`` is the role it needs."""

    status = 403
    title = "Forbidden"

    def __init__(self, message: str, *, role: str) -> None:
        super().__init__(message)
        self.role = role
