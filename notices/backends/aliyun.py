"""Alibaba Cloud SMS (dysmsapi 2017-05-25) through its official SDK.

SendSms has no idempotency key (OutId only comes back in delivery reports), so a message the
provider took but whose answer never reached us cannot be told from one it never got: delivery
is at most once (notices/services.py).
"""

from __future__ import annotations

import json

from django.conf import settings

from notices.backends.base import BaseSmsBackend, SmsError, SmsMessage, SmsRejected, endpoint_and_scheme

# Answers that another try would get again (a bad number, template or signature, a blocked word).
REJECTED = {
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
    "isv.INVALID_PARAMETERS",
    "isv.INVALID_JSON_PARAM",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.SMS_TEST_NUMBER_LIMIT",
}
TIMEOUT_MS = 10_000


class SmsBackend(BaseSmsBackend):
    provider = True
    required_settings = ("ALIYUN_SMS_ACCESS_KEY_ID", "ALIYUN_SMS_ACCESS_KEY_SECRET")

    def __init__(self) -> None:
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        endpoint, scheme = endpoint_and_scheme(settings.ALIYUN_SMS_ENDPOINT)
        self.client = Client(
            Config(
                access_key_id=settings.ALIYUN_SMS_ACCESS_KEY_ID,
                access_key_secret=settings.ALIYUN_SMS_ACCESS_KEY_SECRET,
                endpoint=endpoint,
                protocol=scheme,
                connect_timeout=TIMEOUT_MS,
                read_timeout=TIMEOUT_MS,
            )
        )

    def request(self, message: SmsMessage) -> object:
        from alibabacloud_dysmsapi20170525.models import SendSmsRequest

        return SendSmsRequest(
            phone_numbers=message.phone,
            sign_name=settings.SMS_SIGN_NAME,
            template_code=self.template_code(message.kind),
            template_param=json.dumps(message.params, ensure_ascii=False),
            out_id=message.reference or None,
        )

    def send(self, message: SmsMessage) -> str:
        from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
        from darabonba.runtime import RuntimeOptions

        request = self.request(message)
        try:
            # autoretry off: our job retries, with its waits, and counts every try on the notice.
            response = self.client.send_sms_with_options(
                request, RuntimeOptions(autoretry=False, connect_timeout=TIMEOUT_MS, read_timeout=TIMEOUT_MS)
            )
        except ThrottlingException as error:
            raise SmsError(f"Alibaba Cloud throttled: {error}") from error
        except ClientException as error:
            raise SmsRejected(f"Alibaba Cloud refused: {error}") from error
        except Exception as error:  # network, its server: the SDK raises many kinds
            raise SmsError(f"Alibaba Cloud: {type(error).__name__}: {error}") from error
        body = response.body
        if body is None or body.code != "OK":
            code = getattr(body, "code", None)
            text = f"Alibaba Cloud answered {code}: {getattr(body, 'message', '')}"
            raise (SmsRejected if code in REJECTED else SmsError)(text)
        return str(body.biz_id or "")
