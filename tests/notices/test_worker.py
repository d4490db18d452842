"""The outbox with a real Celery worker, on the broker the run is configured with (the embedded
pass: the filesystem transport of `make run`; the services pass: Redis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consult import services
from consult.models import Case, Professional, User
from consult.services import messages as chat
from notices.kinds import NoticeKind
from notices.models import Notice, NoticeStatus
from tests.jobs.test_worker import Jobs, jobs  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_sends_one_sms_for_a_message_to_an_absent_resident_through_a_provider_failing_twice(
    jobs: Jobs, tmp_path: Path, case: Case, alice: User, doctor: Professional  # noqa: F811
) -> None:
    services.case_accept(case=case, professional=doctor)  # (its notices went inline, to the test's outbox)
    jobs.env.update({
        "SMS_BACKEND": "tests.notices.flaky_file.SmsBackend", "FLAKY_DIR": str(tmp_path), "FLAKY_FAILURES": "2",
        "NOTICE_RETRY_SECONDS": "0", "NOTICE_QUIET_START": "0", "NOTICE_QUIET_END": "0",
    })
    jobs.worker()
    message, _new = chat.message_post(case=case, sender=doctor.user, body="请描述一下症状", client_id="w1")
    # What the chat does after storing a message, queued through the broker to the worker.
    jobs.call("realtime.tasks.notify_offline", str(message.pk))

    sent = tmp_path / "sent"
    jobs.until(lambda: sent.exists(), "the SMS to be sent")
    notice = jobs.until(
        lambda: Notice.objects.filter(kind=NoticeKind.NEW_MESSAGE, status=NoticeStatus.SENT).first(), "the row"
    )
    [sms] = [json.loads(line) for line in sent.read_text().splitlines()]
    assert (sms["phone"], sms["kind"], sms["params"]["case"]) == (alice.phone, "new_message", case.reference)
    assert notice.attempts == 3 and len(notice.failures) == 2
    assert notice.provider_message_id == "flaky-3"
    assert Notice.objects.filter(kind=NoticeKind.NEW_MESSAGE).count() == 1
