"""The API's message history pages forwards from `after` and backwards from `before`, 500 at a time."""

from __future__ import annotations

from consult.models import Case, Message, User
from tests.api.conftest import API, token_client, token_for


def test_it_pages_back_from_the_newest_with_before_and_forward_with_after(case: Case, alice: User) -> None:
    Message.objects.filter(case=case).delete()  # the system lines of its submission
    Message.objects.bulk_create(
        Message(case=case, seq=n, sender=alice, body=f"第{n}条") for n in range(1, 1201)
    )
    Case.objects.filter(pk=case.pk).update(last_seq=1200)
    client = token_client(token_for(alice))

    def seqs(query: str) -> list[int]:
        response = client.get(f"{API}cases/{case.reference}/messages/?{query}")
        assert response.status_code == 200
        return [m["seq"] for m in response.json()]

    assert seqs("before=1201") == list(range(701, 1201))  # the newest 500, oldest first
    assert seqs("before=701") == list(range(201, 701))
    assert seqs("before=201") == list(range(1, 201))
    assert seqs("before=1") == []
    assert seqs("after=0") == list(range(1, 501))
    assert seqs("after=1000") == list(range(1001, 1201))
    assert seqs("after=100&before=110") == list(range(101, 110))
