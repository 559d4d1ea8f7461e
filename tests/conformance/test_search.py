"""POST /vector_stores/{id}/search: result page shape, string and array queries,
max_num_results, ranking_options.score_threshold, attribute filters (comparison and
compound), rewrite_query, validation, last_active_at refresh, tenancy (NOTES.md §10)."""

import time

import openai
import pytest

from helpers import check_search_page, expect_error, expect_http_error, raw, upload_bytes, wait_vector_store

ANIMALS = ["aardvark", "badger", "caracal", "dingo", "echidna", "fennec"]


@pytest.fixture
def zoo(client):
    """Six files, one per animal, each with attributes {animal, n, even, region}."""
    files = []
    for i, a in enumerate(ANIMALS):
        text = (f"Field notes number {i}. The {a} was observed near the river at dawn. "
                f"Everyone agrees the {a} is a remarkable zoo animal. ") + "Unrelated filler sentence. " * 20
        files.append(upload_bytes(client, text.encode(), f"{a}.txt"))
    vs = client.vector_stores.create(name="zoo")
    for i, (a, f) in enumerate(zip(ANIMALS, files)):
        client.vector_stores.files.create(vector_store_id=vs.id, file_id=f.id, attributes={
            "animal": a, "n": i, "even": i % 2 == 0, "region": ["africa", "australia", "asia"][i % 3]})
    wait_vector_store(client, vs.id)
    vs.files_by_animal = {a: f for a, f in zip(ANIMALS, files)}
    return vs


def names(page) -> list:
    return [r["filename"] for r in raw(page)["data"]]


def test_shape(client, zoo):
    page = client.vector_stores.search(zoo.id, query="caracal")
    d = check_search_page(page)
    assert d["search_query"] == ["caracal"]
    assert d["data"], d
    top = d["data"][0]
    assert top["filename"] == "caracal.txt" and top["file_id"] == zoo.files_by_animal["caracal"].id
    assert top["attributes"] == {"animal": "caracal", "n": 2, "even": True, "region": "asia"}
    assert "caracal" in top["content"][0]["text"]
    assert all("caracal" in r["content"][0]["text"] for r in d["data"])


def test_array_query(client, zoo, http):
    r = http.post(f"/vector_stores/{zoo.id}/search", json={"query": ["dingo", "fennec"]})
    assert r.status_code == 200, r.text
    d = check_search_page(r.json())
    assert d["search_query"] == ["dingo", "fennec"]
    assert {"dingo.txt", "fennec.txt"} <= set(x["filename"] for x in d["data"])


def test_max_num_results(client, zoo, http):
    d = check_search_page(client.vector_stores.search(zoo.id, query="zoo animal river", max_num_results=2))
    assert len(d["data"]) == 2
    d = check_search_page(client.vector_stores.search(zoo.id, query="zoo animal river"))
    assert len(d["data"]) == 6  # default 10, six matching chunks
    for n, code in ((0, 400), (51, 400)):
        expect_http_error(http.post(f"/vector_stores/{zoo.id}/search", json={"query": "x", "max_num_results": n}),
                          code, type="invalid_request_error", param="max_num_results")
    r = http.post(f"/vector_stores/{zoo.id}/search", json={"query": "zoo", "max_num_results": 50})
    assert r.status_code == 200


def test_default_max_is_10(client):
    vs = client.vector_stores.create(name="many")
    files = [upload_bytes(client, f"Common word gazelle in document {i}.".encode(), f"g{i}.txt") for i in range(14)]
    client.vector_stores.file_batches.create_and_poll(vector_store_id=vs.id, file_ids=[f.id for f in files],
                                                      poll_interval_ms=50)
    d = check_search_page(client.vector_stores.search(vs.id, query="gazelle"))
    assert len(d["data"]) == 10, len(d["data"])
    assert len(check_search_page(client.vector_stores.search(vs.id, query="gazelle", max_num_results=50))["data"]) == 14


