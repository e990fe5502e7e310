"""The reader's training campaign: planned once, resumed by re-running the same command, and
refused with one line when its data or schedule changed or its folder cannot be written."""

import json
import os

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
