"""Loading, validating and mixing the reader's training sets (../shared/qa-data/train).

Every loader yields `QAExample`s whose answers align exactly with their context; a record
that is malformed raises `TrainingDataError` naming the file and the record, so training
never starts silently on partial data.
"""

from __future__ import annotations

import csv
import functools
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

csv.field_size_limit(1 << 30)

SUBJQA_NO_ANSWER = "ANSWERNOTFOUND"


class TrainingDataError(ValueError):
    pass


@dataclass
class QAExample:
    qid: str
    question: str
    context: str
    answers: list[tuple[str, int]] = field(default_factory=list)  # (text, char start); empty = no answer
    source: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def _align(context: str, text: str, start: int) -> tuple[str, int] | None:
    """Return (text, start) aligned to the context, fixing the quirks listed in qa-data/README."""
    if context[start:start + len(text)] == text:
        return text, start
    stripped = text.strip()
    if stripped and context[start:start + len(stripped)] == stripped:
        return stripped, start
    if stripped:
        lead = len(text) - len(text.lstrip())
        if context[start + lead:start + lead + len(stripped)] == stripped:
            return stripped, start + lead
        # whitespace-insensitive match nearest to the given start ("The pre - popped" -> "The pre-popped")
        pattern = r"\s*".join(re.escape(tok) for tok in re.sub(r"\s+", "", stripped))
        matches = list(re.finditer(pattern, context))
        if matches:
            best = min(matches, key=lambda m: abs(m.start() - start))
            return best.group(0), best.start()
    return None


def _alnum(text: str) -> str:
    return re.sub(r"[\W_]+", "", text).lower()


