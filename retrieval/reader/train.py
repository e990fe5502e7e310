"""Train Byline's extractive reader as one planned, resumable campaign.

    python -m retrieval.reader.train --campaign config/reader-campaign.yaml --background
    python -m retrieval.reader.train --status [RUN]
    python -m retrieval.reader.train --campaign config/reader-campaign.yaml --probe-lr 2e-4 --probe-steps 150

A campaign file (plain YAML) names the starting model, the data mix, the feature settings and the
whole schedule: total steps, one warm-up and one learning-rate decay over the entire campaign.
The first start records that plan, the featurized data and its fixed order in the run folder
(outside the work tree: `$BYLINE_TRAIN_RUNS`, else `$XDG_CACHE_HOME/byline/reader-runs`, else
`~/.cache/byline/reader-runs`; `--runs-dir` overrides). Re-running the same command resumes from
the newest complete checkpoint with the same schedule and data order; if the data or schedule
changed it refuses, naming what changed. A checkpoint is written every `checkpoint_minutes` of
training, and each one is scored on held-out training documents (never on qa-data/benchmark).

Pause: `kill -STOP -PGID` / `kill -CONT -PGID`, or create the file PAUSE in the run folder.
Checkpoint now (before a stretch of work ends, so that less is lost): create the file CHECKPOINT there.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from retrieval.reader.training_data import (MixEntry, QAExample, TrainingDataError, held_out_documents,
                                            load_mix, load_set, mix_files, perturbed_question_negatives)

# Bump when prepare_features (or what feeds it) changes the features it makes for the same data.
FEATURES_VERSION = 2
MAX_QUESTION_TOKENS = 64
STATUS_FILE, PLAN_FILE, PID_FILE, PAUSE_FILE = "status.json", "plan.json", "trainer.pid", "PAUSE"
CHECKPOINT_NOW_FILE = "CHECKPOINT"


class CampaignError(RuntimeError):
    """A one-line refusal: bad campaign file, changed plan, unwritable folder, full disk."""


def prepare_features(examples: list[QAExample], tokenizer, max_length: int, doc_stride: int,
                     negative_windows_per_example: int, rng: random.Random) -> list[dict]:
    """Standard SQuAD train-feature preparation.

    Long contexts overflow into several windows; windows without the answer are labelled
    [CLS]. Only `negative_windows_per_example` of those are kept per example, because a
    COVID-QA paper yields dozens and they would swamp the budget.
    """
    features = []
    batch_size = 256
    for offset in range(0, len(examples), batch_size):
        batch = examples[offset:offset + batch_size]
        questions = [e.question.lstrip() for e in batch]
        question_offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        questions = [q if len(o) <= MAX_QUESTION_TOKENS else q[:o[MAX_QUESTION_TOKENS - 1][1]]
                     for q, o in zip(questions, question_offsets)]
        encoded = tokenizer(questions, [e.context for e in batch],
                            truncation="only_second", max_length=max_length, stride=doc_stride,
                            return_overflowing_tokens=True, return_offsets_mapping=True)
        windows_by_example: dict[int, list[dict]] = {}
        for i, offsets in enumerate(encoded["offset_mapping"]):
            example_index = encoded["overflow_to_sample_mapping"][i]
            example = batch[example_index]
            sequence_ids = encoded.sequence_ids(i)
            context_start = sequence_ids.index(1)
            context_end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            start_position = end_position = 0
            if example.answerable:
                text, char_start = example.answers[0]
                char_end = char_start + len(text)
                if offsets[context_start][0] <= char_start and offsets[context_end][1] >= char_end:
                    token_start = context_start
                    while token_start <= context_end and offsets[token_start][0] <= char_start:
                        token_start += 1
                    token_end = context_end
                    while token_end >= context_start and offsets[token_end][1] >= char_end:
                        token_end -= 1
                    start_position, end_position = token_start - 1, token_end + 1
            windows_by_example.setdefault(example_index, []).append({
                "input_ids": encoded["input_ids"][i],
                "attention_mask": encoded["attention_mask"][i],
                "token_type_ids": encoded["token_type_ids"][i],
                "start_positions": start_position,
                "end_positions": end_position,
            })
        for windows in windows_by_example.values():
            positives = [w for w in windows if w["start_positions"] > 0]
            negatives = [w for w in windows if w["start_positions"] == 0]
            rng.shuffle(negatives)
            keep = negative_windows_per_example if positives else max(1, negative_windows_per_example)
            features.extend(positives + negatives[:keep])
    return features


# ---------------------------------------------------------------- the plan

def default_runs_dir() -> Path:
    if os.environ.get("BYLINE_TRAIN_RUNS"):
        return Path(os.environ["BYLINE_TRAIN_RUNS"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "byline" / "reader-runs"


def load_campaign(path: Path) -> dict:
    import yaml

    try:
        campaign = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CampaignError(f"{path}: not a readable campaign file ({str(exc).splitlines()[0]})") from None
    required = ("name", "init_from", "train_dir", "mix", "features", "schedule")
    missing = [key for key in required if not isinstance(campaign, dict) or key not in campaign]
    if missing:
        raise CampaignError(f"{path}: campaign file lacks {', '.join(missing)}")
    base = path.resolve().parent.parent  # paths in config/ are relative to the repository root
    for key in ("init_from", "train_dir"):
        value = Path(str(campaign[key])).expanduser()
        campaign[key] = str(value if value.is_absolute() else (base / value).resolve())
    if "benchmark" in Path(campaign["train_dir"]).parts:
        raise CampaignError("train_dir points into qa-data/benchmark, which is for evaluation only")
    try:
        campaign["mix"] = [MixEntry(**entry) for entry in campaign["mix"]]
    except TypeError as exc:
        raise CampaignError(f"{path}: a mix entry is malformed ({exc})") from None
    return campaign


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Mix settings added after runs were planned: at their defaults they are left out of a plan's
# identity, so that those runs still resume.
_LATER_MIX_DEFAULTS = {"negatives_by": "random", "answer_removed_negatives": 0.0}


def _mix_identity(entry: MixEntry) -> dict:
    return {k: v for k, v in asdict(entry).items() if _LATER_MIX_DEFAULTS.get(k, object()) != v}


def data_identity(campaign: dict) -> dict:
    """What decides the training data: every file's digest and every setting that shapes the features."""
    train_dir = Path(campaign["train_dir"])
    files = {}
    for entry in campaign["mix"]:
        for path in mix_files(train_dir, entry):
            files[str(path.relative_to(train_dir)) if path.is_relative_to(train_dir) else str(path)] = _sha256(path)
    return {"files": files, "mix": [_mix_identity(e) for e in campaign["mix"]], "features": campaign["features"],
            "held_out": campaign.get("held_out"), "features_version": FEATURES_VERSION,
            "data_seed": campaign["schedule"]["seed"]}


