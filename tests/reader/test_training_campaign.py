"""The reader's training campaign: planned once, resumed by re-running the same command, and
refused with one line when its data or schedule changed or its folder cannot be written."""

import json
import os
import random
from pathlib import Path

import pytest
import yaml

from retrieval.config import REPO_ROOT
from retrieval.reader import train

PARAGRAPHS = [
    ("The bridge over the Tamar reopened on Friday, 3 May, after two years of repairs. "
     "It was built in 1961 by the county council. Its engineer was Ada Pryce.",
     [("When did the bridge reopen?", "Friday, 3 May"), ("Who was its engineer?", "Ada Pryce"),
      ("When was the bridge built?", "1961")]),
    ("Saltash lies on the west bank of the river. The town has a ferry to Plymouth. "
     "Its mayor is Tom Reed, elected in 2019.",
     [("Who is the mayor of Saltash?", "Tom Reed"), ("Where does the ferry go?", "Plymouth"),
      ("When was the mayor elected?", "2019")]),
]


def write_campaign(tmp_path, **schedule_overrides):
    train_dir = tmp_path / "train"
    (train_dir / "tiny").mkdir(parents=True, exist_ok=True)
    data = {"data": [{"title": f"doc{d}", "paragraphs": [
        {"context": context, "qas": [{"id": f"q{d}-{i}", "question": q,
                                      "answers": [{"text": a, "answer_start": context.index(a)}]}
                                     for i, (q, a) in enumerate(qas)]}]} for d, (context, qas) in enumerate(PARAGRAPHS)]}
    (train_dir / "tiny" / "set.json").write_text(json.dumps(data))
    campaign = {
        "name": "tiny", "init_from": str(REPO_ROOT / "models" / "byline-reader"), "init_features_seen": 100,
        "train_dir": str(train_dir), "threads": 1, "checkpoint_minutes": 0,
        "mix": [{"path": "tiny/set.json", "edited_negatives": 1.0}],
        "features": {"max_length": 128, "doc_stride": 64},
        "schedule": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-5, "warmup_ratio": 0.0,
                     "decay": "linear", "seed": 1} | schedule_overrides,
    }
    path = tmp_path / "config" / "campaign.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(campaign))
    return path


def run(tmp_path, campaign, *extra):
    return train.main(["--campaign", str(campaign), "--runs-dir", str(tmp_path / "runs"), *extra])


def test_a_run_trains_checkpoints_and_resumes_from_its_status(tmp_path, capsys):
    campaign = write_campaign(tmp_path)
    assert run(tmp_path, campaign) == 0
    run_dir = tmp_path / "runs" / "tiny"
    plan = json.loads((run_dir / "plan.json").read_text())
    assert plan["total_steps"] >= 2 and (run_dir / "final" / "model.safetensors").exists()
    assert len(list((run_dir / "snapshots").glob("step-*.safetensors"))) >= 2  # a checkpoint after every step
    capsys.readouterr()
    assert train.main(["--status", str(run_dir)]) == 0
    status = capsys.readouterr().out
    assert f"step {plan['total_steps']}/{plan['total_steps']}" in status
    assert f"features seen {100 + plan['total_steps'] * 4}" in status
    assert "learning rate" in status and "resume:" in status and "--campaign" in status

    # re-running the same command after the last checkpoint trains no further step
    newest = max(run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((newest / "trainer_state.json").read_text())
    assert state["global_step"] == plan["total_steps"]
    assert run(tmp_path, campaign) == 0
    assert "resuming from " + newest.name in capsys.readouterr().out


def test_a_changed_schedule_or_data_file_is_refused_by_name(tmp_path, capsys):
    campaign = write_campaign(tmp_path)
    assert run(tmp_path, campaign, "--dry-run") == 0
    write_campaign(tmp_path, learning_rate=2e-5)
    assert run(tmp_path, campaign, "--dry-run") == 2
    assert "schedule.learning_rate 1e-05 -> 2e-05" in capsys.readouterr().err

    write_campaign(tmp_path)
    data_file = tmp_path / "train" / "tiny" / "set.json"
    data_file.write_text(data_file.read_text().replace("Tom Reed", "Tom Reid"))
    assert run(tmp_path, campaign, "--dry-run") == 2
    err = capsys.readouterr().err
    assert "data.files.tiny/set.json (file contents)" in err and err.count("\n") == 1


def test_a_checkpoint_file_in_the_run_folder_checkpoints_at_the_next_step(tmp_path):
    """Before a stretch of work ends: `touch <run>/CHECKPOINT` saves at the end of the step under way,
    however long until the next timed checkpoint; the file is gone once the checkpoint is written."""
    campaign = write_campaign(tmp_path)
    settings = yaml.safe_load(campaign.read_text())
    settings["checkpoint_minutes"] = 600
    campaign.write_text(yaml.safe_dump(settings))
    run_dir = tmp_path / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "CHECKPOINT").touch()
    assert run(tmp_path, campaign) == 0
    assert (run_dir / "snapshots" / "step-000001.safetensors").exists()
    assert not (run_dir / "CHECKPOINT").exists()
    plan = json.loads((run_dir / "plan.json").read_text())
    steps = sorted(int(p.stem.split("-")[1]) for p in (run_dir / "snapshots").glob("step-*.safetensors"))
    assert steps == [1, plan["total_steps"]]  # then only the final one


