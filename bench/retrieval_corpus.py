#!/usr/bin/env python3
"""Synthetic retrieval corpus for bench/retrieval.sh.

Writes into OUT_DIR:
  doc_NNNNN.txt / doc_NNNNN.pdf   documents of filler prose (pseudo-words from a fixed
                                   vocabulary) with one unique needle sentence each:
                                   "The secret code of project AURORA-0412 is ZEBRA-9931."
  questions.jsonl                  {"doc": "doc_00412.txt", "question": "What is the secret code
                                   of project AURORA-0412?", "answer": "ZEBRA-9931"}

Deterministic (--seed). A fraction (--pdf-fraction) of documents are PDFs made by the
minimal PDF writer of tests/conformance/helpers.py (text that pdftotext extracts).
Chunk estimate: a filler word is one "token" (<= 6 letters), so --words-per-doc words
make about words/max_chunk_size_tokens chunks.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "conformance"))

CODENAMES = ["AURORA", "BASALT", "CINDER", "DELTA", "EMBER", "FALCON", "GLACIER", "HARBOR", "IVORY", "JASPER",
             "KESTREL", "LUMEN", "MERIDIAN", "NIMBUS", "ONYX", "PRAIRIE", "QUARTZ", "RAVEN", "SIERRA", "TUNDRA",
             "UMBRA", "VECTOR", "WILLOW", "XENON", "YARROW", "ZEPHYR"]
CODEWORDS = ["ZEBRA", "OTTER", "LYNX", "BISON", "CRANE", "HERON", "IBEX", "KOALA", "LLAMA", "MOOSE", "NEWT",
             "ORCA", "PANDA", "QUAIL", "RHINO", "SWIFT", "TAPIR", "VIPER", "WOMBAT", "YAK"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def vocabulary(rng: random.Random, n: int = 6000) -> list:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 6))))
    return sorted(words)


def filler(rng: random.Random, vocab: list, n_words: int) -> list:
    """Sentences of 8..16 pseudo-words; Zipf-ish word choice (a few very common words)."""
    out, left = [], n_words
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(vocab))]
    pool = rng.choices(vocab, weights=weights, k=n_words)
    i = 0
    while left > 0:
        k = min(left, rng.randint(8, 16))
        s = " ".join(pool[i:i + k])
        out.append(s[0].upper() + s[1:] + ".")
        i += k
        left -= k
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--words-per-doc", type=int, default=10500)
    ap.add_argument("--pdf-fraction", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=20240821)
    args = ap.parse_args(argv)
    from helpers import make_pdf  # noqa: E402

    rng = random.Random(args.seed)
    vocab = vocabulary(rng)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    n_pdf = int(round(args.docs * args.pdf_fraction))
    pdf_docs = set(rng.sample(range(args.docs), n_pdf))
    codes = set()
    total_bytes = 0
    with open(out / "questions.jsonl", "w") as q:
        for i in range(args.docs):
            project = f"{CODENAMES[i % len(CODENAMES)]}-{1000 + i:04d}"
            while True:
                code = f"{rng.choice(CODEWORDS)}-{rng.randint(1000, 9999)}"
                if code not in codes:
                    codes.add(code)
                    break
            sentences = filler(rng, vocab, args.words_per_doc)
            needle = f"The secret code of project {project} is {code}."
            sentences.insert(rng.randrange(len(sentences) + 1), needle)
            # paragraphs of 6 sentences
            paras = [" ".join(sentences[j:j + 6]) for j in range(0, len(sentences), 6)]
            text = f"Report {i} on project {project}\n\n" + "\n\n".join(paras) + "\n"
            if i in pdf_docs:
                name = f"doc_{i:05d}.pdf"
                data = make_pdf(text)
            else:
                name = f"doc_{i:05d}.txt"
                data = text.encode()
            (out / name).write_bytes(data)
            total_bytes += len(data)
            q.write(json.dumps({"doc": name, "question": f"What is the secret code of project {project}?",
                                "answer": code}) + "\n")
    print(json.dumps({"docs": args.docs, "pdf": n_pdf, "bytes": total_bytes, "out_dir": str(out)}))


if __name__ == "__main__":
    main()
