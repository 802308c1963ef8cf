"""One rule for the team that owns an object (catalog.services.teams), used by the sync, approval routing and
model registration alike."""

from __future__ import annotations

import pytest

from catalog.models import Team, TeamAlias
from catalog.services.teams import TeamDirectory, owning_team

pytestmark = pytest.mark.django_db


def test_the_team_tag_then_the_org_then_the_owner_ignoring_case() -> None:
    growth = Team.objects.create(name="Growth")
    ads = Team.objects.create(name="ads")
    TeamAlias.objects.create(alias="ads-oncall@example.com", team=ads)
    directory = TeamDirectory.load()
    assert directory.team_for(owner="ads-oncall@example.com", tags={"team": "growth"}, org="ads") == growth
    assert directory.team_for(owner="ads-oncall@example.com", org="GROWTH") == growth
    assert directory.team_for(owner="ADS-OnCall@example.com") == ads  # an alias
    assert directory.team_for(owner="Ads") == ads  # a team's own name
    assert directory.team_for(owner="ads-oncall@example.com", tags={"team": "no-such-team"}) == ads
    assert directory.team_for(owner="nobody@example.com", tags={"other": "ads"}) is None
    assert owning_team(owner="ads-oncall@example.com") == ads


def test_the_sync_creates_the_teams_tags_and_orgs_name_once() -> None:
    Team.objects.create(name="Growth")
    directory = TeamDirectory.load(ensure=["platform", "growth", " ", ""])
    assert sorted(Team.objects.values_list("name", flat=True)) == ["Growth", "platform"]
    platform = directory.team_for(org="platform")
    assert platform is not None and platform.name == "platform"