def test_a_bfloat16_schedule_trains_in_mixed_precision_where_the_cpu_has_native_bf16(tmp_path, monkeypatch):
    import transformers

    seen = {}
    real_train = transformers.Trainer.train

    def recording_train(trainer, *args, **kwargs):
        seen["bf16"] = trainer.args.bf16
        return real_train(trainer, *args, **kwargs)

    monkeypatch.setattr(train, "native_bf16", lambda: True)  # autocast runs (emulated) on any CPU
    monkeypatch.setattr(transformers.Trainer, "train", recording_train)
    campaign = write_campaign(tmp_path, precision="bfloat16")
    assert run(tmp_path, campaign) == 0
    assert seen["bf16"] is True
    assert (tmp_path / "runs" / "tiny" / "final" / "model.safetensors").exists()


def test_a_bfloat16_schedule_is_refused_in_one_line_where_the_cpu_lacks_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "native_bf16", lambda: False)
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run(tmp_path, write_campaign(tmp_path, precision="bfloat16"), "--dry-run") == 2
    err = capsys.readouterr().err
    assert "native bf16" in err and err.count("\n") == 1
    assert run(tmp_path, write_campaign(tmp_path, precision="float16"), "--dry-run") == 2
    assert "schedule.precision 'float16' is not one of float32, bfloat16" in capsys.readouterr().err


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert train.native_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert not train.native_bf16(cpuinfo)
    assert not train.native_bf16(tmp_path / "missing")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to any folder")
