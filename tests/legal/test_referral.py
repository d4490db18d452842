"""A consultation about an injury at work taken to the union's lawyers: the resident chooses what
goes across, the labour dispute opens with the consultation's words, each case links to the other,
and the lawyer reads only what was carried."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from consult import files, services
from consult.models import Case, CaseEvent, DocumentKind, Kind, Message, Professional, Role, Skill, User, Verb
from medical import services as medical_services
from tests.consult import files_corpus as corpus
from tests.legal.conftest import EMPLOYER, body, en, intake_post, messages_of, staged_tokens
from tests.medical.conftest import COMPLAINT


@pytest.fixture
def work_injury(skill_factory: Callable[..., Skill]) -> Skill:
    return skill_factory(
        kind=Kind.LEGAL, code="work-injury", name_zh="工伤赔偿", name_en="Work injury compensation",
        required_documents=["labour_contract"],
    )


@pytest.fixture
def injury_lawyer(professional_factory: Callable[..., Professional], work_injury: Skill) -> Professional:
    return professional_factory([work_injury], role=Role.LAWYER, name="钱律师")


@pytest.fixture
def consultation(respiratory: Skill, doctor: Professional, alice: User) -> Case:
    """Alice's accepted consultation with two documents: an X-ray report of the hand hurt at the
    loom, and a blood test that has nothing to do with work."""
    case, _problems = medical_services.medical_case_submit(
        resident=alice, skill=respiratory, complaint=COMPLAINT, since_when="两周", patient_age=58,
        patient_sex="female", health_consent=True,
    )
    assert case.assignee_id == doctor.pk
    case = services.case_accept(case=case, professional=doctor)
    for name, title, kind in (
        ("手部X光.pdf", "Hand X-ray", DocumentKind.IMAGING), ("血常规.pdf", "Blood", DocumentKind.EXAM_REPORT)
    ):
        services.document_add(
            case=case, uploader=alice, upload=io.BytesIO(corpus.pdf(title=title)), name=name, kind=kind
        )
    return case


def refer(client: Client, case: Case, *documents: int) -> Any:
    return client.post(reverse("medical:refer", args=[case.reference]), {"documents": [str(d) for d in documents]})


def test_it_opens_a_labour_dispute_from_the_consultation_with_only_the_chosen_documents(
    consultation: Case, alice: User, doctor: Professional, injury_lawyer: Professional, work_injury: Skill,
    login: Callable[..., Client], hangzhou: Any,
) -> None:
    client = login(alice, "en")
    xray = consultation.documents.get(original_name="手部X光.pdf")
    page = client.get(reverse("case_detail", args=[consultation.reference]))
    assert "Ask the union's lawyers for help" in body(page)

    sent = refer(client, consultation, xray.pk)
    assert sent.status_code == 302
    assert sent["Location"] == f"{reverse('case_new', args=['work-injury'])}?from={consultation.reference}"

    form = client.get(sent["Location"])
    assert form.status_code == 200
    shown = body(form)
    assert COMPLAINT in shown  # the consultation's words fill "what happened"
    assert "手部X光.pdf" in shown and "血常规.pdf" not in shown
    tokens = staged_tokens(form)
    assert len(tokens) == 1

    data = intake_post(
        work_injury, staged=tokens, files_payslip=None, files_sick_leave=None, sick_days=None,
        what_happened=COMPLAINT + " 在织布机上压伤了手。", materials_later="on",
    )
    opened = client.post(sent["Location"], data)
    assert opened.status_code == 302, body(opened)
    dispute = Case.objects.get(reference=opened["Location"].rstrip("/").rsplit("/", 1)[1])

    assert dispute.kind == Kind.LEGAL and dispute.skill == work_injury
    assert dispute.referred_from == consultation
    assert list(consultation.referrals.all()) == [dispute]
    carried = list(dispute.documents.all())
    assert [(d.original_name, d.kind) for d in carried] == [("手部X光.pdf", DocumentKind.IMAGING)]
    assert carried[0].storage_key != xray.storage_key  # a copy: the consultation keeps its own
    with files.open_stored(carried[0].storage_key) as copy, files.open_stored(xray.storage_key) as original:
        assert copy.read() == original.read()
    out = CaseEvent.objects.filter(case=consultation, verb=Verb.REFERRED_OUT, detail__reference=dispute.reference)
    assert out.exists()
    assert CaseEvent.objects.filter(case=dispute, verb=Verb.REFERRED_IN, detail__carried=1).exists()
    assert "referral:" + consultation.reference not in client.session  # taken by the new case

    # Each links to the other for the resident.
    assert dispute.reference in client.get(reference_url(consultation)).content.decode()
    assert consultation.reference in client.get(reference_url(dispute)).content.decode()

    # The lawyer reads the dispute and the carried copy, and nothing of the consultation.
    dispute = services.case_accept(case=Case.objects.get(pk=dispute.pk), professional=injury_lawyer)
    lawyer = login(injury_lawyer.user, "en")
    seen = body(lawyer.get(reference_url(dispute)))
    assert "手部X光.pdf" in seen and "血常规.pdf" not in seen
    assert consultation.reference not in seen
    assert "Opened from a consultation about an injury at work" in seen
    assert lawyer.get(reference_url(consultation)).status_code == 404
    assert lawyer.get(reverse("document_download", args=[dispute.reference, carried[0].pk])).status_code == 200
    assert lawyer.get(reverse("document_download", args=[consultation.reference, xray.pk])).status_code == 404


def reference_url(case: Case) -> str:
    return reverse("case_detail", args=[case.reference])


def test_only_the_resident_carries_their_own_consultation(
    consultation: Case, bob: User, doctor: Professional, work_injury: Skill, login: Callable[..., Client],
) -> None:
    xray = consultation.documents.first()
    assert xray is not None
    # Another resident: the case does not exist for him, nor may he open an intake from it.
    outsider = login(bob, "en")
    assert refer(outsider, consultation, xray.pk).status_code == 404
    url = f"{reverse('case_new', args=['work-injury'])}?from={consultation.reference}"
    assert outsider.get(url).status_code == 404
    assert not any(key.startswith("referral:") for key in outsider.session.keys())
    # The doctor sees the case but cannot take it to the union in the resident's name.
    own_doctor = login(doctor.user, "en")
    refused = refer(own_doctor, consultation, xray.pk)
    assert refused.status_code == 302
    assert not any(key.startswith("referral:") for key in own_doctor.session.keys())
    assert own_doctor.get(url).status_code != 200  # staff open no intake
    assert Case.objects.filter(kind=Kind.LEGAL).count() == 0


def test_ids_no_document_can_have_carry_nothing_and_answer_no_error(
    consultation: Case, alice: User, work_injury: Skill, login: Callable[..., Client]
) -> None:
    client = login(alice, "en")
    sent = client.post(
        reverse("medical:refer", args=[consultation.reference]), {"documents": ["9" * 30, "-3", "x", "0"]}
    )
    assert sent.status_code == 302
    assert client.session[f"referral:{consultation.reference}"] == []


def test_a_carried_file_is_the_residents_alone(
    consultation: Case, alice: User, bob: User, work_injury: Skill, login: Callable[..., Client], hangzhou: Any,
) -> None:
    """A parked copy's token names its resident: another's token in the form is ignored."""
    xray = consultation.documents.first()
    assert xray is not None
    alices_token = medical_services.referral_carry(case=consultation, resident=alice, document_ids=[xray.pk])[0].token
    data = intake_post(
        work_injury, staged=[alices_token], files_payslip=None, files_sick_leave=None, sick_days=None,
        materials_later="on",
    )
    opened = login(bob, "en").post(reverse("case_new", args=["work-injury"]), data)
    assert opened.status_code == 302, body(opened)
    dispute = Case.objects.get(resident=bob)
    assert dispute.documents.count() == 0 and dispute.referred_from is None


def test_the_doctor_suggests_it_in_the_room_and_the_resident_cannot(
    consultation: Case, alice: User, doctor: Professional, login: Callable[..., Client],
) -> None:
    url = reverse("medical:suggest_referral", args=[consultation.reference])
    assert "Suggest asking the union's lawyers" in body(login(doctor.user, "en").get(reference_url(consultation)))
    assert login(doctor.user, "en").post(url).status_code == 302
    line = Message.objects.filter(case=consultation, detail__verb=Verb.REFERRAL_SUGGESTED).get()
    assert line.sender == doctor.user

    resident = login(alice, "en")
    assert "Suggest asking" not in resident.get(reference_url(consultation)).content.decode()
    answer = resident.post(url, follow=True)
    assert en("Only the case's doctor can suggest this.") in messages_of(answer)
    assert Message.objects.filter(case=consultation, detail__verb=Verb.REFERRAL_SUGGESTED).count() == 1


def test_the_intake_it_opens_speaks_chinese(
    consultation: Case, alice: User, work_injury: Skill, login: Callable[..., Client],
) -> None:
    client = login(alice)
    xray = consultation.documents.first()
    assert xray is not None
    form = client.get(refer(client, consultation, xray.pk)["Location"])
    page = body(form)
    assert f"来自您的问诊 {consultation.reference}，您选的材料：" in page
    assert "是因为工作受伤或生病吗？" in body(client.get(reference_url(consultation)))
    assert EMPLOYER not in page  # nothing typed for her: the employer is hers to name


def test_an_app_opens_it_through_the_api_with_the_same_rules(
    consultation: Case, alice: User, bob: User, work_injury: Skill, hangzhou: Any,
) -> None:
    from tests.api.conftest import LEGAL_BODY, token_client, token_for

    xray = consultation.documents.get(original_name="手部X光.pdf")
    url = reverse("api:case-create-legal")
    body_ = {**LEGAL_BODY, "skill": "work-injury", "referred_from": consultation.reference}

    # Another resident names her consultation: it does not exist for him.
    outsider = token_client(token_for(bob)).post(url, {**body_, "carry_documents": [xray.pk]}, format="json")
    assert outsider.status_code == 404
    app = token_client(token_for(alice))
    for ids in ([xray.pk, 10**9], [xray.pk, 10**30], [-1]):
        wrong = app.post(url, {**body_, "carry_documents": ids}, format="json")
        assert wrong.status_code == 400 and "carry_documents" in wrong.json()["error"]["fields"], ids
    assert Case.objects.filter(kind=Kind.LEGAL).count() == 0

    made = app.post(url, {**body_, "carry_documents": [xray.pk]}, format="json")
    assert made.status_code == 201, made.json()
    dispute = Case.objects.get(reference=made.json()["reference"])
    assert dispute.referred_from == consultation
    assert [d.original_name for d in dispute.documents.all()] == ["手部X光.pdf"]
