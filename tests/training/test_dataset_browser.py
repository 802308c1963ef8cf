"""Browser journey: a proposer builds a training dataset from the service page and reads its page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catalog import feast_gateway
from jobs.models import TrainingDataset
from tests.browser_fixtures import login, shot
from tests.training.conftest import PROJECT

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_proposer_builds_a_dataset_and_sees_its_schema_and_contract(
    page: Any, live_server: Any, proposer: Any, synced: feast_gateway.RepoRef, celery_worker: Any, tmp_path: Path
) -> None:
    entities = tmp_path / "entities.csv"
    entities.write_text(
        "employee_id,event_timestamp,left\n"
        + "".join(f"{100 + i},2026-11-{10 + i % 9:02d}T08:00:00Z,{i % 2}\n" for i in range(30))
    )
    login(page, live_server.url, proposer.username)
    page.goto(f"{live_server.url}/projects/{PROJECT}/feature-services/attrition_model_v1/")
    page.wait_for_selector("#contract")
    contract_hash = page.inner_text("#contract-hash").strip()
    shot(page, "service-contract")
    page.click("#service-datasets >> text=Build a training dataset")
    page.wait_for_url(f"{live_server.url}/jobs/datasets/new/**")
    assert page.input_value("#dataset-target") == f"service:{PROJECT}/attrition_model_v1"
    page.set_input_files("#dataset-file", str(entities))
    page.fill("input[name=name]", "browser-built")
    page.click("#dataset-submit")
    page.wait_for_url(f"{live_server.url}/jobs/datasets/*/")
    # htmx polls the progress until the job is done, then the page reloads with the schema
    page.wait_for_selector("#dataset-schema", timeout=90_000)
    assert page.inner_text("#dataset-contract-hash").strip() == contract_hash
    assert page.inner_text("#dataset-rows").strip() == "30"
    assert "employee_features__tenure" in page.inner_text("#dataset-schema")
    assert page.locator("#dataset-preview tbody tr").count() == 20
    path = shot(page, "training-dataset")
    dataset = TrainingDataset.objects.get(name="browser-built")
    assert dataset.status == "ready" and dataset.created_by == proposer
    href = page.get_attribute('#dataset-downloads a[data-download="csv"]', "href")
    download = page.request.get(f"{live_server.url}{href}")  # the browser's session, without a navigation
    assert download.ok and download.headers["content-disposition"] == 'attachment; filename="browser-built.csv"'
    assert (
        download.text().splitlines()[0].startswith('"employee_id","event_timestamp","left","employee_features__tenure"')
    )
    assert path.exists()
