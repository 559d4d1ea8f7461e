"""Cursor pagination (limit/order/after/before/has_more/first_id/last_id) on the
assistants, messages and files lists. Each test runs in an empty project of its own."""

import io

import pytest

from helpers import MODEL, check_list, expect_http_error

N = 25


@pytest.fixture
def assistants(client):
    # created back to back: many share one created_at second
    made = [client.beta.assistants.create(model=MODEL, name=f"p{i:02d}") for i in range(N)]
    return [a.id for a in made]


def walk(http, path, limit, order, params=None):
    """Walk a list with after=last_id; returns (ids, pages)."""
    ids, pages, after = [], [], None
    for _ in range(100):
        q = {"limit": limit, "order": order, **(params or {})}
        if after:
            q["after"] = after
        r = http.get(path, params=q)
        assert r.status_code == 200, r.text
        body = check_list(r.json())
        pages.append(body)
        assert len(body["data"]) <= limit
        ids += [x["id"] for x in body["data"]]
        if not body["has_more"]:
            break
        assert len(body["data"]) == limit, "a page with has_more=true should be full"
        after = body["last_id"]
    return ids, pages


def test_many_share_a_second(client, assistants):
    created = [client.beta.assistants.retrieve(i).created_at for i in assistants]
    assert created == sorted(created)
    # the point of the fixture: several objects share one created_at second
    assert len(set(created)) < len(created)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_walk_assistants(http, assistants, order):
    ids, pages = walk(http, "/assistants", 7, order)
    expected = assistants if order == "asc" else list(reversed(assistants))
    assert ids == expected, "complete, in creation order, no duplicates"
    assert len(pages) == 4
    assert [len(p["data"]) for p in pages] == [7, 7, 7, 4]
    assert [p["has_more"] for p in pages] == [True, True, True, False]


def test_after_last_id_is_empty(http, assistants):
    for order in ("asc", "desc"):
        last = assistants[-1] if order == "asc" else assistants[0]
        body = check_list(http.get("/assistants", params={"order": order, "after": last}).json())
        assert body["data"] == [] and body["has_more"] is False
        assert body["first_id"] is None and body["last_id"] is None


def test_before_cursor(http, assistants):
    body = check_list(http.get("/assistants", params={"order": "asc", "limit": 7,
                                                      "before": assistants[20]}).json())
    assert [x["id"] for x in body["data"]] == assistants[13:20]
    desc = list(reversed(assistants))
    body = check_list(http.get("/assistants", params={"order": "desc", "limit": 7,
                                                      "before": desc[10]}).json())
    assert [x["id"] for x in body["data"]] == desc[3:10]
    # before the first item: nothing
    body = check_list(http.get("/assistants", params={"order": "asc", "before": assistants[0]}).json())
    assert body["data"] == []


def test_after_cursor_middle(http, assistants):
    body = check_list(http.get("/assistants", params={"order": "asc", "limit": 5,
                                                      "after": assistants[9]}).json())
    assert [x["id"] for x in body["data"]] == assistants[10:15]
    assert body["has_more"] is True


def test_default_limit_is_20(http, assistants):
    body = check_list(http.get("/assistants").json())
    assert len(body["data"]) == 20
    assert body["has_more"] is True
    assert [x["id"] for x in body["data"]] == list(reversed(assistants))[:20]


def test_limit_100_and_1(http, assistants):
    body = check_list(http.get("/assistants", params={"limit": 100}).json())
    assert len(body["data"]) == N and body["has_more"] is False
    body = check_list(http.get("/assistants", params={"limit": 1, "order": "asc"}).json())
    assert [x["id"] for x in body["data"]] == assistants[:1] and body["has_more"] is True


def test_sdk_auto_paging(client, assistants):
    got = [a.id for a in client.beta.assistants.list(limit=7)]
    assert got == list(reversed(assistants))
    got = [a.id for a in client.beta.assistants.list(limit=7, order="asc")]
    assert got == assistants
    page = client.beta.assistants.list(limit=7, order="asc")
    pages = list(page.iter_pages())
    assert [len(p.data) for p in pages] == [7, 7, 7, 4]


def test_walk_messages(client, http):
    t = client.beta.threads.create()
    made = [client.beta.threads.messages.create(t.id, role="user", content=f"m{i}").id for i in range(N)]
    ids, pages = walk(http, f"/threads/{t.id}/messages", 7, "asc")
    assert ids == made
    ids, _ = walk(http, f"/threads/{t.id}/messages", 7, "desc")
    assert ids == list(reversed(made))
    assert [m.id for m in client.beta.threads.messages.list(t.id, limit=6, order="asc")] == made


def test_walk_files(client, http):
    made = [client.files.create(file=(f"f{i}.txt", io.BytesIO(b"x")), purpose="assistants").id
            for i in range(12)]
    ids, pages = walk(http, "/files", 5, "asc")
    assert ids == made
    ids, _ = walk(http, "/files", 5, "desc")
    assert ids == list(reversed(made))
    # default limit 10000: all at once
    body = http.get("/files").json()
    assert [x["id"] for x in body["data"]] == list(reversed(made))
    assert body["has_more"] is False
    assert http.get("/files", params={"limit": 10000}).status_code == 200


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
def test_invalid_limit(http, limit):
    expect_http_error(http.get("/assistants", params={"limit": limit}), 400, type="invalid_request_error",
                      param="limit")


@pytest.mark.parametrize("limit", ["0", "10001", "x"])
def test_invalid_files_limit(http, limit):
    expect_http_error(http.get("/files", params={"limit": limit}), 400, param="limit")


def test_invalid_order(http):
    expect_http_error(http.get("/assistants", params={"order": "sideways"}), 400, type="invalid_request_error",
                      param="order")


def test_invalid_limit_on_messages(http, client):
    t = client.beta.threads.create()
    expect_http_error(http.get(f"/threads/{t.id}/messages", params={"limit": "500"}), 400, param="limit")
