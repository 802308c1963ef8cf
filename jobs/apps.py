from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Catalog services cannot import jobs (portal -> jobs -> catalog): they announce approvals with a
        # signal and jobs starts the apply for projects with auto-apply.
        from catalog.services.change_requests import change_request_approved
        from jobs.services.apply import change_request_auto_apply

        change_request_approved.connect(change_request_auto_apply, dispatch_uid="jobs.auto_apply")
