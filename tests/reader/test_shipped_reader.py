"""The reader Byline ships: loads offline both ways, answers a paragraph, says "no answer"."""

import json

import pytest
from haystack import Document

import known_wrong
from retrieval.config import REPO_ROOT, load_config
from retrieval.errors import BylineError
from retrieval.reader.extractive import load_reader

READER_DIR = REPO_ROOT / "models" / "byline-reader"
PARAGRAPH = ("The Vellmar stone bridge reopened on Friday, 3 May, after two years of repairs. "
             "The work cost the town 2.5 million euros and was led by the engineer Maria Olsen. "
             "Mayor Anna Roth cut the ribbon in front of about 400 residents.")
QUESTIONS = {  # question -> acceptable answers
    "Who led the repair work?": {"Maria Olsen", "the engineer Maria Olsen"},
    "How much did the repairs cost?": {"2.5 million euros"},
    "Who cut the ribbon?": {"Anna Roth", "Mayor Anna Roth"},
    "How many residents watched?": {"400", "about 400"},
    "When did the bridge reopen?": {"Friday, 3 May", "3 May", "on Friday, 3 May", "Friday", "on Friday"},
}


@pytest.fixture(scope="module")
def reader():
    return load_reader(str(READER_DIR))


def test_shipped_model_is_small_safetensors_in_half_precision():
    weights = READER_DIR / "model.safetensors"
    assert weights.stat().st_size <= 50 * 1024 * 1024
    header_size = int.from_bytes(weights.read_bytes()[:8], "little")
    header = json.loads(weights.read_bytes()[8:8 + header_size])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} <= {"F16", "BF16"}
    assert (READER_DIR / "tokenizer.json").exists() and (READER_DIR / "README.md").exists()


def test_loads_with_auto_model_for_question_answering_offline():
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    model = AutoModelForQuestionAnswering.from_pretrained(str(READER_DIR))
    tokenizer = AutoTokenizer.from_pretrained(str(READER_DIR))
    assert model.config.architectures == ["BertForQuestionAnswering"]
    assert tokenizer("a question", "a context")["input_ids"][0] == tokenizer.cls_token_id


def test_reader_passes_the_segment_ids_the_model_was_trained_with(reader):
    """The span scores are those of a call with the tokenizer's segment ids, not of Haystack's call
    without them (which would read every token as segment A and give other logits)."""
    import torch

    from retrieval.reader.spans import find_spans

    question = "Who led the repair work?"
    encoded = reader.tokenizer(question, PARAGRAPH, return_tensors="pt")
    assert encoded["token_type_ids"].sum() > 0
    with torch.no_grad():
        with_segments = reader.model(**encoded)
        without_segments = reader.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
    assert not torch.allclose(with_segments.start_logits, without_segments.start_logits)
    best = max(find_spans(reader.model, reader.tokenizer, [question], [PARAGRAPH])[0], key=lambda s: s.value)
    first = encoded.char_to_token(best.start, sequence_index=1)
    last = encoded.char_to_token(best.end - 1, sequence_index=1)
    expected = (with_segments.start_logits[0, first] + with_segments.end_logits[0, last]
                - with_segments.start_logits[0, 0] - with_segments.end_logits[0, 0])
    assert best.value == pytest.approx(float(expected), abs=1e-3)


def test_no_span_runs_across_a_line_break(reader):
    from retrieval.reader.spans import find_spans

    # two paragraphs as the focus step hands them over: the best span once ran from "Washington" to "San Francisco"
    passage = ("A panel of judges on the U.S. appeals court in Washington signaled skepticism in mid-December over "
               "the Trump administration's continuing efforts to effectively ban U.S. users from downloading TikTok.\n\n"
               "In January, a separate U.S. Court of Appeals in San Francisco also voiced doubts over government efforts "
               "to overturn an order by a lower court judge, who had granted a preliminary injunction against "
               "restrictions set on WeChat users.")
    question = "Where is the appeals court that voiced doubts about the WeChat restrictions?"
    spans = find_spans(reader.model, reader.tokenizer, [question], [passage])[0]
    assert spans and all("\n" not in passage[s.start:s.end] for s in spans)
    best = max(spans, key=lambda s: s.value)
    assert passage[best.start:best.end] == "San Francisco"


def _crosses_a_sentence_end(starts: list[int], start: int, end: int) -> bool:
    return any(start < s < end for s in starts)


