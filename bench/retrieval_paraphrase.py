#!/usr/bin/env python3
"""Paraphrase corpus for bench/retrieval.sh (MODE=paraphrase): questions that share no rare word
with their answer passage, so only meaning finds it.

Each document is one short note: a fact "The <role> <activity> <place>." and a neutral
sentence. Its question asks for the same fact in synonyms: "Which <role'> <activity'>
<place'>?" (baker -> bread maker, repairs bicycles -> fixes bikes, cellar -> basement). Every
(role, activity, place) triple is used once, so many documents share one or two parts of a
fact with the question but only one shares all three. The script checks that no question word
(stopwords aside) nor any word with the same first five letters occurs in any passage.

Writes OUT_DIR/doc_NNNNN.txt and OUT_DIR/questions.jsonl ({"doc", "question", "answer"}),
the format of bench/retrieval_corpus.py, so bench/retrieval_driver.py measures both alike.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from pathlib import Path

ROLES = [("baker", "bread maker"), ("physician", "doctor"), ("schoolteacher", "educator"), ("farmer", "rancher"),
         ("lawyer", "attorney"), ("pilot", "aviator"), ("sailor", "mariner"), ("carpenter", "woodworker"),
         ("nurse", "caregiver"), ("butcher", "meat cutter"), ("painter", "artist"), ("policeman", "constable")]
ACTIVITIES = [("repairs bicycles", "fixes bikes"), ("sells automobiles", "trades cars"),
              ("feeds stray cats", "gives food to homeless kittens"), ("collects old coins", "gathers antique currency"),
              ("builds wooden boats", "constructs timber vessels"), ("writes mystery novels", "authors detective books"),
              ("plays the violin", "performs on the fiddle"), ("photographs birds", "takes pictures of songbirds"),
              ("cleans chimneys", "sweeps flues"), ("trains horses", "coaches ponies"),
              ("sews dresses", "stitches gowns"), ("brews beer", "makes ale")]
PLACES = [("in the cellar", "in the basement"), ("at the harbor", "at the port"), ("in the forest", "in the woods"),
          ("on the beach", "by the seashore"), ("in the garden", "in the yard"), ("in the attic", "up in the loft"),
          ("near the river", "beside the stream"), ("at the airport", "at the airfield"),
          ("in the village square", "in the town plaza"), ("at the hospital", "in the infirmary"),
          ("on the mountain", "up the peak"), ("downtown", "in the city centre")]
NEUTRAL = ["Neighbours mention it often.", "Nobody remembers exactly when it began.", "It has gone on for many years.",
           "Local newspapers once printed a short note about it.", "Friends say it is a quiet habit.",
           "Visitors sometimes stop and watch.", "Most evenings follow that same routine.",
           "Few people outside the family knew about it at first."]
# FileSearch.terms' stopwords, plus question words common to every question.
STOP = {"a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in", "is", "it", "of", "on", "or", "that",
        "the", "this", "to", "was", "what", "when", "where", "which", "who", "why", "with", "does", "do", "did", "i", "you",
        "up"}


def words(text):
    return {w for w in re.findall(r"[a-z]+", text.lower()) if w not in STOP}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    triples = list(itertools.product(ROLES, ACTIVITIES, PLACES))
    rng.shuffle(triples)
    triples = triples[:args.docs]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    passages, questions = [], []
    for number, (role, activity, place) in enumerate(triples):
        fact = f"The {role[0]} {activity[0]} {place[0]}."
        passage = f"{fact} {rng.choice(NEUTRAL)}\n"
        name = f"doc_{number:05d}.txt"
        (out / name).write_text(passage)
        passages.append(passage)
        questions.append({"doc": name, "question": f"Which {role[1]} {activity[1]} {place[1]}?", "answer": fact})
    passage_words = set().union(*(words(p) for p in passages))
    passage_stems = {w[:5] for w in passage_words}
    for q in questions:
        shared = {w for w in words(q["question"]) if w in passage_words or w[:5] in passage_stems}
        if shared:
            raise SystemExit(f"question {q['question']!r} shares {sorted(shared)} with the passages")
    with open(out / "questions.jsonl", "w") as f:
        for q in questions:
            f.write(json.dumps(q) + "\n")
    print(json.dumps({"docs": len(questions), "kind": "paraphrase"}))


if __name__ == "__main__":
    main()
