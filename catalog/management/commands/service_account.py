"""manage.py service_account create|token|deactivate|list: users for CI, holding ordinary API tokens.

    service_account create ci-people --role operator --scope read,propose,operate [--team T] [--expires-in-days N]
    service_account token ci-people --scope read,propose [--name N] [--expires-in-days N]
    service_account deactivate ci-people
    service_account list

`create` and `token` print the new token once on stdout (only its hash is stored). The rules are
catalog.services.service_accounts; running the command is shell access to the deployment, so it acts as an
admin would (audited with actor "system").
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.exceptions import PortalError
from catalog.models import ApiToken
from catalog.permissions import SERVICE_ACCOUNT_GROUP
from catalog.services import service_accounts as accounts


def _scopes(raw: list[str] | None) -> list[str]:
    return [s.strip() for value in raw or [] for s in value.split(",") if s.strip()] or [ApiToken.Scope.READ]


class Command(BaseCommand):
    help = "Create, re-key, deactivate or list service accounts (users for CI with API tokens)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="A new service account and its first token.")
        create.add_argument("name")
        create.add_argument("--role", required=True, choices=accounts.ROLES)
        create.add_argument("--team", action="append", dest="teams", default=[], help="An owner team (repeatable).")
        token = sub.add_parser("token", help="Another token for a service account.")
        token.add_argument("name")
        token.add_argument("--name", dest="token_name", default="", help="What the token is for.")
        for p in (create, token):
            p.add_argument("--scope", action="append", dest="scopes", help="read, propose, operate (comma-separated).")
            p.add_argument("--expires-in-days", type=int, default=None)
        sub.add_parser("deactivate", help="Revoke every token and deactivate the account.").add_argument("name")
        sub.add_parser("list", help="Service accounts and their active tokens.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._run(options)
        except PortalError as exc:
            details = getattr(exc, "details", {})
            raise CommandError(" ".join([str(exc), *(f"{k}: {' '.join(v)}" for k, v in details.items())])) from None

    def _run(self, options: dict[str, Any]) -> None:
        action = options["action"]
        users = get_user_model().objects.filter(groups__name=SERVICE_ACCOUNT_GROUP)
        if action == "list":
            for account in users.order_by("username").prefetch_related("api_tokens"):
                active = [f"{t.prefix} ({','.join(t.scopes)})" for t in account.api_tokens.all() if t.is_active]
                state = "active" if account.is_active else "deactivated"
                self.stdout.write(f"{account.username}\t{state}\t{' '.join(active) or '-'}")
            return
        if action == "create":
            _, token, raw = accounts.service_account_create(
                actor=None,
                name=options["name"],
                role=options["role"],
                teams=options["teams"],
                scopes=_scopes(options["scopes"]),
                expires_in_days=options["expires_in_days"],
            )
        else:
            found = users.filter(username=options["name"]).first()
            if found is None:
                raise CommandError(f"No service account {options['name']!r}.")
            account = found
            if action == "deactivate":
                accounts.service_account_deactivate(actor=None, account=account)
                self.stderr.write(f"Service account {account.username} deactivated; its tokens are revoked.")
                return
            token, raw = accounts.service_account_token_create(
                actor=None,
                account=account,
                name=options["token_name"] or f"{account.username}-ci",
                scopes=_scopes(options["scopes"]),
                expires_in_days=options["expires_in_days"],
            )
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(f"Token {token.name} (scopes {', '.join(token.scopes)}, expires {expiry}).")
        self.stderr.write("Store it now: it is not shown again.")
        self.stdout.write(raw)