def test_no_span_runs_across_a_sentence_end(reader):
    from retrieval.ingest.chunking import split_sentences
    from retrieval.reader.spans import find_spans

    starts = [s.start for s in split_sentences("", PARAGRAPH)[1:]]
    assert len(starts) == 2
    question = "How much did the repairs cost?"
    unbounded = find_spans(reader.model, reader.tokenizer, [question], [PARAGRAPH])[0]
    assert any(_crosses_a_sentence_end(starts, s.start, s.end) for s in unbounded)
    bounded = find_spans(reader.model, reader.tokenizer, [question], [PARAGRAPH], sentence_starts=[starts])[0]
    assert bounded and not any(_crosses_a_sentence_end(starts, s.start, s.end) for s in bounded)
    # the serving reader splits a bare passage itself
    answers = reader.run(query=question, documents=[Document(content=PARAGRAPH)], top_k=10)["answers"]
    assert answers and not any(_crosses_a_sentence_end(starts, a.document_offset.start, a.document_offset.end)
                               for a in answers)


def test_batched_spans_match_one_pair_at_a_time(reader):
    """Pairs batched with others of other lengths (padding) get the spans and scores they get alone."""
    questions = list(QUESTIONS) + ["Who invented the telephone?"]
    passages = [PARAGRAPH, PARAGRAPH[:90], PARAGRAPH + " " + PARAGRAPH, PARAGRAPH, PARAGRAPH[40:], PARAGRAPH]
    together = reader.best_spans(questions, passages)
    alone = [reader.best_spans([q], [p])[0] for q, p in zip(questions, passages)]
    assert [text for text, _ in together] == [text for text, _ in alone]
    assert [score for _, score in together] == pytest.approx([score for _, score in alone], abs=1e-4)


KNOWN_WRONG = {  # question -> why (known_wrong.params)
    "How much did the repairs cost?": "campaign 16's blend prefers 'two years' (of repairs) at 0.681 to "
                                      "'2.5 million euros' at 0.617, as campaign 14's (0.681 to 0.619), "
                                      "campaign 10's (0.716 to 0.680) and campaign 7's did (0.788 to 0.736)",
}


@pytest.mark.parametrize("question", known_wrong.params(QUESTIONS, KNOWN_WRONG))
def test_answers_hand_written_questions(reader, question):
    answers = reader.run(query=question, documents=[Document(content=PARAGRAPH)], top_k=1)["answers"]
    assert answers[0].data.strip(" .,") in QUESTIONS[question]


def test_says_no_answer_when_the_paragraph_cannot_answer(reader):
    threshold = load_config()["reader"]["no_answer_threshold"]
    document = [Document(content=PARAGRAPH)]
    unanswerable = reader.run(query="Who invented the telephone?",
                              documents=document, top_k=1)["answers"][0]
    answerable = reader.run(query="Who led the repair work?", documents=document, top_k=1)["answers"][0]
    assert unanswerable.score < threshold <= answerable.score


def test_span_score_is_relative_to_the_models_own_no_answer_score(reader):
    """score = sigmoid(0.1 * (start + end logit of the span - start + end logit of [CLS]))."""
    import torch

    question = "Who led the repair work?"
    answer = reader.run(query=question, documents=[Document(content=PARAGRAPH)], top_k=1)["answers"][0]
    encoded = reader.tokenizer(question, PARAGRAPH, return_tensors="pt")
    with torch.no_grad():
        output = reader.model(**encoded)
    first = encoded.char_to_token(answer.document_offset.start, sequence_index=1)
    last = encoded.char_to_token(answer.document_offset.end - 1, sequence_index=1)
    span = output.start_logits[0, first] + output.end_logits[0, last]
    null = output.start_logits[0, 0] + output.end_logits[0, 0]
    assert answer.score == pytest.approx(float(torch.sigmoid(0.1 * (span - null))), abs=1e-4)


def test_missing_path_is_one_clear_error(tmp_path):
    with pytest.raises(BylineError, match=f"reader model '{tmp_path / 'nope'}' does not exist; expected a Hugging Face"):
        load_reader(str(tmp_path / "nope"))


def test_folder_without_a_qa_model_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(BylineError, match="is a BertModel, not a question-answering model"):
        load_reader(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BylineError, match="has no readable config.json"):
        load_reader(str(empty))
