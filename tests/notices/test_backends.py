"""The SMS backends. The provider backends run the real SDKs against a fake provider on
127.0.0.1: what is checked is the request the SDK builds and sends, and how answers are read."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

import notices
from notices.backends import SmsError, SmsMessage, SmsRejected, aliyun, console, file, get_backend, tencent
from notices.kinds import TEMPLATES, NoticeKind, render
from tests.notices.fake_provider import fake_provider

ALL_TEMPLATES = {kind: f"SMS_{n:06d}" for n, kind in enumerate(TEMPLATES, start=100)}


def code_message(code: str = "123456") -> SmsMessage:
    return SmsMessage(
        phone="13800000001", kind=NoticeKind.VERIFICATION_CODE, params={"code": code}, language="zh-hans",
        text=render(NoticeKind.VERIFICATION_CODE, {"code": code}, "zh-hans"), reference="42",
    )


def aliyun_settings(endpoint: str) -> dict[str, Any]:
    return dict(
        SMS_BACKEND="notices.backends.aliyun.SmsBackend", ALIYUN_SMS_ACCESS_KEY_ID="LTAI-test",
        ALIYUN_SMS_ACCESS_KEY_SECRET="secret-test", ALIYUN_SMS_ENDPOINT=endpoint, SMS_SIGN_NAME="社区咨询",
        SMS_TEMPLATES=ALL_TEMPLATES,
    )


def tencent_settings(endpoint: str) -> dict[str, Any]:
    return dict(
        SMS_BACKEND="notices.backends.tencent.SmsBackend", TENCENT_SMS_SECRET_ID="AKID-test",
        TENCENT_SMS_SECRET_KEY="secret-test", TENCENT_SMS_SDK_APP_ID="1400000000", TENCENT_SMS_ENDPOINT=endpoint,
        SMS_SIGN_NAME="社区咨询", SMS_TEMPLATES=ALL_TEMPLATES,
    )


def test_it_keeps_messages_in_the_outbox_with_locmem() -> None:
    message_id = get_backend().send(code_message())
    assert message_id.startswith("locmem-")
    assert [m.params for m in notices.outbox] == [{"code": "123456"}]


def test_it_prints_the_text_with_console() -> None:
    out = io.StringIO()
    console.SmsBackend(stream=out).send(code_message("654321"))
    assert out.getvalue() == "SMS to 13800000001 [verification_code] 您的验证码是654321，5分钟内有效，请勿告诉他人。\n"


def test_it_appends_a_json_line_per_message_with_file(tmp_path: Path) -> None:
    backend = file.SmsBackend(path=str(tmp_path))
    backend.send(code_message("111111"))
    backend.send(code_message("222222"))
    [day] = list(tmp_path.iterdir())
    lines = [json.loads(line) for line in day.read_text().splitlines()]
    assert [(line["phone"], line["params"]["code"]) for line in lines] == [
        ("13800000001", "111111"), ("13800000001", "222222")
    ]


def test_aliyun_builds_the_sdk_request_with_template_sign_phone_and_json_params() -> None:
    from alibabacloud_dysmsapi20170525.models import SendSmsRequest

    with override_settings(**aliyun_settings("http://127.0.0.1:9")):
        request = aliyun.SmsBackend().request(code_message())
    assert isinstance(request, SendSmsRequest)
    assert request.phone_numbers == "13800000001"
    assert request.sign_name == "社区咨询"
    assert request.template_code == ALL_TEMPLATES[NoticeKind.VERIFICATION_CODE]
    assert json.loads(request.template_param) == {"code": "123456"}
    assert request.out_id == "42"


def test_aliyun_sends_through_the_sdk_and_returns_the_biz_id() -> None:
    answer = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5"}
    with fake_provider((200, answer)) as provider, override_settings(**aliyun_settings(provider.endpoint)):
        message_id = aliyun.SmsBackend().send(code_message())
    assert message_id == "900619746936498440^0"
    [request] = provider.received
    sent = request.query
    assert request.headers["x-acs-action"] == "SendSms"
    assert sent["PhoneNumbers"] == "13800000001"
    assert sent["SignName"] == "社区咨询"
    assert sent["TemplateCode"] == ALL_TEMPLATES[NoticeKind.VERIFICATION_CODE]
    assert json.loads(sent["TemplateParam"]) == {"code": "123456"}
    assert sent["OutId"] == "42"
    assert request.headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=LTAI-test,")


def test_aliyun_tells_a_refusal_from_a_passing_fault() -> None:
    refused = {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "bad number", "RequestId": "1"}
    throttled = {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "too many", "RequestId": "2"}
    with fake_provider((200, refused), (200, throttled), (503, {"Code": "ServiceUnavailable"})) as provider, \
            override_settings(**aliyun_settings(provider.endpoint)):
        backend = aliyun.SmsBackend()
        with pytest.raises(SmsRejected, match="MOBILE_NUMBER_ILLEGAL"):
            backend.send(code_message())
        with pytest.raises(SmsError, match="BUSINESS_LIMIT_CONTROL") as throttling:
            backend.send(code_message())
        assert not isinstance(throttling.value, SmsRejected)
        with pytest.raises(SmsError) as unavailable:
            backend.send(code_message())
        assert not isinstance(unavailable.value, SmsRejected)


def test_tencent_builds_the_sdk_request_with_template_sign_phone_and_ordered_params() -> None:
    from tencentcloud.sms.v20210111.models import SendSmsRequest

    params = {"case": "C-2026-0001", "professional": "王芳", "by": "11月27日 09:00", "link": "https://x/n/abc/"}
    message = SmsMessage(
        phone="13800000001", kind=NoticeKind.CASE_ACCEPTED, params=params, language="zh-hans", text="", reference="7"
    )
    with override_settings(**tencent_settings("http://127.0.0.1:9")):
        request = tencent.SmsBackend().request(message)
    assert isinstance(request, SendSmsRequest)
    assert request.PhoneNumberSet == ["+8613800000001"]
    assert request.SmsSdkAppId == "1400000000"
    assert request.SignName == "社区咨询"
    assert request.TemplateId == ALL_TEMPLATES[NoticeKind.CASE_ACCEPTED]
    assert request.TemplateParamSet == ["C-2026-0001", "王芳", "11月27日 09:00", "https://x/n/abc/"]


def test_tencent_sends_through_the_sdk_and_returns_the_serial_number() -> None:
    answer = {"Response": {"SendStatusSet": [{
        "SerialNo": "2028:f825e6b16e23f73f4123", "PhoneNumber": "+8613800000001", "Fee": 1, "SessionContext": "42",
        "Code": "Ok", "Message": "send success", "IsoCode": "CN",
    }], "RequestId": "a0aabda6"}}
    with fake_provider((200, answer)) as provider, override_settings(**tencent_settings(provider.endpoint)):
        message_id = tencent.SmsBackend().send(code_message())
    assert message_id == "2028:f825e6b16e23f73f4123"
    [request] = provider.received
    assert request.headers["x-tc-action"] == "SendSms"
    assert request.headers["authorization"].startswith("TC3-HMAC-SHA256 Credential=AKID-test/")
    assert request.json() == {
        "PhoneNumberSet": ["+8613800000001"], "SmsSdkAppId": "1400000000", "SignName": "社区咨询",
        "TemplateId": ALL_TEMPLATES[NoticeKind.VERIFICATION_CODE], "TemplateParamSet": ["123456"],
        "SessionContext": "42",
    }


def test_tencent_tells_a_refusal_from_a_passing_fault() -> None:
    def status(code: str) -> dict[str, Any]:
        return {"Response": {"SendStatusSet": [{"SerialNo": "", "Code": code, "Message": code}], "RequestId": "r"}}

    error = {"Response": {"Error": {"Code": "InternalError.Timeout", "Message": "timeout"}, "RequestId": "r"}}
    with fake_provider((200, status("InvalidParameterValue.IncorrectPhoneNumber")),
                       (200, status("LimitExceeded.PhoneNumberDailyLimit")), (200, error)) as provider, \
            override_settings(**tencent_settings(provider.endpoint)):
        backend = tencent.SmsBackend()
        with pytest.raises(SmsRejected, match="IncorrectPhoneNumber"):
            backend.send(code_message())
        for _passing in range(2):
            with pytest.raises(SmsError) as passing:
                backend.send(code_message())
            assert not isinstance(passing.value, SmsRejected)


@pytest.mark.parametrize("backend", ["aliyun", "tencent"])
def test_a_provider_chosen_but_not_configured_stops_the_start(backend: str) -> None:
    config = apps.get_app_config("notices")
    with override_settings(SMS_BACKEND=f"notices.backends.{backend}.SmsBackend", SMS_SIGN_NAME="", SMS_TEMPLATES={}):
        with pytest.raises(ImproperlyConfigured) as error:
            config.ready()
    assert "SMS_SIGN_NAME is not set" in str(error.value)
    assert "SMS_TEMPLATE_VERIFICATION_CODE" in str(error.value)


def test_a_provider_missing_one_template_code_stops_the_start() -> None:
    config = apps.get_app_config("notices")
    partial = {k: v for k, v in ALL_TEMPLATES.items() if k != NoticeKind.CASE_ACCEPTED}
    with override_settings(**{**aliyun_settings("dysmsapi.aliyuncs.com"), "SMS_TEMPLATES": partial}):
        with pytest.raises(ImproperlyConfigured, match="SMS_TEMPLATE_CASE_ACCEPTED"):
            config.ready()
    with override_settings(**aliyun_settings("dysmsapi.aliyuncs.com")):
        config.ready()  # all there: starts
