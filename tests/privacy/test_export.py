"""A resident's copy of their data (PIPL art. 45): one zip from the account page and the API with
data.json (account, cases, timeline, messages, consents) and their files; never anyone else's."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from consult import services
from consult.models import Case, Document, Professional, Skill, User
from consult.services.messages import message_post
from tests.consult import files_corpus

pytestmark = pytest.mark.django_db

BOBS_SECRET = "鲍勃的秘密病情"


def unzip(response: Any) -> tuple[dict[str, Any], dict[str, bytes]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    contents = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(contents.pop("data.json")), contents


@pytest.fixture
def bobs_case(bob: User, respiratory: Skill, doctor: Professional) -> Case:
    case = services.case_submit(resident=bob, skill=respiratory, description=BOBS_SECRET, priority=0)
    services.document_add(
        case=case, uploader=bob, upload=io.BytesIO(files_corpus.pdf(title="bob")), name="鲍勃的报告.pdf"
    )
    services.case_accept(case=case, professional=doctor)
    message_post(case=case, sender=bob, body=BOBS_SECRET + "，聊天")
    return case


def test_the_account_page_offers_the_download(alice: User, login: Any) -> None:
    page = login(alice, "en").get(reverse("accounts:phone")).content.decode()
    assert f'href="{reverse("privacy:export")}"' in page
    assert "Download my data" in page


def test_it_gives_the_resident_her_cases_with_their_files_and_nothing_of_anyone_elses(
    lived_case: Case, bobs_case: Case, alice: User, login: Any, private_files: Path
) -> None:
    data, contents = unzip(login(alice).get(reverse("privacy:export")))

    assert data["account"]["phone"] == alice.phone and data["account"]["name"] == alice.name
    assert [c["reference"] for c in data["cases"]] == [lived_case.reference]
    case = data["cases"][0]
    assert case["medical"]["intake"]["patient_name"] == "王老汉"
    assert case["medical"]["note"]["impression"] == "急性支气管炎。"
    texts = [m["text"] for m in case["messages"] if m["kind"] == "text"]
    assert texts == ["我父亲王老汉晚上咳得厉害。", "请明天去拍胸片。"]
    assert {e["what"] for e in case["timeline"]} >= {"submitted", "accepted", "closed", "note_saved"}
    consent = case["consents"][0]
    assert consent["purpose"] == "health" and consent["version"] >= 1 and consent["text"]["agree"]
    # Every file of hers, byte for byte, named in the JSON.
    documents = Document.objects.filter(case=lived_case)
    assert sorted(d["file"] for d in case["documents"]) == sorted(contents)
    for document in documents:
        name = next(d["file"] for d in case["documents"] if d["id"] == document.pk)
        assert contents[name] == (private_files / document.storage_key).read_bytes()

    # Bob's case is in no part of it: not its reference, not its words, not its file.
    everything = json.dumps(data, ensure_ascii=False) + "".join(contents)
    assert bobs_case.reference not in everything
    assert BOBS_SECRET not in everything and "鲍勃" not in everything
    bobs_file = (private_files / Document.objects.get(case=bobs_case).storage_key).read_bytes()
    assert all(body != bobs_file for body in contents.values())


def test_the_doctor_of_a_case_gets_only_her_own_account_not_the_case(
    lived_case: Case, doctor: Professional, login: Any
) -> None:
    data, contents = unzip(login(doctor.user).get(reverse("privacy:export")))
    assert data["account"]["phone"] == doctor.user.phone
    assert data["cases"] == [] and contents == {}


def test_the_api_gives_the_same_zip_to_its_owner_only(lived_case: Case, bobs_case: Case, bob: User) -> None:
    client = APIClient()
    assert client.get("/api/v1/me/export/").status_code in (401, 403)
    client.force_authenticate(bob)
    data, contents = unzip(client.get("/api/v1/me/export/"))
    assert [c["reference"] for c in data["cases"]] == [bobs_case.reference]
    assert lived_case.reference not in json.dumps(data) and "王老汉" not in json.dumps(data, ensure_ascii=False)
    assert len(contents) == 1


def test_it_needs_a_login(client: Any) -> None:
    response = client.get(reverse("privacy:export"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
