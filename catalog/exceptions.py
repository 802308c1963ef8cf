"""Domain exceptions. Views and the API map them to HTTP statuses (400/403/404/409/503)."""


class PortalError(Exception):
    """Base class: the message is safe to show to the user.

    `status_code` and `code` are what the API's error shape reports (catalog.api.exceptions);
    subclasses override them (404 not_found, 409 conflict, 403 forbidden, 503 unavailable).
    """

    status_code = 400
    code = "invalid"


class FeastConfigInvalid(PortalError):
    """A governed repo's feature_store.yaml is missing, unreadable or invalid."""


class RegistryUnavailable(PortalError):
    """The Feast registry cannot be reached right now (transient: retry later)."""

    status_code = 503
    code = "unavailable"


class RegistryCorrupt(PortalError):
    """The Feast registry was reached but its content cannot be parsed."""


class SyncInProgress(PortalError):
    """Another sync holds the lease for this repo."""

    status_code = 409
    code = "conflict"


class UnknownProject(PortalError):
    """A project name that the governed registries do not hold."""

    status_code = 404
    code = "not_found"


class NotPermitted(PortalError):
    """The actor's roles do not allow this action."""

    status_code = 403
    code = "forbidden"


class ObjectNotFound(PortalError):
    """A referenced object does not exist, is removed, or is not visible to the actor."""

    status_code = 404
    code = "not_found"


class DuplicateObject(PortalError):
    """An object with the same natural key already exists."""

    status_code = 409
    code = "conflict"


class InvalidInput(PortalError):
    """Input failed validation; `details` maps field names to messages."""

    def __init__(self, message: str, details: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class NothingToChange(InvalidInput):
    """A proposal that matches the registry: nothing would change, so no request is stored. Its own error code
    (`unchanged`) lets CI tell "nothing to plan" from a refused upload."""

    code = "unchanged"


class UploadRejected(InvalidInput):
    """An uploaded feature repo was refused (catalog.feast_gateway.sandbox): the archive, a member, the
    definitions, or a time/memory limit. The message says why, in words for the user (never a traceback)."""


class UploadSandboxUnavailable(UploadRejected):
    """This machine cannot isolate uploaded code (catalog.feast_gateway.isolation.isolation_check failed): uploads
    are refused until it can. Never replaced by a weaker sandbox."""

    status_code = 503
    code = "unavailable"


class ApplyNotAsPlanned(PortalError):
    """Feast would store something other than what was planned and approved: the apply is rolled back."""

    code = "apply_not_as_planned"


class SourceUnreadable(PortalError):
    """A data source's schema cannot be read from the portal (unreachable database, missing file...)."""