def test_score_threshold(client, zoo, http):
    d = check_search_page(client.vector_stores.search(zoo.id, query="badger river dawn"))
    scores = [x["score"] for x in d["data"]]
    assert len(scores) >= 2 and scores[0] > scores[-1], scores
    cut = (scores[0] + scores[-1]) / 2
    kept = check_search_page(client.vector_stores.search(zoo.id, query="badger river dawn",
                                                         ranking_options={"score_threshold": cut}))
    assert kept["data"] and all(x["score"] >= cut for x in kept["data"])
    assert len(kept["data"]) == sum(s >= cut for s in scores)
    none = check_search_page(client.vector_stores.search(zoo.id, query="badger", ranking_options={
        "score_threshold": 1.0}))
    assert all(x["score"] >= 1.0 for x in none["data"])
    for bad in (-0.1, 1.5):
        expect_http_error(http.post(f"/vector_stores/{zoo.id}/search", json={
            "query": "x", "ranking_options": {"score_threshold": bad}}), 400, type="invalid_request_error")
    for ranker in ("none", "auto", "default-2024-11-15"):
        r = http.post(f"/vector_stores/{zoo.id}/search", json={"query": "badger", "ranking_options": {"ranker": ranker}})
        assert r.status_code == 200, (ranker, r.text)
    expect_http_error(http.post(f"/vector_stores/{zoo.id}/search", json={
        "query": "x", "ranking_options": {"ranker": "bogus"}}), 400, type="invalid_request_error")


FILTERS = [
    ({"type": "eq", "key": "animal", "value": "dingo"}, {"dingo"}),
    ({"type": "ne", "key": "animal", "value": "dingo"}, set(ANIMALS) - {"dingo"}),
    ({"type": "gt", "key": "n", "value": 3}, {"echidna", "fennec"}),
    ({"type": "gte", "key": "n", "value": 3}, {"dingo", "echidna", "fennec"}),
    ({"type": "lt", "key": "n", "value": 2}, {"aardvark", "badger"}),
    ({"type": "lte", "key": "n", "value": 1.5}, {"aardvark", "badger"}),
    ({"type": "eq", "key": "even", "value": True}, {"aardvark", "caracal", "echidna"}),
    ({"type": "in", "key": "region", "value": ["africa", "asia"]}, {"aardvark", "caracal", "dingo", "fennec"}),
    ({"type": "nin", "key": "region", "value": ["africa", "asia"]}, {"badger", "echidna"}),
    ({"type": "eq", "key": "missing", "value": "x"}, set()),
    ({"type": "and", "filters": [{"type": "eq", "key": "even", "value": True},
                                 {"type": "gte", "key": "n", "value": 2}]}, {"caracal", "echidna"}),
    ({"type": "or", "filters": [{"type": "eq", "key": "animal", "value": "badger"},
                                {"type": "eq", "key": "region", "value": "asia"}]}, {"badger", "caracal", "fennec"}),
    ({"type": "or", "filters": [{"type": "and", "filters": [{"type": "lt", "key": "n", "value": 2},
                                                            {"type": "eq", "key": "even", "value": False}]},
                                {"type": "eq", "key": "animal", "value": "fennec"}]}, {"badger", "fennec"}),
]


@pytest.mark.parametrize("flt,expected", FILTERS, ids=[f"{i}-{f['type']}" for i, (f, _) in enumerate(FILTERS)])
def test_filters(client, zoo, flt, expected):
    d = check_search_page(client.vector_stores.search(zoo.id, query="zoo animal river", filters=flt,
                                                      max_num_results=50))
    got = {x["attributes"]["animal"] for x in d["data"]}
    assert got == expected, (flt, got)


