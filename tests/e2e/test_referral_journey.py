"""A weaver whose hand was crushed at the loom asks the city doctor about it on her phone; the
doctor, reading her X-ray, suggests in the room that the union's lawyers can help; she ticks the
X-ray (not her blood test), and the labour dispute opens with her words and that one file; the
lawyer sees the dispute and the X-ray, nothing else of the consultation."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from playwright.sync_api import expect

from consult import services
from consult.models import Case, DocumentKind, Kind, Professional, Role, Skill, User
from legal.models import CityRates
from medical import services as medical_services
from tests.consult import files_corpus as corpus
from tests.e2e.conftest import Browsers, assert_accessible, next_step, zh
from tests.live import Daphne

COMPLAINT = "右手在织布机上被压伤，肿痛两周。"
XRAY = "右手X光.pdf"
BLOOD = "血常规.pdf"


def test_a_weaver_takes_her_injury_from_the_doctor_to_the_union_lawyer(
    browsers: Browsers,
    server: Daphne,
    respiratory: Skill,
    doctor: Professional,
    alice: User,
    skill_factory: Callable[..., Skill],
    professional_factory: Callable[..., Professional],
) -> None:
    work_injury = skill_factory(
        kind=Kind.LEGAL, code="work-injury", name_zh="工伤赔偿", name_en="Work injury compensation",
        required_documents=[],
    )
    lawyer = professional_factory([work_injury], role=Role.LAWYER, name="钱律师")
    CityRates.objects.create(
        city="杭州", effective_from=date(2024, 1, 1), minimum_wage=Decimal("2490"), average_wage=Decimal("10000")
    )
    consultation, _problems = medical_services.medical_case_submit(
        resident=alice, skill=respiratory, complaint=COMPLAINT, since_when="两周", patient_age=52,
        patient_sex="female", health_consent=True,
    )
    consultation = services.case_accept(case=consultation, professional=doctor)
    for name, kind in ((XRAY, DocumentKind.IMAGING), (BLOOD, DocumentKind.EXAM_REPORT)):
        services.document_add(
            case=consultation, uploader=alice, upload=io.BytesIO(corpus.pdf(title=name)), name=name, kind=kind
        )
    room = f"/cases/{consultation.reference}/"

    phone = browsers.phone("weaver", user=alice)
    phone.goto(room)
    expect(phone.locator("#conn-state")).to_have_class("conn conn-connected")

    # The doctor suggests it; the line reaches her phone by itself.
    desk = browsers.desktop("doctor", user=doctor.user)
    desk.goto(room)
    desk.get_by_role("button", name=zh("Suggest asking the union's lawyers")).click()
    expect(phone.locator("#chat-log")).to_contain_text(
        zh("suggested asking the union's lawyers about an injury at work")
    )

    # She ticks the X-ray only and asks.
    referral = phone.locator("#referral")
    expect(referral).to_contain_text(zh("Hurt or made ill by your work?"))
    assert_accessible(phone)
    referral.get_by_label(re.compile(re.escape(XRAY))).check()
    referral.get_by_role("button", name=zh("Ask the union's lawyers for help")).click()

    # The dispute's intake opens with her words and the X-ray already there.
    expect(phone).to_have_url(re.compile(rf"/services/work-injury/new/\?from={consultation.reference}"))
    expect(phone.locator("#carried")).to_contain_text(XRAY)
    expect(phone.locator("#carried")).not_to_contain_text(BLOOD)
    assert_accessible(phone)
    phone.fill("#id_job_title", "纺织厂挡车工")
    phone.fill("#id_employment_start", "2018-05-01")
    phone.select_option("#id_city", "杭州")
    phone.fill("#id_employer_name", "杭州某纺织有限公司")
    phone.fill("#id_monthly_wage", "4200")
    phone.fill("#id_amount_received", "0")
    next_step(phone)
    expect(phone.locator("#id_what_happened")).to_have_value(COMPLAINT)
    phone.fill("#id_desired_outcome", "认定工伤，赔偿医疗费和停工工资。")
    phone.check("#id_share_consent")
    phone.locator("form[data-intake]").get_by_role("button", name=zh("Send"), exact=True).click()

    expect(phone).to_have_url(re.compile(r"/cases/\w+/$"))
    dispute = Case.objects.get(kind=Kind.LEGAL, resident=alice)
    assert dispute.referred_from_id == consultation.pk and dispute.assignee_id == lawyer.pk
    expect(phone.locator("#referred-from")).to_contain_text(consultation.reference)
    expect(phone.locator("#documents")).to_contain_text(XRAY)
    expect(phone.locator("#documents")).not_to_contain_text(BLOOD)
    assert_accessible(phone)

    # The lawyer reads the dispute and the one file it carries.
    office = browsers.desktop("lawyer", user=lawyer.user)
    office.goto(f"/cases/{dispute.reference}/")
    expect(office.locator("#documents")).to_contain_text(XRAY)
    expect(office.locator("#referred-from")).to_contain_text(
        zh("Opened from a consultation about an injury at work: the worker chose which of its documents to give you.")
    )
    expect(office.locator("main")).not_to_contain_text(BLOOD)
    assert office.goto(room) is not None and office.locator("main").inner_text().count(COMPLAINT) == 0
    assert browsers.js_errors() == []
