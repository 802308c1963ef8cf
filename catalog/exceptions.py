"""Domain exceptions. Views and the API map them to HTTP statuses (400/403/404/409/503)."""


class PortalError(Exception):
    """Base class: the message is safe to show to the user."""


class FeastConfigInvalid(PortalError):
    """A governed repo's feature_store.yaml is missing, unreadable or invalid."""


class RegistryUnavailable(PortalError):
    """The Feast registry cannot be reached right now (transient: retry later)."""


class RegistryCorrupt(PortalError):
    """The Feast registry was reached but its content cannot be parsed."""


class SyncInProgress(PortalError):
    """Another sync holds the lease for this repo."""


class UnknownProject(PortalError):
    """A project name that the governed registries do not hold."""