def load_squad_file(path: Path, source: str, skipped: list[str] | None = None) -> list[QAExample]:
    """Load a SQuAD v1.1/v2.0-shaped JSON file; titles group paragraphs into documents."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        articles = payload["data"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise TrainingDataError(f"{path}: not a SQuAD-format JSON file ({exc})") from exc
    examples: list[QAExample] = []
    for a_index, article in enumerate(articles):
        for p_index, paragraph in enumerate(article.get("paragraphs", []) if isinstance(article, dict) else [None]):
            where = f"{path}: data[{a_index}].paragraphs[{p_index}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise TrainingDataError(f"{where}: missing 'context' string")
            context = paragraph["context"]
            for qa in paragraph.get("qas", []):
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or "id" not in qa:
                    raise TrainingDataError(f"{where}: a qas record lacks 'id' or 'question'")
                answers = []
                for answer in qa.get("answers") or []:
                    try:
                        aligned = _align(context, answer["text"], int(answer["answer_start"]))
                    except (KeyError, TypeError, ValueError) as exc:
                        raise TrainingDataError(f"{where}: record {qa['id']}: malformed answer {answer!r}") from exc
                    if aligned is None:
                        raise TrainingDataError(f"{where}: record {qa['id']}: answer {answer['text']!r} "
                                                f"does not occur at {answer['answer_start']}")
                    answers.append(aligned)
                if not answers and not qa.get("is_impossible", False):
                    raise TrainingDataError(f"{where}: record {qa['id']}: no answers and not marked is_impossible")
                examples.append(QAExample(str(qa["id"]), qa["question"], context, answers,
                                          f"{source}#{a_index}"))
    return examples


def load_subjqa_csv(path: Path, source: str, skipped: list[str] | None = None) -> list[QAExample]:
    """SubjQA rows; ANSWERNOTFOUND rows become unanswerable (SQuAD 2.0-style) examples.

    About 3.5% of SubjQA's answers join several separate phrases into one "span" that no
    substring of the review matches; those rows are listed in `skipped` (and counted in the
    training summary) rather than guessed at.
    """
    examples = []
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainingDataError(f"{path}: unreadable CSV ({exc})") from exc
    for row_number, row in enumerate(rows, start=2):
        where = f"{path}: line {row_number}"
        try:
            question, review, span, indices = (row["question"], row["review"], row["human_ans_spans"],
                                               row["human_ans_indices"])
        except KeyError as exc:
            raise TrainingDataError(f"{where}: missing column {exc}") from exc
        if not question or not review:
            raise TrainingDataError(f"{where}: empty question or review")
        # SubjQA appends the literal ANSWERNOTFOUND to every review so annotators can select it.
        review = review.rstrip()
        if review.endswith(SUBJQA_NO_ANSWER):
            review = review[: -len(SUBJQA_NO_ANSWER)].rstrip()
        qid = f"subjqa-{path.stem}-{row_number}"
        if span.strip() == SUBJQA_NO_ANSWER:
            examples.append(QAExample(qid, question, review, [], f"{source}#{row.get('item_id', '')}"))
            continue
        match = re.match(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", indices or "")
        if not match:
            raise TrainingDataError(f"{where}: malformed human_ans_indices {indices!r}")
        start, end = int(match.group(1)), int(match.group(2))
        aligned = _align(review, span, start)
        if aligned is None and _alnum(review[start:end]) == _alnum(span):
            # the span text lost a punctuation mark, but its indices still hold
            aligned = review[start:end].strip(), start + len(review[start:end]) - len(review[start:end].lstrip())
        if aligned is None:
            if skipped is None:
                raise TrainingDataError(f"{where}: answer {span!r} not found in the review")
            skipped.append(f"{where}: answer {span!r} is not one span of the review")
            continue
        examples.append(QAExample(qid, question, review, [aligned], f"{source}#{row.get('item_id', '')}"))
    return examples


def same_document_negatives(examples: list[QAExample], rate: float, rng: random.Random,
                            chosen_by: str = "random") -> list[QAExample]:
    """Pair questions with another paragraph of their own document that lacks every answer.

    This is what a reader meets behind a retriever: on-topic text that does not answer.
    `chosen_by="question_overlap"` takes the paragraphs that share the most words with the question
    first, the distractors a retriever actually serves (Clark & Gardner 2018 train on those);
    "random" takes any.
    """
    by_document: dict[str, list[str]] = {}
    for example in examples:
        contexts = by_document.setdefault(example.source, [])
        if not contexts or contexts[-1] != example.context:
            contexts.append(example.context)
    from retrieval.retriever.components import terms  # the content words the serving code matches on

    words_of: dict[str, set[str]] = {}
    negatives = []
    for example in examples:
        if not example.answerable or rng.random() >= rate:
            continue
        others = [c for c in by_document.get(example.source, []) if c != example.context]
        if chosen_by == "random":
            rng.shuffle(others)
        else:
            asked = set(terms(example.question))
            for other in others:
                if other not in words_of:
                    words_of[other] = set(terms(other))
            others.sort(key=lambda c: len(asked & words_of[c]), reverse=True)
        for other in others[:5]:
            lowered = other.lower()
            if not any(text.lower() in lowered for text, _ in example.answers):
                negatives.append(QAExample(example.qid + "-neg", example.question, other, [], example.source))
                break
    return negatives


_CAPITALIZED_RUN = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][\w'-]*(?: (?:of |the |de |and )?[A-Z][\w'-]*)*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_WH_AUXILIARY = re.compile(r"^\s*(who|what|which)\s+(is|was|are|were|has|have|had|can|could|will|would)\s", re.I)
_NEGATION_IN_CONTEXT = re.compile(r"\b(not|never|no|none|nor|without)\b|n't", re.I)
_ANTONYM_PAIRS = [("first", "last"), ("largest", "smallest"), ("biggest", "smallest"), ("highest", "lowest"),
                  ("most", "least"), ("earliest", "latest"), ("before", "after"), ("increase", "decrease"),
                  ("increased", "decreased"), ("north", "south"), ("east", "west"), ("maximum", "minimum"),
                  ("won", "lost"), ("win", "lose"), ("positive", "negative"), ("more", "fewer"),
                  ("oldest", "newest"), ("longest", "shortest"), ("start", "end"), ("began", "ended"),
                  ("best", "worst"), ("major", "minor"), ("inside", "outside"), ("allowed", "banned"),
                  ("accepted", "rejected"), ("younger", "older"), ("higher", "lower"), ("larger", "smaller")]
_ANTONYMS = {a: b for a, b in _ANTONYM_PAIRS} | {b: a for a, b in _ANTONYM_PAIRS}


def _swap_entity(question: str, context: str, entity_pool: list[str], rng: random.Random) -> str | None:
    """Replace a name or number the question shares with the context by one the context lacks."""
    lowered = context.lower()
    spans = [m for m in list(_CAPITALIZED_RUN.finditer(question)) + list(_NUMBER.finditer(question))
             if m.group(0).lower() in lowered]
    if not spans:
        return None
    span = rng.choice(spans)
    original = span.group(0)
    if original[0].isdigit():
        digits = re.sub(r"\D", "", original)
        for _ in range(10):
            replacement = str(int(digits) + rng.choice([-1, 1]) * rng.randint(1, max(2, int(digits) // 10 or 2)))
            if replacement not in context and len(replacement) == len(digits):
                break
        else:
            return None
    else:
        absent = [name for name in entity_pool if name.lower() not in lowered]
        if not absent:
            return None
        replacement = rng.choice(absent)
    return question[:span.start()] + replacement + question[span.end():]


def _swap_antonym(question: str, context: str, rng: random.Random) -> str | None:
    words = [m for m in re.finditer(r"[A-Za-z]+", question) if m.group(0).lower() in _ANTONYMS]
    rng.shuffle(words)
    for word in words:
        antonym = _ANTONYMS[word.group(0).lower()]
        if not re.search(rf"\b{antonym}\b", context, re.I):
            return question[:word.start()] + antonym + question[word.end():]
    return None


def _negate(question: str, context: str) -> str | None:
    match = _WH_AUXILIARY.match(question)
    if not match or _NEGATION_IN_CONTEXT.search(context):
        return None
    return question[:match.end()] + "not " + question[match.end():]


def perturbed_question_negatives(examples: list[QAExample], rate: float, rng: random.Random) -> list[QAExample]:
    """SQuAD 2.0-style unanswerables: the question is edited so its own paragraph no longer answers it.

    SQuAD 2.0's crowdworkers wrote such questions by swapping an entity, number or word for
    one the paragraph lacks, or by negating the question (Rajpurkar et al., 2018, table 3);
    these edits do the same mechanically, so the reader learns that a close lexical match is
    not enough.
    """
    # Swapped-in names come from the same document, so they fit the topic (and often the type).
    pools: dict[str, set[str]] = {}
    for example in examples:
        pools.setdefault(example.source, set()).update(m.group(0) for m in _CAPITALIZED_RUN.finditer(example.context))
    pools = {source: sorted(names) for source, names in pools.items()}
    negatives = []
    for example in examples:
        if not example.answerable or rng.random() >= rate:
            continue
        entity_pool = pools.get(example.source) or []
        edits = [lambda: _swap_entity(example.question, example.context, entity_pool, rng),
                 lambda: _swap_antonym(example.question, example.context, rng),
                 lambda: _negate(example.question, example.context)]
        rng.shuffle(edits)
        for edit in edits:
            edited = edit()
            if edited:
                negatives.append(QAExample(example.qid + "-edited", edited, example.context, [], example.source))
                break
    return negatives


@dataclass(frozen=True)
class MixEntry:
    """One training set of the mix and how much of it, and of its negatives, to use."""
    path: str                           # glob under the training folder
    loader: str = "squad"               # "squad" or "subjqa"
    sample: int | None = None           # examples drawn from it (None: all)
    same_document_negatives: float = 0.0
    negatives_by: str = "random"        # how those paragraphs are chosen: "random" or "question_overlap"
    edited_negatives: float = 0.0       # share of its answerable questions edited into unanswerables
    sentence_windows: float = 0.0       # share of its examples cut to a window of a few sentences
    answer_removed_negatives: float = 0.0  # share of its answerable questions kept with their paragraph
                                        # less the sentence holding the answer (unanswerable)

    def __post_init__(self):
        if self.negatives_by not in ("random", "question_overlap"):
            raise TypeError(f"{self.path}: negatives_by {self.negatives_by!r} is not 'random' or 'question_overlap'")


def held_out_documents(examples: list[QAExample], every_nth: int) -> set[str]:
    """Every n-th document (by first appearance) of a set: kept out of training, for tuning and
    in-training evaluation. Deterministic, so every run holds out the same documents."""
    sources = list(dict.fromkeys(e.source for e in examples))
    return set(sources[::every_nth]) if every_nth else set()


@functools.lru_cache(maxsize=4096)  # a paragraph's questions come together
def sentence_spans(context: str) -> tuple[tuple[int, int], ...]:
    from retrieval.ingest.chunking import split_sentences

    return tuple((s.start, s.end) for s in split_sentences("", context))


def sentences_holding(spans: tuple[tuple[int, int], ...], answers: list[tuple[str, int]]) -> list[tuple[int, int]]:
    """The sentence spans that overlap any of the answers (text, start)."""
    return [(a, b) for a, b in spans if any(a < start + len(text) and start < b for text, start in answers)]


def answer_removed_negatives(examples: list[QAExample], rate: float, rng: random.Random) -> list[QAExample]:
    """The question with its own paragraph less the sentence that holds its answer: unanswerable.

    What is left is like the paragraphs SQuAD 2.0's unanswerable questions stand against, and like
    what Byline's reader is handed when the focus step misses the answer's sentence: on topic,
    sharing the question's words, one sentence away from an answer that is not there. Edited questions teach
    that a question which no longer fits its paragraph has no answer; this teaches the same of a
    paragraph which no longer holds it. Kept only where the answer's words are nowhere in what is left
    and at least two sentences remain.
    """
    negatives = []
    for example in examples:
        if not example.answerable or rng.random() >= rate:
            continue
        spans = sentence_spans(example.context)
        held = sentences_holding(spans, example.answers)
        kept = [(a, b) for a, b in spans if (a, b) not in held]
        if not held or len(kept) < 2:
            continue
        remaining = " ".join(example.context[a:b] for a, b in kept)
        lowered = remaining.lower()
        if any(text.lower() in lowered for text, _ in example.answers):
            continue
        negatives.append(QAExample(example.qid + "-removed", example.question, remaining, [], example.source))
    return negatives


def sentence_window_views(examples: list[QAExample], rate: float, rng: random.Random) -> list[QAExample]:
    """Cut a share of the examples to what Byline's reader is given: a focus sentence and up to two
    sentences either side, instead of a whole paragraph.

    An answerable example keeps the sentence that holds its answer; an unanswerable one keeps a
    random sentence. Examples whose answer crosses a sentence boundary stay whole.
    """
    out = []
    for example in examples:
        if rate <= 0 or rng.random() >= rate:
            out.append(example)
            continue
        spans = sentence_spans(example.context)
        if len(spans) < 3:
            out.append(example)
            continue
        if example.answerable:
            text, start = example.answers[0]
            centre = next((i for i, (a, b) in enumerate(spans) if a <= start and start + len(text) <= b), None)
            if centre is None:
                out.append(example)
                continue
        else:
            centre = rng.randrange(len(spans))
        first = max(0, centre - rng.randint(0, 2))
        last = min(len(spans) - 1, centre + rng.randint(0, 2))
        window_start, window_end = spans[first][0], spans[last][1]
        window = example.context[window_start:window_end]
        answers = [(t, a - window_start) for t, a in example.answers
                   if window_start <= a and a + len(t) <= window_end]
        if example.answerable and not answers:
            out.append(example)
            continue
        out.append(QAExample(example.qid + "-window", example.question, window, answers, example.source))
    return out


# The mix of the last stage-by-stage runs (stages 1-5); the campaign's mix is in config/reader-campaign.yaml.
DEFAULT_MIX: list[MixEntry] = [
    MixEntry("squadshifts/new_wiki.json", sample=None, same_document_negatives=0.25),
    MixEntry("squadshifts/reddit.json", sample=4000, same_document_negatives=0.1),
    MixEntry("squadshifts/amazon_reviews.json", sample=4000, same_document_negatives=0.15),
    MixEntry("policyqa/dev.json", sample=1500, same_document_negatives=0.1),
    MixEntry("policyqa/test.json", sample=1500, same_document_negatives=0.1),
    MixEntry("covidqa/covid-qa.json", sample=1380),
    MixEntry("subjqa/*-train.csv", loader="subjqa", sample=5000),
    MixEntry("qamr/qamr.json", sample=14000),
]


def _named_file(entry: MixEntry) -> Path | None:
    """The one file a mix entry names by an absolute (or ~) path, for sets made from the training data
    that live outside the work tree (`retrieved_windows`); None for a glob under the training folder."""
    named = Path(entry.path).expanduser()
    return named if named.is_absolute() else None


def mix_files(train_dir: Path, entry: MixEntry) -> list[Path]:
    """A mix entry's files: its glob under the training folder, or the one file it names."""
    if named := _named_file(entry):
        return [named] if named.is_file() else []
    return sorted(train_dir.glob(entry.path))


