from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The top layer: project-wide commands (preflight, bootstrap) that use jobs and catalog."""

    name = "portal"
