"""A resident scans a poster, signs up on her phone and sends her father's case with a report; a
city doctor sees it arrive in the queue, takes it, chats with her (through a network cut on her
side), writes the answer and closes; she downloads the summary and rates the service."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from playwright.sync_api import Locator, Page, expect

from consult import services
from consult.models import Case, DocumentKind, Professional, Rating, Skill, Status, User
from tests.consult import files_corpus as corpus
from tests.e2e.conftest import (
    Browsers,
    assert_accessible,
    download,
    marked,
    next_step,
    pdf_text,
    still_marked,
    upload,
    zh,
    zh_in,
)
from tests.e2e.sms import sms_code
from tests.live import Daphne

PLACE = "青山村卫生室"
RESIDENT_NAME = "刘秀兰"
RESIDENT_PHONE = "13812345678"
PATIENT = "刘德明"
COMPLAINT = "父亲咳嗽两周，夜里加重，有点发烧。"
ADVICE = "多喝温水，按时服药，一周后复查胸片。"
REPORT_NAME = "血常规报告.pdf"
PHOTO_NAME = "胸片照片.jpg"


def send(page: Page, text: str) -> None:
    """Type a chat message and send it; wait until the server acknowledged it."""
    page.fill("#chat-input", text)
    page.locator("#chat-form").get_by_role("button", name=zh_in("chat", "Send")).click()
    mine = page.locator("#chat-log li.mine", has_text=text)
    expect(mine).to_have_count(1)
    expect(mine).not_to_have_class(re.compile(r"\bpending\b"))
    expect(mine).to_have_attribute("data-seq", re.compile(r"^\d+$"))


def at(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(path))


def theirs(page: Page, text: str) -> Locator:
    return page.locator("#chat-log li.theirs", has_text=text)


def test_a_resident_scans_a_poster_and_a_doctor_answers_her_live(
    browsers: Browsers,
    server: Daphne,
    tmp_path: Path,
    sms_folder: Path,
    job_worker: Path,
    respiratory: Skill,
    professional_factory: Callable[..., Professional],
    coordinator: User,
) -> None:
    respiratory.required_documents = [DocumentKind.EXAM_REPORT]
    respiratory.save(update_fields=["required_documents"])
    # Off duty: the case must wait in line, where the doctor's open queue page shows it arriving.
    doctor = professional_factory([respiratory], name="王芳", on_duty=False)
    poster = services.poster_create(skill=respiratory, place=PLACE, user=coordinator)

    # The doctor's queue page is open and live before anything happens.
    work = browsers.desktop("doctor", user=doctor.user)
    work.goto("/work/")
    expect(work.locator("#conn-state")).to_have_class("conn conn-connected")
    expect(work.locator("#waiting-queue")).to_contain_text(zh("Nobody is waiting."))
    marked(work)

    # The resident scans the poster: the QR code holds the intake's address with the place.
    phone = browsers.phone("resident")
    qr_url = services.poster_url(poster)
    assert qr_url.startswith(settings.SITE_URL)
    phone.goto(server.url + qr_url.removeprefix(settings.SITE_URL))
    # It opens the service's own page: who answers and how soon, and a start with her number.
    expect(phone.locator("h1")).to_have_text(respiratory.name_zh)
    expect(phone.locator(".service-facts")).to_contain_text(PLACE)
    assert_accessible(phone)
    phone.fill("#id_name", RESIDENT_NAME)
    phone.fill("#id_phone", RESIDENT_PHONE)
    phone.locator("main").get_by_role("button", name=zh("Send me a code")).click()

    # A code comes by SMS (the server's file backend); the account exists once it is typed.
    expect(phone).to_have_url(at("/accounts/signup/code/"))
    expect(phone.locator("#code-sent")).to_contain_text(RESIDENT_PHONE[:3] + "****" + RESIDENT_PHONE[-4:])
    assert not User.objects.filter(phone=RESIDENT_PHONE).exists()
    assert_accessible(phone)
    phone.fill("#id_code", sms_code(sms_folder, RESIDENT_PHONE))
    phone.locator("main").get_by_role("button", name=zh("Create my account")).click()

    # Back at the intake of the poster's service, in Chinese.
    expect(phone).to_have_url(at(f"/services/{respiratory.code}/new/"))
    expect(phone.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(phone.locator("#id_skill")).to_have_value(str(respiratory.pk))
    phone.fill("#id_complaint", COMPLAINT)
    phone.fill("#id_since_when", "两周")
    phone.check("#id_on_behalf")
    phone.fill("#id_patient_name", PATIENT)
    phone.fill("#id_relationship", "女儿")
    phone.fill("#id_patient_age", "72")
    phone.check("input[name=patient_sex][value=male]")
    assert_accessible(phone)
    next_step(phone)
    missing = phone.locator(".missing")
    expect(missing).to_be_visible()
    phone.set_input_files("#id_files_exam_report", files=[upload(REPORT_NAME, "application/pdf", corpus.pdf())])
    expect(missing).to_be_hidden()
    phone.check("#id_health_consent")
    assert_accessible(phone)
    phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).click()

    # The case page: waiting, first in line, the report attached, the poster's place recorded.
    expect(phone).to_have_url(at("/cases/"))
    case = Case.objects.get(resident__phone=RESIDENT_PHONE)
    assert (case.status, case.source_place, case.assignee_id) == (Status.WAITING, PLACE, None)
    expect(phone.locator("#case-status .reference")).to_have_text(case.reference)
    expect(phone.locator("#case-status .wait")).to_contain_text(zh("You are number %(place)s in line.", place=1))
    expect(phone.locator("#documents")).to_contain_text(REPORT_NAME)
    expect(phone.locator("#conn-state")).to_have_class("conn conn-connected")
    assert_accessible(phone)
    marked(phone)

    # ...and a photo of the X-ray, from the case page, added to the list as it uploads.
    form = phone.locator("form[data-upload]")
    form.locator("select[name=kind]").select_option(DocumentKind.IMAGING.value)
    form.locator("input[type=file]").set_input_files(files=[upload(PHOTO_NAME, "image/jpeg", corpus.jpeg_with_gps())])
    form.get_by_role("button", name=zh("Upload")).click()
    expect(form.locator(".upload-results li.ok")).to_have_count(1)
    expect(phone.locator("#documents ul.documents li.document")).to_have_count(2)
    phone.wait_for_function(
        "() => { const i = document.querySelector('#documents img.thumb');"
        " return i !== null && i.complete && i.naturalWidth > 0; }"
    )

    # The doctor's queue showed the case by itself; he goes on duty and is given it.
    expect(work.locator("#waiting-queue")).to_contain_text(COMPLAINT)
    assert still_marked(work), "the queue page was reloaded"
    # Going on duty gives him the waiting case and takes him to it; he accepts it.
    work.get_by_role("button", name=zh("Go on duty")).click()
    expect(work).to_have_url(at(f"/cases/{case.reference}/"))
    work.get_by_role("button", name=zh("Accept the case")).click()
    expect(work).to_have_url(at(f"/cases/{case.reference}/"))
    expect(work.locator("#intake")).to_contain_text(PATIENT)
    expect(work.locator("#documents")).to_contain_text(REPORT_NAME)
    expect(work.locator("#documents")).to_contain_text(PHOTO_NAME)

    # The resident's page follows without reloading: in progress, and who handles it.
    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.ACTIVE}")
    expect(phone.locator("#case-status")).to_contain_text("王芳")
    assert still_marked(phone), "the case page was reloaded"

    # Chat both ways, each line appearing on the other side as it is sent.
    expect(work.locator("#conn-state")).to_have_class("conn conn-connected")
    expect(phone.locator("#conn-state")).to_have_class("conn conn-connected")
    send(phone, "医生您好，我父亲咳嗽两周了。")
    expect(theirs(work, "医生您好，我父亲咳嗽两周了。")).to_have_count(1)
    send(work, "您好，请问有没有发烧？")
    expect(theirs(phone, "您好，请问有没有发烧？")).to_have_count(1)

    # Her network drops; the doctor writes three lines meanwhile.
    sockets: list[str] = []
    phone.on("websocket", lambda ws: sockets.append(ws.url))
    phone.context.set_offline(True)
    expect(phone.locator("#conn-state")).to_have_class("conn conn-offline")
    missed = ["先量一下体温。", "如果超过38.5度，可以吃退烧药。", "呼吸困难的话马上打120。"]
    for line in missed:
        send(work, line)
    for line in missed:
        expect(theirs(phone, line)).to_have_count(0)

    # Back online: a new socket resumes from her last message; each of the three shows up once,
    # in order, and she can answer.
    phone.context.set_offline(False)
    expect(phone.locator("#conn-state")).to_have_class("conn conn-connected")
    assert [url for url in sockets if url.endswith(f"/ws/cases/{case.reference}/")], sockets
    for line in missed:
        expect(theirs(phone, line)).to_have_count(1)
    send(phone, "收到，谢谢医生。")
    expect(theirs(work, "收到，谢谢医生。")).to_have_count(1)
    texts = phone.locator("#chat-log li.theirs p").all_inner_texts()
    assert texts == ["您好，请问有没有发烧？", *missed], texts
    seqs = phone.locator("#chat-log li[data-seq]").evaluate_all("items => items.map(li => li.dataset.seq)")
    assert len(seqs) == len(set(seqs)), seqs
    assert still_marked(phone)

    # The doctor writes the answer, marks the case resolved and closes it.
    work.get_by_role("link", name=zh("Write the note")).click()
    expect(work).to_have_url(at(f"/medical/cases/{case.reference}/note/"))
    assert_accessible(work)
    work.fill("#id_findings", "血常规白细胞略高，胸片未见明显异常。")
    work.fill("#id_impression", "急性支气管炎。")
    work.fill("#id_advice", ADVICE)
    work.get_by_role("button", name=zh("Save the note")).click()
    expect(work.locator("#note")).to_contain_text(ADVICE)
    work.get_by_role("button", name=zh("Mark resolved")).click()
    expect(work.locator("#case-status .status")).to_have_class(f"status status-{Status.RESOLVED}")
    work.get_by_role("button", name=zh("Close the case")).click()
    expect(work.locator("#case-status .status")).to_have_class(f"status status-{Status.CLOSED}")

    # Her page shows it closed and asks for a rating, still without reloading.
    expect(phone.locator("#case-status .status")).to_have_class(f"status status-{Status.CLOSED}")
    expect(phone.locator("#rating")).to_be_visible()
    assert still_marked(phone)

    # She opens the case again and downloads the summary: her father's name is in it.
    phone.goto(f"/cases/{case.reference}/")
    summary = phone.locator("#documents li.document", has_text=case.reference)
    expect(summary).to_have_count(1)
    pdf = download(phone, summary.get_by_role("link", name=zh("Download")), tmp_path)
    text = pdf_text(pdf)
    assert PATIENT in text and case.reference in text, text[:500]
    assert_accessible(phone)

    # And rates the service.
    rating = phone.locator("#rating")
    rating.locator("input[name=score][value='5']").check()
    rating.locator("#id_comment").fill("医生很耐心，谢谢！")
    rating.get_by_role("button", name=zh("Send my rating")).click()
    expect(phone.locator(".messages")).to_contain_text(zh("Thank you for your rating!"))
    expect(phone.locator("#rating")).to_have_count(0)
    assert Rating.objects.get(case=case).score == 5

    assert browsers.js_errors() == []