def test_an_unwritable_checkpoint_folder_is_one_line(tmp_path, capsys):
    campaign = write_campaign(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs").chmod(0o500)
    assert run(tmp_path, campaign, "--dry-run") == 2
    assert "is not writable" in capsys.readouterr().err


def test_a_checkpoint_folder_that_is_a_file_is_one_line(tmp_path, capsys):
    campaign = write_campaign(tmp_path)
    (tmp_path / "runs").write_text("not a folder")
    assert run(tmp_path, campaign, "--dry-run") == 2
    err = capsys.readouterr().err
    assert "is not writable" in err and err.count("\n") == 1


def test_averaged_snapshots_ship_with_their_figures_and_curve_point(tmp_path):
    """A run's last snapshots average into a candidate; exporting it writes fp16 weights, the figures
    record (with a new learning-curve point) and a model card naming the campaign."""
    import torch
    from safetensors.torch import load_file

    from retrieval.reader import candidates, export

    campaign = write_campaign(tmp_path)
    assert run(tmp_path, campaign) == 0
    run_dir = tmp_path / "runs" / "tiny"
    snapshots = sorted((run_dir / "snapshots").glob("step-*.safetensors"))[-2:]
    candidate = tmp_path / "candidate"
    assert candidates.average_snapshots(run_dir, 2, candidate) == [s.name for s in snapshots]
    first, second, mean = (load_file(str(p)) for p in (*snapshots, candidate / "model.safetensors"))
    name = "qa_outputs.weight"
    assert torch.allclose(mean[name], (first[name].float() + second[name].float()) / 2, atol=1e-6)

    blended_dir = tmp_path / "blended"
    candidates.average_snapshots(run_dir, 2, blended_dir, init_share=0.25)
    blended = load_file(str(blended_dir / "model.safetensors"))
    start = load_file(str(run_dir / "init" / "model.safetensors"))
    assert (start[name].float() - mean[name]).abs().max() > 1e-5  # training moved it, so the blend is visible
    assert torch.allclose(blended[name], 0.75 * mean[name] + 0.25 * start[name].float(), atol=1e-6)
    assert json.loads((blended_dir / "averaged_from.json").read_text())["init_share"] == 0.25
    with pytest.raises(SystemExit, match="below 1"):
        candidates.average_snapshots(run_dir, 2, tmp_path / "bad", init_share=1.0)
    with_other = tmp_path / "with-other"
    candidates.average_snapshots(run_dir, 2, with_other, init_share=0.5, blend_with=blended_dir)
    assert torch.allclose(load_file(str(with_other / "model.safetensors"))[name],
                          0.5 * mean[name] + 0.5 * blended[name], atol=1e-6)
    with pytest.raises(SystemExit, match="no reader to blend with"):
        candidates.average_snapshots(run_dir, 2, tmp_path / "bad", init_share=0.5, blend_with=tmp_path / "missing")

    gold = {"f1": 0.61, "exact": 0.5, "no_answer_accuracy": 0.85, "citation_precision": 0.5, "recall@5": 0.95}
    full = {"squad-dev-v1.1": {"total": 10570, "exact": 60.0, "f1": 70.0},
            "squad-dev-v2.0": {"total": 11873, "exact": 40.0, "f1": 45.0, "HasAns_f1": 60.0, "NoAns_exact": 30.0}}
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps({**full, "gold": gold, "samples": {"squad-dev-v1.1": {"f1": 70.4},
                                                                     "squad-dev-v2.0": {"f1": 44.6}}}))
    shipped_before = json.loads((export.SHIPPED / export.RECORD).read_text())
    ok, reasons = candidates.verdict({**full, "gold": gold}, shipped_before["figures"])
    assert ok == (70.0 + 45.0 > shipped_before["figures"]["squad-dev-v1.1"]["f1"]
                  + shipped_before["figures"]["squad-dev-v2.0"]["f1"]
                  and gold["no_answer_accuracy"] >= shipped_before["figures"]["gold"]["no_answer_accuracy"] - 0.01
                  and gold["f1"] >= shipped_before["figures"]["gold"]["f1"] - 0.01)
    worse_gold = {**gold, "f1": shipped_before["figures"]["gold"]["f1"] - 0.02}
    assert any("more than 0.01 lower" in r for r in candidates.gold_reasons({"gold": worse_gold}, shipped_before["figures"]))
    ok, reasons = candidates.verdict({"gold": worse_gold, "stopped": "gold f1 lower: the full dev sets were not run"},
                                     shipped_before["figures"])
    assert not ok and reasons[-1].endswith("the full dev sets were not run")
    out = tmp_path / "shipped"
    assert export.main(["--model", str(candidate), "--run", str(run_dir), "--figures", str(figures),
                        "--threshold", "0.55", "--label", "tiny step 6", "--out", str(out)]) == 0
    record = json.loads((out / export.RECORD).read_text())
    assert record["threshold"] == 0.55 and record["figures"]["squad-dev-v1.1"]["f1"] == 70.0
    assert record["curve"][:-1] == shipped_before["curve"]
    assert record["curve"][-1] == {"label": "tiny step 6", "features_seen": record["campaign"]["features_seen"],
                                   "v1.1_sample_f1": 70.4, "v2.0_sample_f1": 44.6}
    card = (out / "README.md").read_text()
    assert "| tiny step 6 |" in card and "**70.0**" in card and "Campaign `tiny` (" in card
    earlier = shipped_before["campaign"]
    assert record["earlier_campaigns"][-1]["run"] == earlier["run"]  # the shipped campaign becomes history
    before, _, this_campaign = card.partition("Campaign `tiny` (")
    assert f"- Campaign `{earlier['run']}`" in before and f"{earlier['train_hours']:.1f} h; shipped as" in before
    assert "the reader shipped before it" in this_campaign.splitlines()[2]
    assert export.main(["--model", str(blended_dir), "--run", str(run_dir), "--figures", str(figures),
                        "--threshold", "0.55", "--label", "tiny blended", "--out", str(tmp_path / "blended-shipped"),
                        "--note", "The machine was lost, so this started again from the shipped reader."]) == 0
    blended_card = (tmp_path / "blended-shipped" / "README.md").read_text()
    assert "blended 75% to 25% with the reader the campaign started from" in blended_card
    assert "\n- The machine was lost, so this started again from the shipped reader.\n- Schedule" in blended_card
    assert "The machine was lost" not in card
    assert export.main(["--model", str(with_other), "--run", str(run_dir), "--figures", str(figures),
                        "--threshold", "0.55", "--label", "tiny with other", "--out", str(tmp_path / "other-shipped")]) == 0
    assert "with the reader in `blended` (`candidates average --blend-with`)" in (
        tmp_path / "other-shipped" / "README.md").read_text()
    next_run = tmp_path / "runs" / "next"
    (next_run / "init").mkdir(parents=True)
    (next_run / "init" / "averaged_from.json").write_text((candidate / "averaged_from.json").read_text())
    steps = ", ".join(str(int(s.stem.split("-")[1])) for s in snapshots)
    assert export.describe_start(next_run).startswith(f"the mean of snapshots {steps} of campaign `tiny` (not shipped")
    header_size = int.from_bytes((out / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((out / "model.safetensors").read_bytes()[8:8 + header_size])
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F16"}


def test_screening_blends_tunes_end_to_end_and_judges_the_gold_half_of_the_rule(tmp_path):
    """`candidates screen`: a candidate per blend share, its threshold chosen on a collection of training
    articles, the gold set run at that threshold, and `check` offered only to one that passes."""
    from retrieval.reader import candidates

    campaign = write_campaign(tmp_path)
    assert run(tmp_path, campaign) == 0
    run_dir = tmp_path / "runs" / "tiny"
    collection = tmp_path / "collection.json"
    collection.write_text(json.dumps({"version": "v2.0", "data": [
        {"title": f"doc{d}", "paragraphs": [{"context": context, "qas": [
            {"id": f"q{d}-{i}", "question": q, "is_impossible": False,
             "answers": [{"text": a, "answer_start": context.index(a)}]} for i, (q, a) in enumerate(qas)]
            + [{"id": f"q{d}-none", "question": "Who painted the ferry's hull?", "is_impossible": True,
                "answers": [], "plausible_answers": []}]}]}
        for d, (context, qas) in enumerate(PARAGRAPHS)]}))
    shipped = json.loads((candidates.SHIPPED / "training.json").read_text())["figures"]
    # a data directory of its own: the bundled articles only, whatever other tests add to theirs
    screened = candidates.screen(run_dir, 2, [0.5], collection, tmp_path / "screen", tmp_path / "gold-data",
                                 shipped, cache_root=tmp_path / "open-eval")
    [row] = screened
    model = Path(row["model"])
    assert model.name == "tiny-last2-init50"
    assert json.loads((model / "averaged_from.json").read_text())["init_share"] == 0.5
    assert 0.0 <= row["threshold"] <= 1.0 and 0.0 <= row["collection_f1"] <= 100.0
    assert 0.0 <= row["gold"]["f1"] <= 1.0 and 0.0 <= row["gold"]["no_answer_accuracy"] <= 1.0
    # the tiny run barely moved the shipped reader, so on the gold set it scores about as the shipped one does
    assert abs(row["gold"]["f1"] - shipped["gold"]["f1"]) < 0.1
    assert row["passes_gold"] == (row["gold"]["f1"] >= shipped["gold"]["f1"] - 0.01
                                  and row["gold"]["no_answer_accuracy"] >= shipped["gold"]["no_answer_accuracy"] - 0.01)
    passing = {**row, "passes_gold": True}
    failing = {**row, "passes_gold": False, "failing": ["gold f1 0.500 vs shipped 0.643: more than 0.01 lower"]}
    [offered], [refused] = (candidates.screen_lines([r], tmp_path / "data") for r in (passing, failing))
    assert f"candidates check --model {model} --threshold {row['threshold']}" in offered
    assert "check" not in refused and refused.endswith("gold f1 0.500 vs shipped 0.643: more than 0.01 lower")


def test_candidates_are_judged_against_the_shipped_reader_measured_with_todays_pipeline(tmp_path):
    """The gold set runs end to end, so the shipped reader's recorded gold figures go stale when retrieval
    or answer assembly changes; the ship rule's gold half compares with them measured again now."""
    from retrieval.config import load_config
    from retrieval.reader import candidates

    record = json.loads((candidates.SHIPPED / "training.json").read_text())
    stale = {**record["figures"], "gold": {**record["figures"]["gold"], "f1": 0.1, "no_answer_accuracy": 0.1}}
    shipped = candidates.shipped_now({**record, "figures": stale}, tmp_path / "gold-data")
    gates = load_config()["eval"]["thresholds"]
    assert shipped["gold"]["f1"] >= gates["f1"] and shipped["gold"]["no_answer_accuracy"] >= gates["no_answer_accuracy"]
    assert shipped["squad-dev-v1.1"] == record["figures"]["squad-dev-v1.1"]  # the reader's own, as recorded
    assert candidates.shipped_now({"figures": stale}, tmp_path / "unused") == stale  # no threshold: nothing to run
    assert not (tmp_path / "unused").exists()


def test_the_held_out_file_can_carry_edited_unanswerable_questions(tmp_path):
    """`--write-held-out FILE --unanswerable SHARE`: a SQuAD 2.0 collection of the held-out documents, for
    choosing a no-answer threshold with `byline eval --open` (never on the dev sets)."""
    campaign = yaml.safe_load(write_campaign(tmp_path).read_text())
    campaign["held_out"] = {"set": "tiny/set.json", "every_nth_document": 2, "eval_questions": 3}
    out = tmp_path / "held-out.json"
    train.write_held_out_file(campaign, out, unanswerable=1.0)
    data = json.loads(out.read_text())
    assert data["version"] == "v2.0"
    held, other = (data["data"][0]["paragraphs"][0]["qas"], data["data"][1]["paragraphs"][0]["qas"])
    assert other == []  # only the held-out document keeps questions
    answerable = [qa for qa in held if not qa.get("is_impossible")]
    edited = [qa for qa in held if qa.get("is_impossible")]
    assert [qa["question"] for qa in answerable] == [q for q, _ in PARAGRAPHS[0][1]]
    assert edited and all(qa["answers"] == [] for qa in edited)
    assert not {qa["question"] for qa in edited} & {q for q, _ in PARAGRAPHS[0][1]}


def test_background_trainer_preloads_the_first_installed_caching_allocator(tmp_path):
    missing, installed, second = tmp_path / "libmissing.so", tmp_path / "libtcmalloc.so", tmp_path / "libjemalloc.so"
    installed.write_bytes(b"")
    second.write_bytes(b"")
    candidates = [(str(missing), {"A": "1"}), (str(installed), {"B": "2"}), (str(second), {"C": "3"})]
    environ, chosen = train.caching_allocator_env({"PATH": "/bin"}, candidates)
    assert chosen == str(installed)
    assert environ == {"PATH": "/bin", "B": "2", "LD_PRELOAD": str(installed)}
    # a preload the user chose is left alone, and nothing installed leaves glibc's malloc
    assert train.caching_allocator_env({"LD_PRELOAD": "/x.so"}, candidates) == ({"LD_PRELOAD": "/x.so"}, None)
    assert train.caching_allocator_env({}, candidates[:1]) == ({}, None)


def test_the_held_out_file_can_withhold_paragraphs_whose_questions_then_go_unanswered(tmp_path):
    """`--withhold SHARE`: paragraphs left out of the collection, their questions kept as unanswerable on
    the nearest paragraph left in; a paragraph whose answer another paragraph of its article holds stays."""
    paragraphs = [("Saltash has a ferry to Plymouth. The ferry leaves at nine.", "Where does the ferry go?", "Plymouth"),
                  ("Tom Reed is the mayor of Saltash. He was elected in 2019.", "Who is the mayor of Saltash?", "Tom Reed"),
                  ("The mayor Tom Reed opened the new market.", "What did the mayor open?", "the new market")]
    data = {"data": [{"title": "held", "paragraphs": [
        {"context": c, "qas": [{"id": f"p{i}", "question": q, "answers": [{"text": a, "answer_start": c.index(a)}]}]}
        for i, (c, q, a) in enumerate(paragraphs)]},
        {"title": "other", "paragraphs": [{"context": "The pier is in Looe.", "qas": []}]}]}
    (tmp_path / "train" / "tiny").mkdir(parents=True)
    (tmp_path / "train" / "tiny" / "set.json").write_text(json.dumps(data))
    campaign = {"train_dir": str(tmp_path / "train"),
                "held_out": {"set": "tiny/set.json", "every_nth_document": 2, "eval_questions": 3}}
    out = tmp_path / "held-out.json"
    train.write_held_out_file(campaign, out, withhold=1.0)
    written = json.loads(out.read_text())
    assert written["version"] == "v2.0"
    (kept,) = written["data"][0]["paragraphs"]
    assert kept["context"] == paragraphs[1][0]  # "Tom Reed" is also in the third paragraph, so it stays
    assert {qa["question"]: qa.get("is_impossible", False) for qa in kept["qas"]} == {
        paragraphs[1][1]: False, paragraphs[0][1]: True, paragraphs[2][1]: True}
    assert all(qa["answers"] == [] for qa in kept["qas"] if qa.get("is_impossible"))
    assert written["data"][1]["paragraphs"][0]["context"] == "The pier is in Looe."


def test_the_held_out_file_can_remove_an_answer_sentence_whose_questions_then_go_unanswered():
    """`--remove-sentences SHARE`: a paragraph loses the sentence holding one question's answer; the
    questions it answered go unanswered, the others keep their answers at the moved offsets; a sentence
    whose answer the article holds elsewhere, or whose removal leaves one sentence, stays."""
    first = "Saltash has a ferry to Plymouth. The ferry leaves at nine. Tom Reed runs it with his sister."
    qas = [{"id": qid, "question": question, "answers": [{"text": text, "answer_start": first.index(text)}]}
           for qid, question, text in [("where", "Where does the ferry go?", "Plymouth"),
                                       ("when", "When does the ferry leave?", "nine"),
                                       ("who", "Who runs the ferry?", "Tom Reed")]]
    qas.append({"id": "edited", "question": "When does the bus leave?", "answers": [], "is_impossible": True})
    two = "The mayor opened the market. It sells fish."
    short = {"context": two, "qas": [{"id": "what", "question": "What does it sell?",
                                      "answers": [{"text": "fish", "answer_start": two.index("fish")}]}]}
    elsewhere = {"context": "Tom Reed was born in Looe. He is 40. He likes boats.", "qas": [
        {"id": "born", "question": "Who was born in Looe?", "answers": [{"text": "Tom Reed", "answer_start": 0}]}]}
    paragraphs = [{"context": first, "qas": qas}, short, elsewhere]

    class AlwaysTheQuestion(random.Random):
        def choice(self, seq):
            return next(qa for qa in seq if qa["id"] in ("when", "what", "born"))

    changed, kept_short, kept_elsewhere = train.remove_answer_sentences(paragraphs, 1.0, AlwaysTheQuestion(0))
    assert changed["context"] == "Saltash has a ferry to Plymouth. Tom Reed runs it with his sister."
    by_id = {qa["id"]: qa for qa in changed["qas"]}
    assert set(by_id) == {"where", "when-removed", "who", "edited"}
    assert by_id["when-removed"]["is_impossible"] and by_id["when-removed"]["answers"] == []
    for qa in (by_id["where"], by_id["who"]):
        (answer,) = qa["answers"]
        assert changed["context"][answer["answer_start"]:][:len(answer["text"])] == answer["text"]
    assert kept_short == short  # two sentences: removing one would leave a single sentence
    assert kept_elsewhere == elsewhere  # "Tom Reed" is in the first paragraph too


@pytest.mark.parametrize("flag, value", [("--remove-sentences", "1.5"), ("--withhold", "-0.1"),
                                         ("--unanswerable", "half")])
def test_a_held_out_share_outside_zero_to_one_is_refused_in_one_line(capsys, flag, value):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--campaign", "c.yaml", "--write-held-out", "out.json", flag, value])
    assert exit_info.value.code == 2
    assert f"argument {flag}: '{value}' is not a share between 0 and 1" in capsys.readouterr().err
    assert getattr(train.parse_args(["--write-held-out", "out.json", flag, "0.6"]), flag[2:].replace("-", "_")) == 0.6


def test_the_model_card_says_how_much_of_its_mix_a_campaign_covered():
    from retrieval.reader.export import passes_over_the_mix

    campaign = {"schedule": {"epochs": 2, "batch_size": 32}, "total_steps": 200, "data_summary": {"features": 3200}}
    assert passes_over_the_mix(campaign).startswith("2 epochs of the 3,200-feature mix")
    campaign["schedule"] |= {"epochs": 1, "max_steps": 96}
    campaign["total_steps"] = 96
    assert passes_over_the_mix(campaign).startswith("0.96 of an epoch of the 3,200-feature mix: `max_steps`")


def test_the_model_card_extrapolates_the_training_the_v11_goal_needs():
    from retrieval.reader.export import curve_table

    curve = [{"label": "a", "features_seen": 100_000, "v1.1_sample_f1": 70.0},
             {"label": "b", "features_seen": 200_000, "v1.1_sample_f1": 72.0}]
    # +2 F1 per doubling, 8 points short of 80: 4 more doublings, 200k x (16 - 1) = 3.0 million more features
    assert curve_table(curve, seconds_per_feature=0.036).endswith(
        "needs 4.0 more doublings: about 3.0 million more features, 30 h of training on this CPU.")
    curve[-1]["v1.1_sample_f1"] = 69.0
    assert "does not reach the v1.1 goal" in curve_table(curve)
