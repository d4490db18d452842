"""Demo data for `make run`. Safe to run again: it updates what it finds, creates what is missing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from consult import services
from consult.models import Kind, Professional, Role, Skill, User
from legal.models import CityRates, LawyerProfile, LegalAidFund
from legal.services import legal_case_submit
from medical.models import DoctorProfile
from medical.services import medical_case_submit
from staff.services import RECOVERY

DEMO_PASSWORD = "consult2026"  # noqa: S105 (published demo logins)
# Published too: every demo staff account's second step, as recovery codes (each good once per
# account; seed_demo puts them back). Only these demo accounts get them, and only from here.
DEMO_RECOVERY_CODES = [f"demo{n:04d}" for n in range(1, 21)]

# code, Chinese name, English name, materials (zh, en), office (zh, en), phone, hours
MEDICAL = [
    ("general", "全科（不确定看哪科）", "General practice (not sure)", "近期检查报告\n正在服用的药物清单", "Recent exam reports\nList of current medicines", 24),
    ("internal", "内科", "Internal medicine", "近期血常规、生化报告\n正在服用的药物清单", "Recent blood tests\nList of current medicines", 24),
    ("respiratory", "呼吸科", "Respiratory medicine", "胸片或胸部CT报告\n肺功能检查报告", "Chest X-ray or CT report\nLung function test", 24),
    ("cardiology", "心内科", "Cardiology", "心电图\n血压记录\n正在服用的药物清单", "ECG\nBlood pressure record\nList of current medicines", 12),
    ("paediatrics", "儿科", "Paediatrics", "孩子的疫苗接种本\n近期检查报告", "Child's vaccination booklet\nRecent exam reports", 12),
    ("geriatrics", "老年病科", "Geriatrics", "近期检查报告\n正在服用的药物清单", "Recent exam reports\nList of current medicines", 24),
    ("orthopaedics", "骨科", "Orthopaedics", "X光片或CT、核磁共振报告", "X-ray, CT or MRI report", 48),
    ("dermatology", "皮肤科", "Dermatology", "患处清晰照片", "Clear photos of the affected skin", 48),
    ("obgyn", "妇产科", "Obstetrics and gynaecology", "B超报告\n孕检记录", "Ultrasound report\nPregnancy check records", 24),
    ("neurology", "神经内科", "Neurology", "头颅CT或核磁共振报告\n正在服用的药物清单", "Head CT or MRI report\nList of current medicines", 24),
]
LEGAL = [
    ("unpaid-wages", "拖欠工资", "Unpaid wages", "劳动合同\n工资条或银行流水\n考勤记录", "Labour contract\nPayslips or bank records\nAttendance records", 48),
    ("sick-pay", "病假工资", "Sick pay", "劳动合同\n病假证明\n工资条或银行流水", "Labour contract\nSick-leave certificate\nPayslips or bank records", 48),
    ("overtime", "加班费", "Overtime pay", "劳动合同\n考勤或加班记录\n工资条", "Labour contract\nAttendance or overtime records\nPayslips", 48),
    ("work-injury", "工伤赔偿", "Work injury compensation", "劳动合同\n工伤认定书或病历\n工资条", "Labour contract\nInjury certificate or medical records\nPayslips", 24),
    ("dismissal", "违法解除劳动合同", "Unlawful dismissal", "劳动合同\n解除通知书\n工资条", "Labour contract\nDismissal notice\nPayslips", 24),
    ("social-insurance", "社会保险缴纳", "Social insurance contributions", "劳动合同\n社保缴费记录", "Labour contract\nSocial insurance records", 72),
    ("contract", "劳动合同纠纷", "Labour contract disputes", "劳动合同\n相关书面材料", "Labour contract\nRelated written documents", 72),
]

# Documents each service asks for at intake (the "still missing" list).
REQUIRED_DOCUMENTS = {
    "respiratory": ["imaging"],
    "cardiology": ["exam_report"],
    "orthopaedics": ["imaging"],
    "neurology": ["imaging"],
    "internal": ["exam_report"],
    "geriatrics": ["exam_report", "prescription"],
    "unpaid-wages": ["labour_contract", "payslip"],
    "sick-pay": ["payslip", "sick_leave"],
    "overtime": ["payslip"],
    "work-injury": ["labour_contract"],
    "dismissal": ["labour_contract"],
}

HOSPITAL = ("市第一人民医院", "City No. 1 People's Hospital", "0571-87000120")
UNION = ("市总工会法律服务中心", "City Federation of Trade Unions legal service centre", "0571-12351")

# phone, name, skills, capacity, department, title
DOCTORS = [
    ("13900000001", "李建国", ["general", "internal", "geriatrics"], 5, "老年病科", "主任医师"),
    ("13900000002", "王芳", ["respiratory", "internal"], 5, "呼吸内科", "副主任医师"),
    ("13900000003", "陈志强", ["cardiology", "general"], 4, "心血管内科", "主治医师"),
    ("13900000004", "刘静", ["paediatrics", "obgyn", "dermatology"], 4, "儿科", "副主任医师"),
    ("13900000005", "赵明", ["orthopaedics", "neurology"], 3, "骨科", "主治医师"),
]
# phone, name, skills, capacity, firm
LAWYERS = [
    ("13700000001", "张律师", ["unpaid-wages", "sick-pay", "overtime"], 6, "浙江明理律师事务所"),
    ("13700000002", "孙律师", ["work-injury", "dismissal", "social-insurance", "contract"], 6, ""),
]
# Hangzhou's figures for the claim estimate (editable by coordinators in the admin).
CITY_RATES = {"city": "杭州", "effective_from": date(2024, 1, 1), "minimum_wage": Decimal("2490"),
              "average_wage": Decimal("10000")}
FUND = ("市总工会法律援助基金", Decimal("200"))
COORDINATOR = ("13600000001", "周协调")  # platform-wide
# The hospital's and the union's own coordinators: each sees the cases of its domain only.
DOMAIN_COORDINATORS = [("13600000002", "吴协调", Kind.MEDICAL), ("13600000003", "郑协调", Kind.LEGAL)]
RESIDENTS = [("13800000001", "王秀英"), ("13800000002", "李大山"), ("13800000003", "陈小梅")]


class Command(BaseCommand):
    help = "Load demo services, professionals, a coordinator and residents (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        for kind, rows, office in ((Kind.MEDICAL, MEDICAL, HOSPITAL), (Kind.LEGAL, LEGAL, UNION)):
            for position, (code, zh, en, mat_zh, mat_en, hours) in enumerate(rows):
                Skill.objects.update_or_create(
                    code=code,
                    defaults=dict(
                        kind=kind, name_zh=zh, name_en=en, materials_zh=mat_zh, materials_en=mat_en,
                        office_zh=office[0], office_en=office[1], office_phone=office[2],
                        response_hours=hours, position=position, is_active=True,
                    required_documents=REQUIRED_DOCUMENTS.get(code, []),
                    ),
                )
        for phone, name, codes, capacity, department, title in DOCTORS:
            doctor = self._professional(Role.DOCTOR, phone, name, codes, capacity, HOSPITAL[0])
            DoctorProfile.objects.update_or_create(
                professional=doctor, defaults={"department": department, "title": title}
            )
        for phone, name, codes, capacity, firm in LAWYERS:
            lawyer = self._professional(Role.LAWYER, phone, name, codes, capacity, UNION[0])
            LawyerProfile.objects.update_or_create(professional=lawyer, defaults={"union": UNION[0], "firm": firm})
        CityRates.objects.update_or_create(
            city=CITY_RATES["city"], effective_from=CITY_RATES["effective_from"], defaults=CITY_RATES
        )
        LegalAidFund.objects.update_or_create(name=FUND[0], defaults={"hourly_rate": FUND[1]})
        if not User.objects.filter(phone=COORDINATOR[0]).exists():
            services.coordinator_create(
                phone=COORDINATOR[0], name=COORDINATOR[1], password=DEMO_PASSWORD, platform_wide=True
            )
        for phone, name, kind in DOMAIN_COORDINATORS:
            if not User.objects.filter(phone=phone).exists():
                services.coordinator_create(phone=phone, name=name, password=DEMO_PASSWORD, domains=[kind])
        for phone, name in RESIDENTS:
            if not User.objects.filter(phone=phone).exists():
                services.resident_signup(phone=phone, name=name, password=DEMO_PASSWORD)
        first = User.objects.get(phone=RESIDENTS[0][0])
        if not first.cases.exists():
            # A son scanned the QR code on the township notice for his 92-year-old father.
            medical_case_submit(
                resident=first, skill=Skill.objects.get(code="geriatrics"), on_behalf=True, relationship="儿子",
                patient_name="王德胜", patient_age=92, patient_sex="male", since_when="两个月",
                complaint="父亲92岁，最近常头晕，血压忽高忽低，想请医生看看体检报告。",
                medicines="氨氯地平 5mg 每日一次", health_consent=True,
            )
            # 20 days of sick leave paid 802 yuan, below the legal standard.
            legal_case_submit(
                resident=first, skill=Skill.objects.get(code="sick-pay"), share_consent=True,
                job_title="纺织厂挡车工", employment_start=date(2019, 3, 1), employer_name="杭州某纺织有限公司",
                employer_address="杭州市萧山区某工业园", employer_contact="人事部 刘经理", employer_phone="0571-82000000",
                what_happened="病假20天，公司只发了802元，低于法定标准，想请工会律师帮忙调解。",
                monthly_wage=Decimal("4000"), amount_received=Decimal("802"), amount_claimed=Decimal("1400"),
                desired_outcome="补发病假工资差额。", city="杭州", sick_days=20,
            )
        staff_phones = [
            *(row[0] for row in DOCTORS), *(row[0] for row in LAWYERS), COORDINATOR[0],
            *(row[0] for row in DOMAIN_COORDINATORS),
        ]
        for user in User.objects.filter(phone__in=staff_phones):
            demo_recovery_codes(user)
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Every demo password: {DEMO_PASSWORD}"))
        self.stdout.write(
            f"Demo staff, at the second step: a recovery code, {DEMO_RECOVERY_CODES[0]} to "
            f"{DEMO_RECOVERY_CODES[-1]} (each once per account; seed_demo renews them)."
        )

    def _professional(
        self, role: str, phone: str, name: str, codes: list[str], capacity: int, organisation: str
    ) -> Professional:
        skills = list(Skill.objects.filter(code__in=codes))
        existing = Professional.objects.filter(user__phone=phone).first()
        if existing is not None:
            existing.skills.set(skills)
            return existing
        return services.professional_create(
            phone=phone, name=name, role=role, password=DEMO_PASSWORD, organisation=organisation,
            city="杭州", skills=skills, capacity=capacity, on_duty=True,
        )


def demo_recovery_codes(user: User) -> None:
    """The demo staff's published recovery codes, in place of a phone app a tester does not have."""
    device, _created = StaticDevice.objects.get_or_create(user=user, name=RECOVERY, defaults={"confirmed": True})
    device.token_set.all().delete()
    device.token_set.bulk_create([StaticToken(device=device, token=code) for code in DEMO_RECOVERY_CODES])
