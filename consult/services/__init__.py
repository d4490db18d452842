"""Every write to accounts, cases, documents and messages. Views, consumers, admin actions and
commands call these.

Services assume the caller already passed `case_get_for_user` where a user reached the case by its
reference; they still check the role rules (only the assignee accepts, only a coordinator
reassigns), because those are business rules, not visibility.
"""

from consult.services.accounts import (
    coordinator_create,
    professional_create,
    professional_set_on_duty,
    resident_signup,
)
from consult.services.cases import (
    _transition,
    case_accept,
    case_claim_next,
    case_close,
    case_decline,
    case_details_edit,
    case_fill,
    case_reassign,
    case_reopen,
    case_resolve,
    case_submit,
    case_sweep_unaccepted,
    case_withdraw,
    cases_fill_free_slots,
    eligible_professionals,
    reopen_deadline,
)
from consult.services.documents import (
    can_upload,
    document_add,
    document_record_view,
    document_verify,
    documents_for_intake,
    documents_sweep_orphans,
    summary_generate,
)
from consult.services.public import (
    case_track_counted,
    poster_create,
    poster_pdf,
    poster_url,
    rating_skip,
    rating_submit,
)
from consult.services.timeline import record_event

__all__ = [
    "_transition",
    "can_upload",
    "case_accept",
    "case_claim_next",
    "case_close",
    "case_decline",
    "case_details_edit",
    "case_fill",
    "case_reassign",
    "case_reopen",
    "case_resolve",
    "case_submit",
    "case_sweep_unaccepted",
    "case_track_counted",
    "case_withdraw",
    "cases_fill_free_slots",
    "coordinator_create",
    "document_add",
    "document_record_view",
    "document_verify",
    "documents_for_intake",
    "documents_sweep_orphans",
    "eligible_professionals",
    "poster_create",
    "poster_pdf",
    "poster_url",
    "professional_create",
    "professional_set_on_duty",
    "rating_skip",
    "rating_submit",
    "record_event",
    "reopen_deadline",
    "resident_signup",
    "summary_generate",
]
