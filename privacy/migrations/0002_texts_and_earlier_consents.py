"""The first consent texts, and a consent row for every intake made before texts were versioned:
they agreed to the one sentence the form showed then, which is version 1 of each purpose (the
language shown was not kept: left blank)."""

from django.db import migrations

# Copied, not imported: a migration keeps meaning what it meant when it was written.
VERSION_1 = {
    "health": {
        "title_zh": "同意处理健康信息",
        "title_en": "Consent to process health information",
        "agree_zh": "我同意本服务的医生查看并保存我发送的健康信息和材料，只用于回答这次咨询。",
        "agree_en": (
            "I agree that the doctors of this service read and keep the health information and documents I send, "
            "only to answer this consultation."
        ),
    },
    "share_employer": {
        "title_zh": "同意向用人单位提供情况",
        "title_en": "Consent to share the details with the employer",
        "agree_zh": "我同意工会律师为了调解，把这些情况告诉我的用人单位。",
        "agree_en": "I agree that the union lawyer shares these details with my employer to mediate.",
    },
}


def forwards(apps, schema_editor):
    ConsentText = apps.get_model("privacy", "ConsentText")
    Consent = apps.get_model("privacy", "Consent")
    MedicalIntake = apps.get_model("medical", "MedicalIntake")
    LegalIntake = apps.get_model("legal", "LegalIntake")
    texts = {}
    for purpose, fields in VERSION_1.items():
        texts[purpose], _ = ConsentText.objects.get_or_create(purpose=purpose, version=1, defaults=fields)
    rows = []
    for intake in MedicalIntake.objects.select_related("case").iterator():
        rows.append(Consent(
            case_id=intake.case_id, purpose="health", text=texts["health"], given_by_id=intake.case.resident_id,
            given_at=intake.health_consent_at, language="", channel="migrated",
        ))
    for intake in LegalIntake.objects.select_related("case").iterator():
        rows.append(Consent(
            case_id=intake.case_id, purpose="share_employer", text=texts["share_employer"],
            given_by_id=intake.case.resident_id, given_at=intake.share_consent_at, language="", channel="migrated",
        ))
    Consent.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)


def backwards(apps, schema_editor):
    apps.get_model("privacy", "Consent").objects.filter(channel="migrated").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("privacy", "0001_consents_and_erasure_requests"),
        ("medical", "0001_initial"),
        ("legal", "0002_percent_labels"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
