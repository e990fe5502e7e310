import json
import re

from bot.slack.blocks import NO_ANSWER, escape, render_answer, snippet_mrkdwn, text_fragment_url
from retrieval.answer import Answer, AnswerResult, Citation
from slack_support import visible_texts


def citation(doc_id="a1", snippet="Before. The mayor said the bridge opens in May. After.", span="May", **fields):
    start = snippet.index(span)
    defaults = dict(title="Bridge opens", publisher="The Courier", published="2024-05-02",
                    url="https://news.example/bridge")
    return Citation(doc_id=doc_id, snippet=snippet, answer_start=start, answer_end=start + len(span),
                    article_start=100 + start, article_end=100 + start + len(span), **{**defaults, **fields})


def answered(*citations, text="May", score=0.82, question="When does the bridge open?", others=()):
    return AnswerResult(question, False, [Answer(text, score, list(citations)), *others], latency_ms=5.0)


def test_answer_is_bold_with_confidence_as_of_citations_sources_and_buttons():
    result = answered(citation("a1", published="2024-05-02"),
                      citation("a2", title="Second", publisher=None, published="2024-06-01", url=None),
                      others=[Answer("June", 0.3)])
    message = render_answer(result, ref="r1")
    blocks = message["blocks"]
    assert blocks[0]["text"]["text"] == "*May*"
    facts = blocks[1]["elements"][0]["text"]
    assert facts.startswith("High confidence (0.82) · as of 2024-06-01")
    assert "June (0.30)" in facts
    first, second = blocks[2]["text"]["text"], blocks[3]["text"]["text"]
    assert first.startswith("*<https://news.example/bridge#:~:text=May|Bridge opens>*\n_The Courier · 2024-05-02_\n> ")
    assert first.endswith("> Before. The mayor said the bridge opens in *May*. After.")
    assert second.startswith("*Second*\n_2024-06-01_\n")  # no URL: title unlinked
    assert blocks[4]["elements"][0]["text"] == "Sources: 2 articles, 2024-05-02 to 2024-06-01"
    buttons = blocks[5]["elements"]
    assert [b["action_id"] for b in buttons] == ["feedback_up", "feedback_down"]
    assert json.loads(buttons[0]["value"]) == {"ref": "r1", "q": "When does the bridge open?", "a": "May",
                                               "d": ["a1", "a2"]}
    assert message["text"] == "May (high confidence)"


def test_shareable_answer_names_the_asker_and_has_a_share_button():
    message = render_answer(answered(citation()), ref="r1", asked_by="U42", shareable=True)
    assert message["blocks"][0]["elements"][0]["text"] == "<@U42> asked: When does the bridge open?"
    assert [b["action_id"] for b in message["blocks"][-1]["elements"]] == ["share_answer", "feedback_up",
                                                                          "feedback_down"]


def test_at_most_max_citations():
    result = answered(*[citation(f"a{i}") for i in range(5)])
    sections = [b for b in render_answer(result, ref="r", max_citations=3)["blocks"] if b["type"] == "section"]
    assert len(sections) == 1 + 3
    assert render_answer(result, ref="r")["blocks"][-2]["elements"][0]["text"] == \
        "Sources: 5 articles, all dated 2024-05-02"


def test_no_answer_shows_the_two_closest_passages():
    closest = [citation(f"c{i}", span="") for i in range(3)]
    result = AnswerResult("Who won?", True, [], closest=closest)
    message = render_answer(result, ref="r")
    texts = visible_texts(message)
    assert message["text"] == NO_ANSWER
    assert texts[1] == "I couldn't find that in the articles."
    assert sum("Bridge opens" in t for t in texts) == 2
    assert not any("*May*" in t for t in texts)
    assert json.loads(message["blocks"][-1]["elements"][0]["value"])["a"] is None


def test_text_fragment_url():
    assert text_fragment_url("https://x.example/a", "in May") == "https://x.example/a#:~:text=in%20May"
    assert text_fragment_url("https://x.example/a#top", "a-b, c&d") == "https://x.example/a#top:~:text=a%2Db%2C%20c%26d"
    long_span = "one two three four five six seven eight nine ten"
    assert text_fragment_url("https://x.example/a", long_span).endswith(
        "#:~:text=one%20two%20three%20four,seven%20eight%20nine%20ten")
    assert text_fragment_url(None, "May") is None
    assert text_fragment_url("https://x.example/a", "") == "https://x.example/a"


def test_only_http_links():
    result = answered(citation(url="javascript:alert(1)"))
    assert render_answer(result, ref="r")["blocks"][2]["text"]["text"].startswith("*Bridge opens*\n")


def test_article_and_question_text_never_pings_or_links():
    hostile = "Hi <!channel> <!here|here> <@U123> <#C1|general> <https://evil.example|click> & co"
    snippet = f"{hostile}. The answer is {hostile}. Tail {hostile}."
    result = answered(citation(snippet=snippet, span=f"The answer is {hostile}", title=hostile, publisher=hostile,
                               url="https://news.example/a|b>c"),
                      text=hostile, question=hostile)
    texts = visible_texts(render_answer(result, ref="r", asked_by="U42", shareable=True))
    everything = "\n".join(texts)
    assert "<!" not in everything and "<@U123" not in everything and "<#" not in everything
    assert "<https://evil" not in everything
    assert "&lt;!channel&gt;" in everything and "&lt;@U123&gt;" in everything and "&amp; co" in everything
    links = re.findall(r"<([^>]*)>", everything)
    assert links[0] == "@U42" and len(links) == 2
    url, label = links[1].split("|", 1)
    assert url.startswith("https://news.example/a%7Cb%3Ec#:~:text=The%20answer%20is%20Hi,")
    assert label == escape(hostile)


def test_escape():
    assert escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"


def test_long_snippet_is_trimmed_around_the_span():
    snippet = "x" * 5000 + " lead in words. The span itself. trailing words " + "y" * 5000
    text = snippet_mrkdwn(citation(snippet=snippet, span="The span itself."), limit=200)
    assert "*The span itself.*" in text
    assert text.startswith("…") and text.endswith("…")
    assert len(text) < 220


def test_block_kit_limits_hold_for_huge_content():
    huge = "word " * 3000
    cits = [citation(f"a{i}", snippet=huge + "SPAN" + huge, span="SPAN", title=huge, publisher=huge) for i in range(80)]
    result = answered(*cits, text=huge + "<" * 2000, question="&" * 5000)
    message = render_answer(result, ref="r", max_citations=80, asked_by="U1", shareable=True)
    blocks = message["blocks"]
    assert len(blocks) <= 50 and blocks[-1]["type"] == "actions"
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        for element in block.get("elements", []):
            assert len(element.get("value", "")) <= 2000
            if block["type"] == "context":
                assert len(element["text"]) <= 3000
    assert "*SPAN*" in blocks[3]["text"]["text"]
