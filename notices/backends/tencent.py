"""Tencent Cloud SMS (sms 2021-01-11) through its official SDK.

SendSms has no idempotency key (SessionContext only comes back in delivery reports): delivery is
at most once (notices/services.py).
"""

from __future__ import annotations

from django.conf import settings

from notices.backends.base import BaseSmsBackend, SmsError, SmsMessage, SmsRejected, endpoint_and_scheme
from notices.kinds import template_for

TIMEOUT_S = 10


def international(phone: str) -> str:
    """Tencent wants E.164; the project stores mainland numbers as 11 digits."""
    return phone if phone.startswith("+") else f"+86{phone}"


class SmsBackend(BaseSmsBackend):
    provider = True
    required_settings = ("TENCENT_SMS_SECRET_ID", "TENCENT_SMS_SECRET_KEY", "TENCENT_SMS_SDK_APP_ID")

    def __init__(self) -> None:
        from tencentcloud.common.credential import Credential
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile
        from tencentcloud.sms.v20210111.sms_client import SmsClient

        endpoint, scheme = endpoint_and_scheme(settings.TENCENT_SMS_ENDPOINT)
        http = HttpProfile(protocol=scheme, endpoint=endpoint, reqTimeout=TIMEOUT_S)
        self.client = SmsClient(
            Credential(settings.TENCENT_SMS_SECRET_ID, settings.TENCENT_SMS_SECRET_KEY),
            settings.TENCENT_SMS_REGION,
            ClientProfile(httpProfile=http),
        )

    def request(self, message: SmsMessage) -> object:
        from tencentcloud.sms.v20210111.models import SendSmsRequest

        request = SendSmsRequest()
        request.PhoneNumberSet = [international(message.phone)]
        request.SmsSdkAppId = settings.TENCENT_SMS_SDK_APP_ID
        request.SignName = settings.SMS_SIGN_NAME
        request.TemplateId = self.template_code(message.kind)
        # A list in the template's order ({1}, {2}, ...), not a mapping.
        request.TemplateParamSet = [str(message.params.get(name, "")) for name in template_for(message.kind).params]
        if message.reference:
            request.SessionContext = message.reference
        return request

    def send(self, message: SmsMessage) -> str:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

        request = self.request(message)
        try:
            response = self.client.SendSms(request)
        except TencentCloudSDKException as error:
            code = str(error.code or "")
            text = f"Tencent Cloud: {code}: {error.message}"
            passing = code.startswith(("LimitExceeded", "InternalError", "RequestLimitExceeded")) or "Network" in code
            raise (SmsError if passing or not code else SmsRejected)(text) from error
        except Exception as error:
            raise SmsError(f"Tencent Cloud: {type(error).__name__}: {error}") from error
        statuses = response.SendStatusSet or []
        if not statuses:
            raise SmsError("Tencent Cloud answered without a status")
        status = statuses[0]
        if status.Code != "Ok":
            text = f"Tencent Cloud answered {status.Code}: {status.Message}"
            passing = str(status.Code).startswith(("LimitExceeded", "InternalError"))
            raise (SmsError if passing else SmsRejected)(text)
        return str(status.SerialNo or "")