PRECISIONS = ("float32", "bfloat16")


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX). Elsewhere autocast emulates it,
    slower than fp32, so a bf16 schedule is refused there."""
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return not {"avx512_bf16", "amx_bf16"}.isdisjoint(flags.split())


def training_precision(schedule: dict, cuda: bool) -> str:
    """The schedule's `precision`: float32 (the default) or bfloat16, mixed precision (autocast, fp32 master weights)."""
    precision = schedule.get("precision", "float32")
    if precision not in PRECISIONS:
        raise CampaignError(f"schedule.precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "bfloat16" and not cuda and not native_bf16():
        raise CampaignError("schedule.precision bfloat16 needs a CPU with native bf16 (avx512_bf16 or amx_bf16), "
                            "which this one lacks; give the campaign float32 under a new name")
    return precision


def schedule_identity(campaign: dict) -> dict:
    return dict(campaign["schedule"])


def _differences(old, new, prefix="") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    if old != new:
        name = prefix.rstrip(".")
        if isinstance(old, str) and len(old) == 64:  # a file digest
            return [f"{name} (file contents)"]
        return [f"{name} {old!r} -> {new!r}"]
    return []


# ---------------------------------------------------------------- data

def featurize(campaign: dict, tokenizer) -> tuple[dict, dict]:
    """The campaign's features as flat arrays, and the data summary."""
    import numpy as np

    train_dir = Path(campaign["train_dir"])
    held_out = {}
    if campaign.get("held_out"):
        spec = campaign["held_out"]
        examples, _ = load_set(train_dir, MixEntry(spec["set"]))
        held_out[spec["set"]] = held_out_documents(examples, int(spec["every_nth_document"]))
    seed = int(campaign["schedule"]["seed"])
    examples, stats = load_mix(train_dir, campaign["mix"], seed=seed, held_out=held_out)
    settings = campaign["features"]
    features = prepare_features(examples, tokenizer, int(settings["max_length"]), int(settings["doc_stride"]),
                                int(settings.get("negative_windows", 1)), random.Random(seed))
    lengths = np.array([len(f["input_ids"]) for f in features], dtype=np.int64)
    arrays = {
        "input_ids": np.concatenate([np.asarray(f["input_ids"], dtype=np.int32) for f in features]),
        "token_type_ids": np.concatenate([np.asarray(f["token_type_ids"], dtype=np.int8) for f in features]),
        "offsets": np.concatenate([[0], np.cumsum(lengths)]),
        "start_positions": np.array([f["start_positions"] for f in features], dtype=np.int32),
        "end_positions": np.array([f["end_positions"] for f in features], dtype=np.int32),
    }
    summary = {"examples": len(examples), "features": len(features),
               "unanswerable_features": int((arrays["start_positions"] == 0).sum()),
               "tokens": int(lengths.sum()), "sets": stats}
    return arrays, summary


def features_digest(arrays: dict) -> str:
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(arrays[key].tobytes())
    return digest.hexdigest()


def campaign_order(lengths, epochs: float, batch_size: int, seed: int):
    """The whole campaign's feature order, fixed up front: per epoch a fresh shuffle, grouped by
    length within mega-batches of 64 batches (less padding on the CPU), batches in random order."""
    import numpy as np

    rng = np.random.default_rng(seed)
    count = len(lengths)
    total = int(round(epochs * count)) // batch_size * batch_size
    order = []
    while sum(len(part) for part in order) < total:
        permutation = rng.permutation(count)
        batches = []
        mega = 64 * batch_size
        for begin in range(0, count, mega):
            part = permutation[begin:begin + mega]
            part = part[np.argsort(-lengths[part], kind="stable")]
            batches += [part[i:i + batch_size] for i in range(0, len(part) - batch_size + 1, batch_size)]
        for index in rng.permutation(len(batches)):
            order.append(batches[index])
    return np.concatenate(order)[:total]


class OrderedFeatures:
    """The features in campaign order, as the dicts the collator pads."""

    def __init__(self, arrays: dict, order):
        self.arrays, self.order = arrays, order

    def __len__(self):
        return len(self.order)

    def __getitem__(self, position):
        index = int(self.order[position])
        begin, end = int(self.arrays["offsets"][index]), int(self.arrays["offsets"][index + 1])
        length = end - begin
        return {"input_ids": self.arrays["input_ids"][begin:end].tolist(),
                "token_type_ids": self.arrays["token_type_ids"][begin:end].tolist(),
                "attention_mask": [1] * length,
                "start_positions": int(self.arrays["start_positions"][index]),
                "end_positions": int(self.arrays["end_positions"][index])}


# ---------------------------------------------------------------- held-out evaluation

def held_out_questions(campaign: dict, count: int) -> tuple[list[QAExample], list[QAExample]]:
    """A fixed spread sample of the held-out documents' questions, and edited (unanswerable) copies."""
    spec = campaign.get("held_out")
    if not spec or not count:
        return [], []
    examples, _ = load_set(Path(campaign["train_dir"]), MixEntry(spec["set"]))
    documents = held_out_documents(examples, int(spec["every_nth_document"]))
    pool = [e for e in examples if e.source in documents and e.answerable]
    sample = [pool[i * len(pool) // count] for i in range(min(count, len(pool)))]
    negatives = perturbed_question_negatives(sample, 0.5, random.Random(0))
    return sample, negatives


def score_reader(model, tokenizer, examples: list[QAExample], max_length: int = 384, stride: int = 128
                 ) -> list[tuple[str, float]]:
    """Best span per example and its margin over [CLS] (span logit - null logit, best window)."""
    from retrieval.reader.spans import best_spans

    model.eval()
    found = best_spans(model, tokenizer, [e.question for e in examples], [e.context for e in examples],
                       max_length=max_length, stride=stride)
    model.train()
    return [(e.context[s.start:s.end], s.value) if s else ("", float("-inf")) for e, s in zip(examples, found)]


def evaluate_held_out(model, tokenizer, answerable: list[QAExample], unanswerable: list[QAExample],
                      max_length: int) -> dict:
    from eval.metrics import mean, score_prediction

    spans = score_reader(model, tokenizer, answerable + unanswerable, max_length=max_length)
    answered, refused = spans[:len(answerable)], spans[len(answerable):]
    f1 = [score_prediction(text, [t for t, _ in e.answers])[1] for (text, _), e in zip(answered, answerable)]
    null_rule = [score_prediction(text if score > 0 else None, [t for t, _ in e.answers])[1]
                 for (text, score), e in zip(answered, answerable)]
    null_rule += [1.0 if score <= 0 else 0.0 for _, score in refused]
    return {"held_out_f1": round(100 * mean(f1), 2), "held_out_null_rule_f1": round(100 * mean(null_rule), 2),
            "held_out_no_answer_accuracy": round(100 * mean(1.0 if s <= 0 else 0.0 for _, s in refused), 2),
            "questions": len(answerable), "edited_negatives": len(unanswerable)}


def withhold_paragraphs(paragraphs: list[dict], share: float, chooser: random.Random) -> list[dict]:
    """The paragraphs left in after about `share` of them are withheld; a withheld paragraph's questions
    move, unanswerable, to the nearest paragraph left in (the one before on a tie). A paragraph whose
    answers another paragraph of the article holds is never withheld, and one paragraph always stays."""
    from eval.metrics import contains_answer

    withheld = set()
    for position, paragraph in enumerate(paragraphs):
        answers = [a["text"] for qa in paragraph["qas"] for a in qa.get("answers", [])]
        if (answers and len(withheld) < len(paragraphs) - 1 and chooser.random() < share
                and not any(contains_answer(p["context"], answers) for p in paragraphs if p is not paragraph)):
            withheld.add(position)
    kept = [position for position in range(len(paragraphs)) if position not in withheld]
    for position in sorted(withheld):
        neighbour = paragraphs[min(kept, key=lambda k: (abs(k - position), k > position))]
        neighbour["qas"] += [{"id": f"{qa['id']}-withheld", "question": qa["question"], "answers": [],
                              "is_impossible": True} for qa in paragraphs[position]["qas"] if qa.get("answers")]
    return [paragraphs[k] for k in kept]


def remove_answer_sentences(paragraphs: list[dict], share: float, chooser: random.Random) -> list[dict]:
    """About `share` of the paragraphs lose the sentence that holds one of their questions' answers; the
    questions it answered stay, unanswerable, and the others keep their answers at the new offsets.

    What is left is on the question's subject, one sentence away from an answer that is not there: the
    kind of unanswerable question SQuAD 2.0 and users ask, and harder than a whole paragraph left out. A
    sentence is removed only when its answers are nowhere else in the article and two sentences remain; a
    question it answered whose answer another paragraph also holds is dropped (where, is not known).
    """
    from eval.metrics import contains_answer
    from retrieval.reader.training_data import sentence_spans, sentences_holding

    out = []
    for position, paragraph in enumerate(paragraphs):
        context = paragraph["context"]
        answered = [qa for qa in paragraph["qas"] if qa.get("answers")]
        if not answered or chooser.random() >= share:
            out.append(paragraph)
            continue
        chosen = chooser.choice(answered)
        spans = sentence_spans(context)
        removed = sentences_holding(spans, [(answer["text"], answer["answer_start"]) for answer in chosen["answers"]])
        kept = [span for span in spans if span not in removed]
        new_context, starts = "", {}
        for a, b in kept:
            new_context += " " if new_context else ""
            starts[(a, b)] = len(new_context) - a
            new_context += context[a:b]
        elsewhere = [new_context] + [p["context"] for k, p in enumerate(paragraphs) if k != position]
        if not removed or len(kept) < 2 or any(
                contains_answer(text, [answer["text"] for answer in chosen["answers"]]) for text in elsewhere):
            out.append(paragraph)
            continue
        qas = []
        for qa in paragraph["qas"]:
            if not qa.get("answers"):
                qas.append(qa)
                continue
            moved = [{"text": answer["text"], "answer_start": answer["answer_start"] + starts[(a, b)]}
                     for answer in qa["answers"] for a, b in kept
                     if a <= answer["answer_start"] and answer["answer_start"] + len(answer["text"]) <= b]
            if moved:
                qas.append(qa | {"answers": moved})
            elif not any(contains_answer(text, [answer["text"] for answer in qa["answers"]]) for text in elsewhere):
                qas.append({"id": f"{qa['id']}-removed", "question": qa["question"], "answers": [],
                            "is_impossible": True})
        out.append(paragraph | {"context": new_context, "qas": qas})
    return out


def write_held_out_file(campaign: dict, out: Path, unanswerable: float = 0.0, withhold: float = 0.0,
                        remove_sentences: float = 0.0) -> None:
    """The held-out set as one SQuAD file: every article of it, questions of the held-out ones only.

    With `unanswerable` > 0, about that share of the held-out questions also get an edited copy
    that their paragraph no longer answers (the training run's edits), marked `is_impossible` as in
    SQuAD 2.0: a tuning collection for `byline eval --open` on which a no-answer threshold can be
    chosen, never the dev sets.

    With `withhold` > 0, about that share of the held-out documents' paragraphs are left out of the
    collection, and their questions, marked `is_impossible`, go with the paragraph before (or after):
    questions on the collection's subject that it does not answer, as a user asks of news articles. A
    paragraph is withheld only when no other paragraph of its article holds one of its questions' answers.

    With `remove_sentences` > 0, about that share of the paragraphs left in lose the sentence that holds
    one question's answer (`remove_answer_sentences`), and the questions it answered go unanswered.
    """
    spec = campaign["held_out"]
    path = Path(campaign["train_dir"]) / spec["set"]
    payload = json.loads(path.read_text(encoding="utf-8"))
    examples, _ = load_set(Path(campaign["train_dir"]), MixEntry(spec["set"]))
    documents = held_out_documents(examples, int(spec["every_nth_document"]))
    edited: dict[str, list[QAExample]] = {}
    if unanswerable > 0:
        kept = [e for e in examples if e.source in documents and e.answerable]
        for example in perturbed_question_negatives(kept, unanswerable, random.Random(2)):
            edited.setdefault(example.context, []).append(example)
    chooser, sentence_chooser = random.Random(3), random.Random(4)
    withheld_any = False
    for index, article in enumerate(payload["data"]):
        paragraphs = article["paragraphs"]
        for paragraph in paragraphs:
            if f"{spec['set']}#{index}" not in documents:
                paragraph["qas"] = []
            for number, example in enumerate(edited.get(paragraph["context"], [])):
                paragraph["qas"].append({"id": f"{example.qid}-edited-{number}", "question": example.question,
                                         "answers": [], "is_impossible": True})
        if withhold > 0 and f"{spec['set']}#{index}" in documents:
            article["paragraphs"] = withhold_paragraphs(paragraphs, withhold, chooser)
            withheld_any |= len(article["paragraphs"]) < len(paragraphs)
        if remove_sentences > 0 and f"{spec['set']}#{index}" in documents:
            article["paragraphs"] = remove_answer_sentences(article["paragraphs"], remove_sentences,
                                                           sentence_chooser)
            withheld_any |= any(qa["id"].endswith("-removed") for p in article["paragraphs"] for qa in p["qas"])
    if edited or withheld_any:
        payload["version"] = "v2.0"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload), encoding="utf-8")


def evaluate_model_folder(campaign: dict, folder: Path) -> dict:
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    torch.set_num_threads(int(campaign.get("threads") or os.cpu_count() or 2))
    model = AutoModelForQuestionAnswering.from_pretrained(str(folder), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    held_out = held_out_questions(campaign, int(campaign.get("held_out", {}).get("eval_questions", 300)))
    return evaluate_held_out(model, tokenizer, *held_out, max_length=int(campaign["features"]["max_length"]))


# ---------------------------------------------------------------- the run folder

def _write_json(path: Path, payload: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(payload, indent=2))
    os.replace(temporary, path)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def ensure_writable(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise CampaignError(f"checkpoint folder {run_dir} is not writable ({exc.strerror}); "
                            f"choose another with --runs-dir or BYLINE_TRAIN_RUNS") from None


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints in step order whose trainer state was written (the Trainer writes it last)."""
    found = [p for p in run_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return sorted((p for p in found if (p / "trainer_state.json").exists()), key=lambda p: int(p.name.split("-")[1]))


def remove_incomplete_checkpoints(run_dir: Path) -> None:
    for path in run_dir.glob("checkpoint-*"):
        if not (path / "trainer_state.json").exists():
            shutil.rmtree(path, ignore_errors=True)


def _running_pid(run_dir: Path) -> int | None:
    try:
        pid = int((run_dir / PID_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and b"retrieval.reader.train" not in cmdline.read_bytes():
        return None
    return pid


def _process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


# ---------------------------------------------------------------- training

def _callbacks(run_dir: Path, plan: dict, campaign: dict, tokenizer, held_out: tuple[list, list]):
    from transformers import TrainerCallback

    minutes = float(campaign.get("checkpoint_minutes", 15))
    threads = int(campaign.get("threads") or os.cpu_count() or 2)
    batch_size = int(campaign["schedule"]["batch_size"])
    max_length = int(campaign["features"]["max_length"])

    class CampaignCallback(TrainerCallback):
        def __init__(self):
            self.status = _read_json(run_dir / STATUS_FILE)
            self.last_save = time.monotonic()
            self.step_started_cpu = time.process_time()
            self.step_seconds: list[float] = []

        def _write(self, state, **extra):
            step = state.global_step
            recent = self.step_seconds[-200:]
            per_step = sum(recent) / len(recent) if recent else self.status.get("seconds_per_step")
            self.status.update({
                "run": plan["name"], "step": step, "total_steps": plan["total_steps"],
                "features_seen": plan["init_features_seen"] + step * batch_size,
                "campaign_features_seen": step * batch_size,
                "seconds_per_step": per_step, "updated": time.strftime("%Y-%m-%d %H:%M:%S"),
                "remaining_hours": round((plan["total_steps"] - step) * per_step / 3600, 2) if per_step else None,
                **extra})
            _write_json(run_dir / STATUS_FILE, self.status)

        def on_step_begin(self, args, state, control, **kwargs):
            while (run_dir / PAUSE_FILE).exists():
                time.sleep(5)
            self.step_started_cpu = time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            # A step's cost is the process's CPU time over its threads: the wall time it takes running
            # alone. Wall time would count kill -STOP pauses and time lost to other work on the machine.
            seconds = (time.process_time() - self.step_started_cpu) / threads
            self.status["train_seconds"] = self.status.get("train_seconds", 0.0) + seconds
            self.step_seconds.append(seconds)
            if time.monotonic() - self.last_save >= minutes * 60 or (run_dir / CHECKPOINT_NOW_FILE).exists():
                control.should_save = True
            if state.global_step % 10 == 0:
                self._write(state)
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            extra = {k: logs[k] for k in ("loss", "learning_rate") if k in logs}
            if extra:
                self._write(state, **extra)

        def on_save(self, args, state, control, model=None, **kwargs):
            self.last_save = time.monotonic()
            (run_dir / CHECKPOINT_NOW_FILE).unlink(missing_ok=True)
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            snapshots = run_dir / "snapshots"
            snapshots.mkdir(exist_ok=True)
            weights = checkpoint / "model.safetensors"
            if weights.exists():
                shutil.copyfile(weights, snapshots / f"step-{state.global_step:06d}.safetensors")
            if held_out[0] and model is not None:
                scores = evaluate_held_out(model, tokenizer, *held_out, max_length=max_length)
                scores["step"] = state.global_step
                _write_json(checkpoint / "held_out_eval.json", scores)
                self.status.setdefault("evaluations", []).append(scores)
                self._write(state, last_evaluation=scores)
            else:
                self._write(state)

    return [CampaignCallback()]


def run_campaign(campaign: dict, run_dir: Path, command: list[str], dry_run: bool = False) -> int:
    import numpy as np
    import torch
    from transformers import (AutoModelForQuestionAnswering, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    ensure_writable(run_dir)
    running = _running_pid(run_dir)
    if running and running != os.getpid():
        raise CampaignError(f"run {run_dir.name} is already training as pid {running}")
    (run_dir / PID_FILE).write_text(str(os.getpid()))
    schedule = campaign["schedule"]
    seed = int(schedule["seed"])
    set_seed(seed)
    torch.set_num_threads(int(campaign.get("threads") or os.cpu_count() or 2))

    plan = _read_json(run_dir / PLAN_FILE)
    data = data_identity(campaign)
    if plan:
        changed = _differences(plan["data"], data, "data.") + _differences(plan["schedule"], schedule_identity(campaign), "schedule.")
        if changed:
            raise CampaignError(f"run {run_dir.name} was planned differently; changed since: {'; '.join(changed[:6])}"
                                f" (keep the campaign file as it was to resume, or give the campaign a new name)")

    precision = training_precision(schedule, torch.cuda.is_available())

    init_dir = run_dir / "init"
    if not init_dir.exists():
        source = Path(campaign["init_from"])
        if not (source / "config.json").exists():
            raise CampaignError(f"init_from {source} is not a model folder")
        shutil.copytree(source, run_dir / "init.tmp", dirs_exist_ok=True)
        os.replace(run_dir / "init.tmp", init_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(init_dir))

    # Runs with the same data (a campaign and its probes) share one features file.
    data_key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    features_path = run_dir.parent / "features" / f"{data_key}.npz"
    arrays = None
    if features_path.exists():
        loaded = np.load(features_path)
        arrays = {k: loaded[k] for k in loaded.files}
        summary = json.loads(str(loaded["summary"])) if "summary" in loaded.files else {}
        arrays.pop("summary", None)
        if plan and features_digest(arrays) != plan["features_sha256"]:
            arrays = None
    if arrays is None:
        print("featurizing the training mix...", flush=True)
        arrays, summary = featurize(campaign, tokenizer)
        digest = features_digest(arrays)
        if plan and digest != plan["features_sha256"]:
            raise CampaignError(f"run {run_dir.name}: the same files and settings now make different features "
                                f"(the featurizing code changed); resume with the code that started it")
        features_path.parent.mkdir(exist_ok=True)
        temporary = features_path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, summary=np.array(json.dumps(summary)), **arrays)
        os.replace(temporary, features_path)
    lengths = np.diff(arrays["offsets"])
    batch_size = int(schedule["batch_size"])
    order = campaign_order(lengths, float(schedule["epochs"]), batch_size, seed)
    total_steps = int(schedule.get("max_steps") or len(order) // batch_size)
    if not plan:
        plan = {"name": run_dir.name, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command,
                "data": data, "schedule": schedule_identity(campaign), "features_sha256": features_digest(arrays),
                "data_summary": summary, "total_steps": total_steps,
                "warmup_steps": int(float(schedule.get("warmup_ratio", 0.05)) * total_steps),
                "init_from": campaign["init_from"], "init_sha256": _sha256(init_dir / "model.safetensors"),
                "init_features_seen": int(campaign.get("init_features_seen", 0)),
                "campaign_tokens": int(lengths[order].sum())}
        _write_json(run_dir / PLAN_FILE, plan)
    print(json.dumps({k: summary[k] for k in ("examples", "features", "unanswerable_features", "tokens")}
                     | {"total_steps": total_steps, "run_dir": str(run_dir)}), flush=True)
    if dry_run:
        return 0

    remove_incomplete_checkpoints(run_dir)
    checkpoints = complete_checkpoints(run_dir)
    model = AutoModelForQuestionAnswering.from_pretrained(str(init_dir), dtype=torch.float32)
    training_args = TrainingArguments(
        output_dir=str(run_dir),
        per_device_train_batch_size=batch_size,
        learning_rate=float(schedule["learning_rate"]),
        weight_decay=float(schedule.get("weight_decay", 0.01)),
        max_steps=total_steps,
        warmup_steps=plan["warmup_steps"],
        lr_scheduler_type=schedule.get("decay", "linear"),
        logging_steps=10,
        save_strategy="steps",
        save_steps=total_steps,  # the final step; the time-based saves come from the callback
        save_total_limit=2,
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=precision == "bfloat16",
        train_sampling_strategy="sequential",  # the order is the campaign's, fixed in campaign_order
        dataloader_num_workers=0,
        report_to=[],
        disable_tqdm=True,
    )
    held_out = held_out_questions(campaign, int(campaign.get("held_out", {}).get("eval_questions", 0)))
    trainer = Trainer(model=model, args=training_args, train_dataset=OrderedFeatures(arrays, order),
                      data_collator=DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
                      callbacks=_callbacks(run_dir, plan, campaign, tokenizer, held_out))
    resume = str(checkpoints[-1]) if checkpoints else None
    print(f"{'resuming from ' + checkpoints[-1].name if resume else 'starting'}: "
          f"{total_steps} steps of {batch_size}", flush=True)
    try:
        trainer.train(resume_from_checkpoint=resume)
        final_dir = run_dir / "final"
        trainer.save_model(str(final_dir))
        tokenizer.save_pretrained(str(final_dir))
    except OSError as exc:
        remove_incomplete_checkpoints(run_dir)
        kept = complete_checkpoints(run_dir)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        raise CampaignError(f"writing a checkpoint failed ({reason}); the last good checkpoint, "
                            f"{kept[-1].name if kept else 'none yet'}, is kept") from None
    status = _read_json(run_dir / STATUS_FILE)
    status["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _write_json(run_dir / STATUS_FILE, status)
    print(f"finished: {final_dir}")
    return 0


# ---------------------------------------------------------------- status

def resolve_run(runs_dir: Path, run: str | None) -> Path:
    if run and Path(run).expanduser().is_dir():
        return Path(run).expanduser()
    if run:
        return runs_dir / run
    runs = [p for p in runs_dir.glob("*") if (p / PLAN_FILE).exists()] if runs_dir.is_dir() else []
    if not runs:
        raise CampaignError(f"no training run in {runs_dir}")
    return max(runs, key=lambda p: (p / PLAN_FILE).stat().st_mtime)


def status_lines(run_dir: Path) -> list[str]:
    plan = _read_json(run_dir / PLAN_FILE)
    if not plan:
        raise CampaignError(f"{run_dir} is not a training run (no {PLAN_FILE})")
    status = _read_json(run_dir / STATUS_FILE)
    pid = _running_pid(run_dir)
    if status.get("finished"):
        state = f"finished {status['finished']}"
    elif pid:
        paused = _process_state(pid) == "T" or (run_dir / PAUSE_FILE).exists()
        state = f"{'paused' if paused else 'running'} (pid {pid}, process group {os.getpgid(pid)})"
    else:
        state = "stopped"
    step, total = status.get("step", 0), plan["total_steps"]
    lr = status.get("learning_rate")
    lines = [
        f"run {plan['name']} ({run_dir}): {state}",
        f"step {step:,}/{total:,} ({100 * step / total:.1f}%), features seen {status.get('features_seen', plan['init_features_seen']):,}"
        f" ({status.get('campaign_features_seen', 0):,} in this campaign, {plan['init_features_seen']:,} before it)",
        f"learning rate {lr:.3g}" if lr is not None else "learning rate: not logged yet",
        f"elapsed {status.get('train_seconds', 0) / 3600:.2f} h of training, about "
        f"{status.get('remaining_hours') if status.get('remaining_hours') is not None else '?'} h remaining"
        f" ({status.get('seconds_per_step') or 0:.1f} s/step; hours as if running alone: CPU time over its threads)",
    ]
    last = status.get("last_evaluation")
    lines.append(f"last evaluation (step {last['step']}, held-out training documents): F1 {last['held_out_f1']}, "
                 f"null-rule F1 {last['held_out_null_rule_f1']}, no-answer accuracy {last['held_out_no_answer_accuracy']}"
                 if last else "last evaluation: none yet")
    checkpoints = complete_checkpoints(run_dir)
    lines.append(f"newest checkpoint: {checkpoints[-1] if checkpoints else 'none yet'}"
                 + (f" (checkpoint now: touch {run_dir / CHECKPOINT_NOW_FILE})" if pid else ""))
    lines.append("resume: nice -n 19 " + " ".join(plan["command"]) + " --background")
    return lines


def lower_autogroup_priority(pid: int) -> None:
    """Give the new session's scheduler group nice 19 too, where Linux groups processes by session.

    With autogroup scheduling (kernel.sched_autogroup_enabled), a process's nice value only weighs
    against processes of its own session; `start_new_session` puts the trainer in a group of its own,
    which would otherwise take a whole fair share of the CPU beside an interactive shell.
    """
    try:
        Path(f"/proc/{pid}/autogroup").write_text("19")
    except OSError:
        pass  # no autogroup (other kernels, or not permitted): nice alone applies


# Allocators that keep freed memory for reuse. glibc hands every block over 32 MB (a step's
# attention and activation tensors) back to the kernel when it is freed, and on these virtual
# machines faulting it back in each step is dear: a 16 x 256 training step measured 5.1 s with
# glibc (2.8 s of it system time), 3.0 s with tcmalloc and 3.2 s with jemalloc (training paused).
CACHING_ALLOCATORS = [
    ("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", {"TCMALLOC_RELEASE_RATE": "0",
                                                            "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}),
    ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", {"MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"}),
]


def caching_allocator_env(environ: Mapping[str, str], candidates=CACHING_ALLOCATORS) -> tuple[dict[str, str], str | None]:
    """The trainer's environment with the first installed caching allocator preloaded, and its path
    (None when none is installed, or one is already preloaded: glibc's malloc then stays)."""
    if environ.get("LD_PRELOAD"):
        return dict(environ), None
    for library, settings in candidates:
        if Path(library).exists():
            return {**environ, **settings, "LD_PRELOAD": library}, library
    return dict(environ), None


def start_in_background(argv: list[str], run_dir: Path) -> int:
    """Re-run this command detached, under nice -n 19, in its own process group."""
    ensure_writable(run_dir)
    running = _running_pid(run_dir)
    if running:
        print(f"run {run_dir.name} is already training (pid {running}, process group {os.getpgid(running)})")
        return 0
    log = run_dir / "train.log"
    child_argv = [a for a in argv if a != "--background"]
    environ, allocator = caching_allocator_env(os.environ)
    with log.open("a") as handle:
        process = subprocess.Popen(["nice", "-n", "19", sys.executable, "-m", "retrieval.reader.train", *child_argv],
                                   stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, cwd=os.getcwd(), env=environ)
    (run_dir / PID_FILE).write_text(str(process.pid))
    lower_autogroup_priority(process.pid)
    print(f"training {run_dir.name} in the background: pid {process.pid} (process group {process.pid}), log {log}\n"
          f"pause: kill -STOP -{process.pid}   resume: kill -CONT -{process.pid}   "
          f"status: python -m retrieval.reader.train --status {run_dir.name}\n"
          + (f"allocator: {allocator}" if allocator else
             "allocator: glibc malloc (apt-get install libtcmalloc-minimal4 makes steps about 1.7x faster)"))
    return 0


def share(text: str) -> float:
    """An argparse type: a share of the questions or paragraphs, between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaign", type=Path, help="the campaign file (config/reader-campaign.yaml)")
    parser.add_argument("--runs-dir", type=Path, default=None, help="where runs live (default: the user cache)")
    parser.add_argument("--status", nargs="?", const="", metavar="RUN", help="print where a run stands")
    parser.add_argument("--background", action="store_true", help="start or resume detached, under nice -n 19")
    parser.add_argument("--probe-lr", type=float, help="a short probe run at this constant learning rate")
    parser.add_argument("--probe-steps", type=int, default=150)
    parser.add_argument("--dry-run", action="store_true", help="featurize and plan, then stop")
    parser.add_argument("--write-held-out", type=Path, metavar="FILE",
                        help="write the held-out set as a SQuAD file: every article, questions of the held-out ones only "
                             "(a collection for tuning `byline eval --open`)")
    parser.add_argument("--unanswerable", type=share, default=0.0, metavar="SHARE",
                        help="with --write-held-out: also an edited, unanswerable copy of about this share of "
                             "the questions (SQuAD 2.0 style), for choosing a no-answer threshold")
    parser.add_argument("--withhold", type=share, default=0.0, metavar="SHARE",
                        help="with --write-held-out: leave about this share of the held-out documents' paragraphs "
                             "out of the collection, their questions kept as unanswerable")
    parser.add_argument("--remove-sentences", type=share, default=0.0, metavar="SHARE",
                        help="with --write-held-out: about this share of the held-out paragraphs lose the sentence "
                             "holding one question's answer, the questions it answered kept as unanswerable")
    parser.add_argument("--held-out-eval", type=Path, metavar="MODEL",
                        help="score a model folder on the campaign's held-out training documents")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    runs_dir = (args.runs_dir or default_runs_dir()).expanduser().resolve()
    try:
        if args.status is not None:
            print("\n".join(status_lines(resolve_run(runs_dir, args.status or None))))
            return 0
        if not args.campaign:
            raise CampaignError("give --campaign FILE (or --status)")
        campaign = load_campaign(args.campaign)
        python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable
        command = [python, "-m", "retrieval.reader.train", "--campaign", str(args.campaign)]
        if args.runs_dir:
            command += ["--runs-dir", str(args.runs_dir)]
        if args.probe_lr:
            campaign["name"] = f"{campaign['name']}-probe-{args.probe_lr:g}"
            campaign["schedule"] |= {"learning_rate": args.probe_lr, "max_steps": args.probe_steps,
                                     "decay": "constant_with_warmup", "warmup_ratio": 0.1}
            campaign["checkpoint_minutes"] = 10 ** 6  # one checkpoint, at the end, scored on the held-out set
            command += ["--probe-lr", f"{args.probe_lr:g}", "--probe-steps", str(args.probe_steps)]
        if args.write_held_out:
            write_held_out_file(campaign, args.write_held_out, args.unanswerable, args.withhold,
                                args.remove_sentences)
            print(args.write_held_out)
            return 0
        if args.held_out_eval:
            print(json.dumps(evaluate_model_folder(campaign, args.held_out_eval)))
            return 0
        run_dir = runs_dir / campaign["name"]
        if args.background:
            return start_in_background(argv, run_dir)
        return run_campaign(campaign, run_dir, command, dry_run=args.dry_run)
    except (CampaignError, TrainingDataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
