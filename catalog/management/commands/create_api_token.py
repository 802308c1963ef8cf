"""manage.py create_api_token --user U --scope read [--scope propose] [--expires-in-days 30] [--name N]."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.exceptions import PortalError
from catalog.models import ApiToken
from catalog.services.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The username the token acts as.")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            help="Scopes, repeatable or comma-separated: read, propose, approve, operate. Default: read.",
        )
        parser.add_argument("--expires-in-days", type=int, default=None, help="Expiry in days (default: never).")
        parser.add_argument("--name", default="", help="What the token is for (default: cli-<user>).")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = [s.strip() for raw in options["scopes"] or [] for s in raw.split(",") if s.strip()]
        unknown = sorted(set(scopes) - set(ApiToken.Scope.values))
        if unknown:
            raise CommandError(
                f"Unknown scope(s) {', '.join(unknown)}; choose from {', '.join(ApiToken.Scope.values)}."
            )
        user_model = get_user_model()
        try:
            user = user_model.objects.get(**{user_model.USERNAME_FIELD: options["user"]})
        except user_model.DoesNotExist:
            raise CommandError(f"No user {options['user']!r}.") from None
        try:
            # The command runs with the operator's authority: it acts for the user themselves.
            token, raw = api_token_create(
                actor=user,
                user=user,
                name=options["name"] or f"cli-{user.get_username()}",
                scopes=scopes or [ApiToken.Scope.READ],
                expires_in_days=options["expires_in_days"],
            )
        except PortalError as exc:
            details = getattr(exc, "details", {})
            raise CommandError(" ".join([str(exc), *(f"{k}: {' '.join(v)}" for k, v in details.items())])) from None
        expiry = token.expires_at.isoformat() if token.expires_at else "never"
        self.stderr.write(
            f"Token {token.name} for {user.get_username()} (scopes {', '.join(token.scopes)}, expires {expiry})."
        )
        self.stderr.write("Store it now: it is not shown again.")
        self.stdout.write(raw)
