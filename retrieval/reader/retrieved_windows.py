"""Training examples from Byline's own retrieval: the windows its focus step hands the reader.

    python -m retrieval.reader.retrieved_windows --campaign config/reader-campaign-20.yaml \
        --out ~/.cache/byline/training-windows/new_wiki.json
    python -m retrieval.reader.retrieved_windows --campaign config/reader-campaign-20.yaml \
        --set qamr/qamr.json --out ~/.cache/byline/training-windows/qamr.json

Distant supervision as in DrQA (Chen et al., 2017): a training set (by default the campaign's held-out
set, `new_wiki`, less its held-out documents) becomes one collection; each of its questions goes
through Byline's retrieval and focus step (not the reader), and every passage the reader would have
read becomes a training example: answerable where it holds the gold answer where the question's own
paragraph has it, unanswerable where it holds none of the gold answers' words (a window with them
elsewhere is left out). Those unanswerable windows are the distractors the reader meets in use
(sentences of other articles and of the same one that share the question's words), which the mix's
other negatives (edited questions, other paragraphs, cut answer sentences) only approximate. A set
whose questions do not name what they ask about (PolicyQA: "Where do you collect my information?",
over twenty policies) does not fit: another document's window answers the question and would be
labelled unanswerable.

The file is SQuAD 2.0-shaped, one article per source document, and goes outside the work tree like
the checkpoints; a campaign names it by its absolute path. The held-out documents are never in the
collection, so nothing of them reaches training.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from retrieval.reader.training_data import MixEntry, TrainingDataError, held_out_documents, load_set

DEFAULT_OUT = Path("~/.cache/byline/training-windows/new_wiki.json")


def training_collection(campaign: dict, out: Path, training_set: str | None = None) -> Path:
    """A training set's SQuAD file as the collection; the held-out set's without its held-out documents."""
    spec = campaign["held_out"]
    training_set = training_set or spec["set"]
    path = Path(campaign["train_dir"]) / training_set
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainingDataError(f"{path}: not a readable SQuAD-format training set ({type(exc).__name__})") from None
    if training_set == spec["set"]:
        examples, _ = load_set(Path(campaign["train_dir"]), MixEntry(spec["set"]))
        held_out = held_out_documents(examples, int(spec["every_nth_document"]))
        payload["data"] = [article for index, article in enumerate(payload["data"])
                           if f"{spec['set']}#{index}" not in held_out]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload), encoding="utf-8")
    return out


def _whole_words(answer: str) -> re.Pattern:
    return re.compile(r"(?<!\w)" + re.escape(answer) + r"(?!\w)")


def answer_at_source(passage: str, answers: tuple[str, ...], paragraph: str) -> tuple[str, int] | None:
    """The earliest gold answer in the passage, as whole words ("1" is not found in "1990") and where the
    question's own paragraph has it (the words around it occur there): a common answer such as
    "insurance" found in another sentence is not that question's answer."""
    own = " ".join(paragraph.split())
    found = []
    for answer in answers:
        if not answer.strip():
            continue
        for match in _whole_words(answer).finditer(passage):
            line_start = passage.rfind("\n", 0, match.start()) + 1
            line_end = passage.find("\n", match.end())
            line_end = len(passage) if line_end < 0 else line_end
            around = " ".join(passage[max(line_start, match.start() - 40):min(line_end, match.end() + 40)].split())
            if around in own:
                found.append((match.start(), answer))
                break
    if not found:
        return None
    start, text = min(found)
    return text, start


def holds_answer_text(passage: str, answers: tuple[str, ...]) -> bool:
    return any(answer.strip() and _whole_words(answer).search(passage) for answer in answers)


def window_examples(pipeline, questions, negatives_per_question: int, progress=None) -> tuple[dict, dict]:
    """SQuAD articles (one per source document) of each question's focus windows, and counts."""
    articles: dict[str, dict] = {}
    counts = {"questions": 0, "answerable": 0, "unanswerable": 0, "answer_not_in_windows": 0}
    for done, q in enumerate(questions, 1):
        if q.impossible:
            continue
        counts["questions"] += 1
        negatives = 0
        holds = False
        passages = pipeline.reader_input(q.question)
        for number, passage in enumerate(passages):
            own_document = passage.meta["doc_id"] == q.doc_id
            answer = answer_at_source(passage.content, q.answers, q.context) if own_document else None
            qa = {"id": f"{q.id}-window-{number}", "question": q.question}
            if answer is None:
                if negatives >= negatives_per_question or holds_answer_text(passage.content, q.answers):
                    continue  # the answer's words elsewhere: neither this question's answer nor surely not
                negatives += 1
                qa |= {"answers": [], "is_impossible": True}
                counts["unanswerable"] += 1
            else:
                holds = True
                qa["answers"] = [{"text": answer[0], "answer_start": answer[1]}]
                counts["answerable"] += 1
            article = articles.setdefault(q.doc_id, {"title": q.doc_id, "paragraphs": []})
            article["paragraphs"].append({"context": passage.content, "qas": [qa]})
        counts["answer_not_in_windows"] += not holds and bool(passages)
        if progress:
            progress(done, len(questions))
    return {"version": "v2.0", "data": list(articles.values())}, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaign", type=Path, required=True, help="its train_dir and held-out documents")
    parser.add_argument("--set", dest="training_set", metavar="PATH",
                        help="a SQuAD-format set under train_dir (default: the campaign's held-out set)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--negatives", type=int, default=2, metavar="N",
                        help="unanswerable windows kept per question, the best-focused first (default 2)")
    args = parser.parse_args(argv)

    from eval.open_collection import load_collection, open_config, scratch_collection
    from retrieval.config import load_config
    from retrieval.errors import BylineError
    from retrieval.pipeline import BylinePipeline
    from retrieval.progress import progress_bar
    from retrieval.reader.train import CampaignError, load_campaign

    out = args.out.expanduser().resolve()
    try:
        campaign = load_campaign(args.campaign)
        collection = training_collection(campaign, out.with_name(out.stem + "-collection.json"), args.training_set)
        articles, questions, _ = load_collection(collection)
        # the collection's index beside the file, outside the work tree with it
        config = open_config(load_config(), scratch_collection(collection, articles, out.parent / "index"))
        pipeline = BylinePipeline(config)  # ingests the collection on first use
        with progress_bar(len(questions), "windows", "question") as bar:
            payload, counts = window_examples(pipeline, questions, args.negatives,
                                              progress=lambda done, total: bar.update(1))
    except (CampaignError, TrainingDataError, BylineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    temporary = out.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload), encoding="utf-8")
    temporary.replace(out)
    print(json.dumps({"out": str(out), **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
