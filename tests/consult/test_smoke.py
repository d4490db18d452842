from __future__ import annotations

from consult.models import Status


def test_a_submitted_case_is_assigned_to_the_doctor_on_duty(case, doctor):
    assert case.status == Status.ASSIGNED
    assert case.assignee == doctor


def test_home_lists_the_catalogue_in_chinese(login, respiratory):
    response = login(None).get("/")
    assert response.status_code == 200
    assert "呼吸科" in response.content.decode()