def load_set(train_dir: Path, entry: MixEntry) -> tuple[list[QAExample], int]:
    """All examples of one set of the mix, and how many rows could not be aligned."""
    paths = mix_files(train_dir, entry)
    if not paths:
        raise TrainingDataError(f"{_named_file(entry) or train_dir / entry.path}: no such training file")
    loader = load_subjqa_csv if entry.loader == "subjqa" else load_squad_file
    examples: list[QAExample] = []
    skipped: list[str] = []
    for path in paths:
        examples.extend(loader(path, entry.path, skipped))
    return examples, len(skipped)


def load_mix(train_dir: Path, mix: list[MixEntry] = DEFAULT_MIX, seed: int = 42,
             held_out: dict[str, set[str]] | None = None) -> tuple[list[QAExample], dict[str, dict]]:
    """Load every set of the mix, sample it, add its negatives and sentence-window views;
    returns (examples, stats). `held_out` maps a set's path to documents left out of training."""
    rng = random.Random(seed)
    chosen: list[QAExample] = []
    stats: dict[str, dict] = {}
    for entry in mix:
        examples, skipped = load_set(train_dir, entry)
        total = len(examples)
        excluded = (held_out or {}).get(entry.path, set())
        examples = [e for e in examples if e.source not in excluded]
        held = total - len(examples)
        negatives = same_document_negatives(examples, entry.same_document_negatives, rng, entry.negatives_by)
        if entry.sample is not None and entry.sample < len(examples):
            examples = rng.sample(examples, entry.sample)
        negatives = negatives[: int(len(examples) * entry.same_document_negatives)]
        # Skipped at rate 0 so the random stream, and with it earlier runs' data, stays as it was.
        edited = (perturbed_question_negatives(examples, entry.edited_negatives, rng)
                  if entry.edited_negatives else [])
        removed = (answer_removed_negatives(examples, entry.answer_removed_negatives, rng)
                   if entry.answer_removed_negatives else [])
        used = examples + negatives + edited + removed
        if entry.sentence_windows:
            used = sentence_window_views(used, entry.sentence_windows, rng)
        stats[entry.path] = {"available": total, "held_out": held,
                             "used": len(examples), "unalignable_skipped": skipped,
                             "unanswerable": sum(not e.answerable for e in examples),
                             "same_document_negatives": len(negatives), "edited_question_negatives": len(edited),
                             "answer_removed_negatives": len(removed),
                             "sentence_windows": sum(e.qid.endswith("-window") for e in used)}
        chosen.extend(used)
    rng.shuffle(chosen)
    return chosen, stats
