"""Rule errors raised by aggregates. Each carries one of seed 000's error codes."""

from __future__ import annotations


class DomainError(Exception):
    """A command broke a rule of an aggregate."""

    code = "CONFLICT"

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidTransitionError(DomainError):
    code = "INVALID_STATUS_TRANSITION"


class TaskAlreadyRunningError(DomainError):
    code = "TASK_ALREADY_RUNNING"


class DependencyNotMetError(DomainError):
    code = "TASK_DEPENDENCY_NOT_MET"


class DependencyCycleError(DomainError):
    code = "TASK_DEPENDENCY_CYCLE"


class ProjectArchivedError(DomainError):
    code = "PROJECT_ARCHIVED"


class DeletedError(DomainError):
    """The object was soft-deleted; readers see it as missing."""

    code = "RESOURCE_NOT_FOUND"


class AlreadyExistsError(DomainError):
    code = "RESOURCE_ALREADY_EXISTS"


class RuleViolationError(DomainError):
    """An input that types allowed but a rule refuses (surfaces as 422)."""

    code = "VALIDATION_ERROR"


class BudgetExceededError(DomainError):
    """A team's daily cost limit or a project's monthly budget is spent: no new execution starts
    in its scope until the limit is raised or a new period begins."""

    code = "BUDGET_EXCEEDED"
