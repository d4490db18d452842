"""Retention (PIPL art. 19, 47): closed and withdrawn cases past PRIVACY_RETENTION_DAYS lose their
personal details to a daily job (and `manage.py anonymise_expired`, with a dry run); the figures'
skeleton and the audit trail stay; files are deleted from the (real, local) storage."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse

from consult import figures
from consult.models import Case, CaseEvent, Document, Message, MessageKind, Status, User, Verb
from consult.selectors import case_actions
from consult.services.documents import documents_sweep_orphans
from jobs.schedule import PERIODIC
from medical.models import ConsultationNote, HomeVisit, MedicalIntake
from privacy.models import Consent
from privacy.tasks import anonymise_expired_cases
from tests.privacy.conftest import age

pytestmark = pytest.mark.django_db

DAYS = 1095


@pytest.fixture(autouse=True)
def retention(settings: Any) -> None:
    settings.PRIVACY_RETENTION_DAYS = DAYS


def run(*args: str) -> str:
    out = StringIO()
    call_command("anonymise_expired", *args, stdout=out)
    return out.getvalue()


def stored(root: Path) -> list[Path]:
    return [p for p in (root / "cases").rglob("*") if p.is_file()] if (root / "cases").exists() else []


def test_the_dry_run_names_the_cases_past_retention_and_changes_nothing(lived_case: Case, private_files: Path) -> None:
    old = age(lived_case, DAYS + 1)
    files_before = stored(private_files)
    assert len(files_before) == 2  # the exam report and the summary

    out = run("--dry-run")
    assert f"{old.reference}: would anonymise (2 chat line(s) emptied, 2 file(s) deleted)" in out
    assert "1 case(s)" in out and "dry run: nothing changed" in out
    assert Case.objects.get(pk=old.pk).anonymised_at is None
    assert MedicalIntake.objects.get(case=old).patient_name == "王老汉"
    assert stored(private_files) == files_before


def test_it_leaves_cases_inside_the_period_and_open_ones_alone(lived_case: Case, case: Case) -> None:
    age(lived_case, DAYS - 1)
    Case.objects.filter(pk=case.pk).update(submitted_at=lived_case.closed_at)  # old, but open
    assert "0 case(s)" in run()
    assert not Case.objects.filter(anonymised_at__isnull=False).exists()


def test_it_removes_the_personal_details_and_files_and_keeps_the_skeleton_and_trail(
    lived_case: Case, private_files: Path, alice: User
) -> None:
    old = age(lived_case, DAYS + 1)
    trail = list(CaseEvent.objects.filter(case=old).values_list("verb", "actor_id", "created_at"))
    chat = list(Message.objects.filter(case=old).values_list("seq", "sender_id", "created_at"))
    documents = list(Document.objects.filter(case=old).values_list("pk", "kind", "size", "uploader_id"))
    before = figures.compute(rescan=True)

    out = run()
    assert f"{old.reference}: anonymised" in out

    case = Case.objects.get(pk=old.pk)
    assert case.anonymised_at is not None and case.description == ""
    intake = MedicalIntake.objects.get(case=case)
    assert [intake.patient_name, intake.relationship, intake.complaint, intake.conditions, intake.medicines,
            intake.allergies] == [""] * 6
    note = ConsultationNote.objects.get(case=case)
    assert (note.findings, note.impression, note.advice) == ("", "", "")
    visit = HomeVisit.objects.get(case=case)
    assert (visit.address, visit.preferred_dates) == ("", "")
    assert not Message.objects.filter(case=case, kind=MessageKind.TEXT).exclude(body="").exists()
    assert stored(private_files) == []
    # Nothing of what was told is left anywhere on the case's rows, the timeline included.
    for text in ("王老汉", "咳", "胸片", "某村", "氨氯地平"):
        assert not CaseEvent.objects.filter(case=case, detail__icontains=text).exists(), text
        assert not Message.objects.filter(case=case, body__contains=text).exists(), text
        assert not Document.objects.filter(case=case, original_name__contains=text).exists(), text

    # The skeleton: every timeline line (who, what, when) and one more saying so, every chat line's
    # number, sender and time, every document's kind and size, the consent; the figures unchanged.
    after_trail = list(CaseEvent.objects.filter(case=case).values_list("verb", "actor_id", "created_at"))
    assert after_trail[:-1] == trail
    assert after_trail[-1][:2] == (Verb.ANONYMISED, None)
    assert list(Message.objects.filter(case=case).values_list("seq", "sender_id", "created_at")) == chat
    assert list(Document.objects.filter(case=case).values_list("pk", "kind", "size", "uploader_id")) == documents
    assert Consent.objects.get(case=case).given_by == alice
    assert case.status == Status.CLOSED and case.closed_at == old.closed_at
    assert figures.compute(rescan=True) == before

    # The hourly orphan sweep does not take the rows for lost files.
    assert documents_sweep_orphans(grace=timedelta(0)) == (0, 0)
    assert Document.objects.filter(case=case).count() == len(documents)


def test_it_is_idempotent(lived_case: Case) -> None:
    old = age(lived_case, DAYS + 1)
    run()
    stamped = Case.objects.get(pk=old.pk).anonymised_at
    assert "0 case(s)" in run()
    assert Case.objects.get(pk=old.pk).anonymised_at == stamped
    assert CaseEvent.objects.filter(case=old, verb=Verb.ANONYMISED).count() == 1


def test_a_withdrawn_case_counts_from_its_withdrawal(case: Case, alice: User) -> None:
    from consult import services

    withdrawn = services.case_withdraw(case=case, resident=alice)
    age(withdrawn, DAYS + 1)
    assert anonymise_expired_cases() == 1
    assert Case.objects.get(pk=case.pk).description == ""


def test_zero_keeps_everything(lived_case: Case, settings: Any) -> None:
    settings.PRIVACY_RETENTION_DAYS = 0
    age(lived_case, 10 * DAYS)
    assert "nothing to do" in run()
    assert anonymise_expired_cases() == 0
    assert Case.objects.get(pk=lived_case.pk).anonymised_at is None


def test_the_job_runs_daily_from_the_schedule() -> None:
    job = next(j for j in PERIODIC if j.task == "privacy.tasks.anonymise_expired")
    assert job.every.days == 1
    assert anonymise_expired_cases.name == job.task


def test_the_case_page_then_shows_nothing_personal_and_no_file(
    lived_case: Case, doctor: Any, alice: User, login: Any
) -> None:
    old = age(lived_case, DAYS + 1)
    run()
    document = Document.objects.filter(case=old).first()
    assert document is not None
    client = login(doctor.user, "en")
    page = client.get(reverse("case_detail", args=[old.reference])).content.decode()
    assert "The personal details of this case were removed on" in page
    # (Her name stays beside her own chat lines and timeline steps: who did what, kept with her account.)
    for text in ("王老汉", alice.phone, "咳", "胸片", "某村"):
        assert text not in page, text
    assert client.get(reverse("document_download", args=[old.reference, document.pk])).status_code == 404
    assert "summary" not in case_actions(case=Case.objects.get(pk=old.pk), user=doctor.user)
