"""The consent texts the platform starts with. Version 1 of each is the single sentence the
intakes showed before the texts were versioned (the consents given then point at it); version 2
is the first full text, telling the purpose and the necessity (PIPL arts. 17, 29, 30).

A published text is never edited: a new wording is a new version, added in the admin ("Consent
texts"). These are created when the table has none of a purpose (migration, or a test database
emptied between tests).
"""

from __future__ import annotations

from typing import TypedDict


class InitialText(TypedDict):
    purpose: str
    version: int
    title_zh: str
    title_en: str
    body_zh: str
    body_en: str
    agree_zh: str
    agree_en: str


INITIAL: list[InitialText] = [
    {
        "purpose": "health",
        "version": 1,
        "title_zh": "同意处理健康信息",
        "title_en": "Consent to process health information",
        "body_zh": "",
        "body_en": "",
        "agree_zh": "我同意本服务的医生查看并保存我发送的健康信息和材料，只用于回答这次咨询。",
        "agree_en": (
            "I agree that the doctors of this service read and keep the health information and documents I send, "
            "only to answer this consultation."
        ),
    },
    {
        "purpose": "health",
        "version": 2,
        "title_zh": "单独同意：处理您的健康信息（敏感个人信息）",
        "title_en": "Separate consent: your health information (sensitive personal information)",
        "body_zh": (
            "病情、既往病史、用药、过敏情况、检查报告和影像都属于敏感个人信息。使用之前，我们单独征求您的同意。\n\n"
            "用途：只用于本服务的医生阅读并答复这次咨询，以及让您在这里查看进展。不作其他用途，不出售，也不提供给其他人。\n\n"
            "为什么需要：医生不了解病情就无法判断。没有这些信息，我们无法在网上帮您；您仍然可以直接去医院就诊。\n\n"
            "谁能看到：接手您案件的医生和医疗服务的协调员。工作人员每次查看都有记录，并显示在您的案件页面上。\n\n"
            "保存多久：案件关闭或撤回后，按本服务公布的保存期限保存，期满后删除其中的个人信息。"
            "您可以查阅、复制、更正或要求删除您的信息，也可以撤回本同意（撤回不影响撤回前的处理）。"
        ),
        "body_en": (
            "Symptoms, past illnesses, medicines, allergies, exam reports and images are sensitive personal "
            "information. We ask for your separate consent before using them.\n\n"
            "What for: only so that a doctor of this service can read and answer this consultation, and so that "
            "you can follow it here. Nothing else: it is not sold or given to anyone else.\n\n"
            "Why it is needed: a doctor cannot judge a health problem without knowing it. Without this "
            "information we cannot help you online; you can still see a doctor at a hospital.\n\n"
            "Who sees it: the doctor who takes your case and the coordinators of the medical service. Every look "
            "by staff is recorded and shown on your case page.\n\n"
            "How long: after the case is closed or withdrawn it is kept for the period the service announces, "
            "then the personal details are removed. You may see, copy, correct or ask us to erase your "
            "information, and withdraw this consent (what was done before stays lawful)."
        ),
        "agree_zh": "我已阅读以上内容，单独同意为这次咨询处理我的健康信息。",
        "agree_en": "I have read the above and separately agree that my health information is processed for this "
        "consultation.",
    },
    {
        "purpose": "share_employer",
        "version": 1,
        "title_zh": "同意向用人单位提供情况",
        "title_en": "Consent to share the details with the employer",
        "body_zh": "",
        "body_en": "",
        "agree_zh": "我同意工会律师为了调解，把这些情况告诉我的用人单位。",
        "agree_en": "I agree that the union lawyer shares these details with my employer to mediate.",
    },
    {
        "purpose": "share_employer",
        "version": 2,
        "title_zh": "单独同意：把您的情况提供给用人单位",
        "title_en": "Separate consent: giving your details to your employer",
        "body_zh": (
            "为了调解，工会律师会告诉您的用人单位您是谁、您的请求：姓名、岗位和工作时间、发生了什么、"
            "涉及的金额，以及证明这些所需的材料。\n\n"
            "用途：只用于和用人单位解决这次争议，不作其他用途；健康方面的信息只提供请求所必需的部分（例如请病假工资时的病假条）。\n\n"
            "为什么需要：用人单位不知道您的请求，就无法调解。不同意的话工会无法为您调解；您仍然可以自己申请劳动仲裁。\n\n"
            "谁会收到：您案件中填写的用人单位（通过其联系人）。"
        ),
        "body_en": (
            "To mediate, the union lawyer tells your employer who you are and what you ask for: your name, your "
            "job and dates of work, what happened, the amounts, and the documents that prove them.\n\n"
            "What for: only to settle this dispute with your employer, nothing else; of your health, only what "
            "the claim needs (a sick-leave note for sick pay).\n\n"
            "Why it is needed: there is no mediation without the employer knowing the claim. Without this "
            "consent the union cannot mediate; you can still apply for labour arbitration yourself.\n\n"
            "Who receives it: the employer named in your case, through its contact person."
        ),
        "agree_zh": "我已阅读以上内容，同意工会律师为了调解把这些情况提供给我的用人单位。",
        "agree_en": "I have read the above and agree that the union lawyer gives these details to my employer to "
        "mediate.",
    },
]
