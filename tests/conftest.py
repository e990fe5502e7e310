"""Shared fixtures: the real pipeline (shipped reader, packaged MiniLM) on the bundled corpus."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HAYSTACK_TELEMETRY_ENABLED"] = "False"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
for _name in [n for n in os.environ if n.startswith("BYLINE_")]:
    del os.environ[_name]  # tests run on config/byline.yaml as committed

from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from retrieval.config import REPO_ROOT, load_config  # noqa: E402

SHIPPED_READER = REPO_ROOT / "models" / "byline-reader"


def pytest_sessionstart(session):
    if not (SHIPPED_READER / "config.json").exists():
        raise pytest.UsageError(f"the shipped reader is missing at {SHIPPED_READER}")


@pytest.fixture(scope="session")
def test_config(tmp_path_factory) -> dict:
    return load_config(overrides={"data_dir": str(tmp_path_factory.mktemp("byline-data"))})


@pytest.fixture(scope="session")
def real_pipeline(test_config):
    from retrieval.pipeline import build_pipeline

    return build_pipeline(test_config)


@pytest.fixture(scope="session")
def ingest_article(real_pipeline, tmp_path_factory):
    """ingest_article(doc_id, text, title) adds one article to `real_pipeline` and returns the pipeline."""
    folder = tmp_path_factory.mktemp("articles")

    def ingest(doc_id: str, text: str, title: str, **meta):
        lines = ["---", f"title: {title!r}"] + [f"{k}: {v!r}" for k, v in meta.items()] + ["---", text]
        path = Path(folder) / f"{doc_id}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        real_pipeline.ingest([path])
        return real_pipeline

    return ingest


@pytest.fixture(scope="session")
def articles_added(real_pipeline):
    """`with articles_added(paths):` the articles at `paths` are in `real_pipeline`, and removed after."""
    @contextmanager
    def added(paths):
        report = real_pipeline.ingest(list(paths))
        try:
            yield real_pipeline
        finally:
            for doc_id in report.added:
                real_pipeline.remove(doc_id)

    return added


@pytest.fixture(scope="session")
def scratch_pipeline(test_config, tmp_path_factory):
    """A real pipeline with a data directory of its own, for tests that add articles from feeds, links
    and Slack without changing what the other tests' pipeline answers."""
    from retrieval.pipeline import BylinePipeline

    return BylinePipeline({**test_config, "data_dir": str(tmp_path_factory.mktemp("scratch-data"))})


@pytest.fixture
def local_site():
    """A web site on 127.0.0.1 (tests/local_site.py): pages, feeds, redirects, 304s; never the internet."""
    from local_site import LocalSite

    with LocalSite() as site:
        yield site
