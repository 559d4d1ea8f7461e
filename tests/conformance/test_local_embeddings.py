"""Local embeddings by default (issue 16): with the local model installed with embeddings
(scripts/install-local-model.sh --with-embeddings) and no embedding model configured, file_search
embeds with all-MiniLM-L6-v2 through a llama-server of its own, with no upstream at all. A
question that shares no word with its passage then finds it, which full text alone cannot.

Skipped when the embedding model is not installed.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from helpers import wait_ingested

CACHE = Path(os.environ.get("ASSISTANTS_MODEL_CACHE") or Path.home() / ".cache" / "assistants-server")


def _embedding_model():
    try:
        manifest = json.loads((CACHE / "local-model.json").read_text())
    except (OSError, ValueError):
        return None
    model = manifest.get("embedding_model")
    if not model or not Path(model["path"]).exists() or not Path(manifest["llama_server"]).exists():
        return None
    return model


pytestmark = pytest.mark.skipif(_embedding_model() is None,
                                reason="the local embedding model is not installed (install-local-model.sh --with-embeddings)")

PASSAGES = {
    "cats.txt": "The feline curled up on the rug beside the fireplace and dozed through the afternoon.",
    "money.txt": "Quarterly revenue climbed as exports to overseas markets grew faster than expected.",
    "weather.txt": "Heavy rainfall flooded the valley roads, and the authorities closed two bridges.",
    "cooking.txt": "Knead the dough for ten minutes, let it rise, then bake it until the crust is golden.",
}
# Each question shares no word with its passage.
QUESTIONS = {
    "cats.txt": "Where did my kitty nap?",
    "money.txt": "company sales increase abroad",
    "weather.txt": "storm water made streets impassable",
    "cooking.txt": "how do I make bread",
}


def _ranked_files(client, store_id, query):
    return [item.file_id for item in client.vector_stores.search(store_id, query=query, max_num_results=4).data]


def test_paraphrased_questions_find_their_passages_without_an_upstream(server_factory):
    server = server_factory(name="local-embeddings", upstream_url=None, extra_env={"ASSISTANTS_LOCAL_MODEL": "on"})
    client = server.client(timeout=120)
    ids = {name: client.files.create(file=(name, io.BytesIO(text.encode())), purpose="assistants").id
           for name, text in PASSAGES.items()}
    store = client.vector_stores.create(name="paraphrase", file_ids=list(ids.values()))
    store = wait_ingested(client, store.id, timeout=120, interval=0.2)
    assert store.file_counts.completed == len(PASSAGES), store.file_counts
    for name, question in QUESTIONS.items():
        ranked = _ranked_files(client, store.id, question)
        assert ranked and ranked[0] == ids[name], f"{question!r}: got {ranked}, expected {ids[name]} ({name}) first"
    # The embedding llama-server was started by this server, with the installed model.
    log = server.log_path.read_text(errors="replace")
    assert "all-minilm" in log.lower(), log[-2000:]


def test_embedding_model_none_keeps_full_text_only(server_factory):
    server = server_factory(name="local-embeddings-off", upstream_url=None,
                            extra_env={"ASSISTANTS_LOCAL_MODEL": "on", "ASSISTANTS_EMBEDDING_MODEL": "none"})
    client = server.client(timeout=120)
    ids = {name: client.files.create(file=(name, io.BytesIO(text.encode())), purpose="assistants").id
           for name, text in PASSAGES.items()}
    store = wait_ingested(client, client.vector_stores.create(name="fulltext", file_ids=list(ids.values())).id,
                          timeout=120, interval=0.2)
    assert store.file_counts.completed == len(PASSAGES), store.file_counts
    # Full text alone finds nothing for a question without a shared word.
    assert _ranked_files(client, store.id, QUESTIONS["cats.txt"]) == []