def test_filter_applies_before_the_result_limit(client):
    """A filter narrows the searched files: a matching file is found even when 60 better
    matches for the query are filtered out."""
    vs = client.vector_stores.create(name="filter-depth")
    strong = [upload_bytes(client, ("heron heron heron heron " + f"strong document {i}").encode(), f"s{i}.txt")
              for i in range(60)]
    weak = upload_bytes(client, ("heron " + "plain filler text words " * 30).encode(), "weak.txt")
    client.vector_stores.file_batches.create_and_poll(vector_store_id=vs.id, file_ids=[f.id for f in strong],
                                                      attributes={"kind": "strong"}, poll_interval_ms=50)
    client.vector_stores.files.create_and_poll(file_id=weak.id, vector_store_id=vs.id, attributes={"kind": "weak"},
                                               poll_interval_ms=50)
    d = check_search_page(client.vector_stores.search(vs.id, query="heron", max_num_results=5,
                                                      filters={"type": "eq", "key": "kind", "value": "weak"}))
    assert [x["file_id"] for x in d["data"]] == [weak.id], d


def test_filter_validation(client, zoo, http):
    for bad in ({"type": "zz", "key": "a", "value": 1}, {"type": "eq", "value": 1}, {"type": "eq", "key": "a"},
                {"type": "and"}, "eq"):
        r = http.post(f"/vector_stores/{zoo.id}/search", json={"query": "x", "filters": bad})
        body = expect_http_error(r, 400, type="invalid_request_error")
        assert (body["param"] or "").startswith("filters"), (bad, body)


def test_rewrite_query_accepted(client, zoo, http):
    r = http.post(f"/vector_stores/{zoo.id}/search", json={"query": "echidna", "rewrite_query": True})
    assert r.status_code == 200, r.text
    d = check_search_page(r.json())
    assert len(d["search_query"]) >= 1 and d["data"][0]["filename"] == "echidna.txt"


def test_validation(client, zoo, http):
    expect_http_error(http.post(f"/vector_stores/{zoo.id}/search", json={}), 400, type="invalid_request_error",
                      param="query")
    expect_http_error(http.post(f"/vector_stores/{zoo.id}/search", json={"query": 5}), 400,
                      type="invalid_request_error", param="query")
    expect_http_error(http.post(f"/vector_stores/{zoo.id}/search", json={"query": "x", "bogus": 1}), 400,
                      type="invalid_request_error")
    expect_http_error(http.post("/vector_stores/vs_nope/search", json={"query": "x"}), 404,
                      type="invalid_request_error")


def test_no_match_and_empty_store(client, zoo):
    d = check_search_page(client.vector_stores.search(zoo.id, query="xylophone"))
    assert d["data"] == [] and d["has_more"] is False and d["next_page"] is None
    empty = client.vector_stores.create(name="empty")
    assert check_search_page(client.vector_stores.search(empty.id, query="anything"))["data"] == []


def test_stopword_only_query_does_not_fail(client, zoo):
    d = check_search_page(client.vector_stores.search(zoo.id, query="the of and"))
    assert isinstance(d["data"], list)


def test_special_characters_in_query(client, zoo):
    for q in ('"unbalanced', "NEAR(a b)", "a* OR -b", "dingo AND (", "col:umn", "'; DROP TABLE chunks; --", "ü ñ 中文"):
        check_search_page(client.vector_stores.search(zoo.id, query=q))


def test_search_refreshes_last_active_at(client):
    vs = client.vector_stores.create(name="active", expires_after={"anchor": "last_active_at", "days": 1})
    before = raw(vs)
    time.sleep(1.1)
    client.vector_stores.search(vs.id, query="anything")
    after = raw(client.vector_stores.retrieve(vs.id))
    assert after["last_active_at"] > before["last_active_at"], (before, after)
    assert after["expires_at"] == after["last_active_at"] + 86400


def test_tenancy(keyed_server):
    srv, (t1, t2) = keyed_server(2)
    c1, c2 = t1.client(), t2.client()
    f = upload_bytes(c1, b"Only tenant one knows about the pangolin.", "p.txt")
    vs = c1.vector_stores.create(file_ids=[f.id])
    wait_vector_store(c1, vs.id)
    assert c1.vector_stores.search(vs.id, query="pangolin").data
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.search(vs.id, query="pangolin")
    own = c2.vector_stores.create()
    assert c2.vector_stores.search(own.id, query="pangolin").data == []
