"""Which team owns an object: the one rule, used by the catalog sync, approval routing and model registration.

In order, the first that names a team:
1. the object's team tag (`CATALOG_TEAM_TAG`, default `team`);
2. its Feast `org` (feature views, Feast >= 0.67);
3. its owner string, through an admin-edited alias (`TeamAlias`) or as a team's own name.
Names and aliases match ignoring case. The sync creates the teams that tags and orgs name (`ensure`); approval
routing and model registration only look teams up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from catalog.models import Team, TeamAlias


@dataclass
class TeamDirectory:
    """Every team and alias, loaded once (a sync resolves thousands of objects with it)."""

    by_name: dict[str, Team] = field(default_factory=dict)  # lower-cased team name -> team
    by_alias: dict[str, Team] = field(default_factory=dict)  # lower-cased alias -> team

    @classmethod
    def load(cls, *, ensure: Iterable[str] = ()) -> TeamDirectory:
        """The directory, after creating a team for each name in `ensure` that no team has (ignoring case)."""
        teams = list(Team.objects.all())
        known = {t.name.lower() for t in teams}
        missing = sorted({n.strip() for n in ensure if n and n.strip() and n.strip().lower() not in known})
        if missing:
            with transaction.atomic():
                Team.objects.bulk_create([Team(name=n) for n in missing], ignore_conflicts=True)
            teams = list(Team.objects.all())
        directory = cls(by_name={t.name.lower(): t for t in teams})
        for alias in TeamAlias.objects.select_related("team"):
            directory.by_alias[alias.alias.lower()] = alias.team
        return directory

    def team_for(self, *, owner: str = "", tags: Mapping[str, str] | None = None, org: str = "") -> Team | None:
        tag = (tags or {}).get(settings.CATALOG_TEAM_TAG, "")
        for name in (tag, org):
            if name and (team := self.by_name.get(name.strip().lower())) is not None:
                return team
        owner = owner.strip().lower()
        if owner:
            return self.by_alias.get(owner) or self.by_name.get(owner)
        return None


def owning_team(*, owner: str = "", tags: Mapping[str, str] | None = None, org: str = "") -> Team | None:
    """The team that owns one object (see the module's rule); loads the directory for a single lookup."""
    return TeamDirectory.load().team_for(owner=owner, tags=tags, org=org)
