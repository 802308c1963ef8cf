"""A dataset page while its job waits or runs says so: never "Rows 0" for rows not built yet."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from jobs.models import JobRun, TrainingDataset
from jobs.services.training import training_dataset_start
from tests.training.conftest import DATA_END, PROJECT


def test_a_queued_or_building_dataset_says_so_instead_of_zero_rows(client: Client, proposer: User, synced: Any) -> None:
    run = training_dataset_start(
        actor=proposer,
        project=PROJECT,
        feature_service="attrition_model_v1",
        entity_timestamps=[DATA_END.isoformat()],
    )
    dataset = TrainingDataset.objects.get(job_run=run)
    assert run.status == JobRun.Status.QUEUED and dataset.row_count == 0
    client.force_login(proposer)

    def rows(url: str) -> str:
        return client.get(url).content.decode().split('id="dataset-rows">')[1].split("</dd>")[0]

    page = client.get(f"/jobs/datasets/{dataset.pk}/").content.decode()
    assert 'id="dataset-status">Queued</span>' in page and "<h2>Queued</h2>" in page
    assert rows(f"/jobs/datasets/{dataset.pk}/") == '<span class="muted">— queued</span>'
    JobRun.objects.filter(pk=run.pk).update(status=JobRun.Status.RUNNING)
    assert rows(f"/jobs/datasets/{dataset.pk}/") == '<span class="muted">— building</span>'
    listed = client.get("/jobs/datasets/").content.decode().split(f'data-dataset="{dataset.pk}"')[1].split("</tr>")[0]
    assert "<td>0</td>" not in listed and '<span class="muted">—</span>' in listed
