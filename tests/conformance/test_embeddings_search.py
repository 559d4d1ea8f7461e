"""file_search with an embedding model configured (ASSISTANTS_EMBEDDING_MODEL): chunks are
embedded through the upstream's /v1/embeddings at ingestion, queries at search time, and the
vector ranking is fused with full-text ranking."""
import io

import pytest

from helpers import wait_ingested


@pytest.fixture
def embedded(server_factory):
    return server_factory(name="embeddings", extra_env={"ASSISTANTS_EMBEDDING_MODEL": "embed-small"})


def test_embeddings_are_computed_and_fused(embedded, upstream):
    client = embedded.client()
    texts = {
        "a.txt": b"Penguins live in Antarctica and eat krill and fish.",
        "b.txt": b"The stock market closed higher on Friday after strong earnings.",
        "c.txt": b"Bread is baked from flour, water, salt and yeast.",
    }
    ids = {name: client.files.create(file=(name, io.BytesIO(data)), purpose="assistants").id for name, data in texts.items()}
    store = client.vector_stores.create(name="emb", file_ids=list(ids.values()))
    store = wait_ingested(client, store.id, timeout=30, interval=0.1)
    assert store.file_counts.completed == 3, store.file_counts
    embedded_inputs = [r for r in upstream.requests if r.path.endswith("/embeddings")]
    assert embedded_inputs, "no chunk was embedded"
    assert embedded_inputs[0].body["model"] == "embed-small"

    before = len([r for r in upstream.requests if r.path.endswith("/embeddings")])
    page = client.vector_stores.search(store.id, query="penguins krill")
    assert page.data and page.data[0].file_id == ids["a.txt"]
    assert all(0 <= item.score <= 1 for item in page.data)
    # the query itself was embedded too
    assert len([r for r in upstream.requests if r.path.endswith("/embeddings")]) > before
    # a query no word of which is in the files still ranks by vectors (bag-of-words hashing collides), without failing
    assert client.vector_stores.search(store.id, query="zzzz qqqq").object == "vector_store.search_results.page"
