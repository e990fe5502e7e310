"""Load config/byline.yaml, with BYLINE_<SECTION>__<KEY> environment and --set overrides."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml

from retrieval.errors import BylineError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "byline.yaml"
ENV_PREFIX = "BYLINE_"
_PATH_KEYS = {("data_dir",), ("corpus_dir",), ("eval", "gold")}


def _parse_value(raw: str):
    return yaml.safe_load(raw) if raw.strip() else raw


def _set_dotted(config: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = config
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            raise BylineError(f"unknown setting '{dotted}'")
        node = node[key]
    if keys[-1] not in node:
        raise BylineError(f"unknown setting '{dotted}'")
    node[keys[-1]] = value


def load_config(path: str | Path | None = None, overrides: dict[str, object] | None = None,
                environ: dict[str, str] | None = None) -> dict:
    """The config as plain data; relative paths are resolved against the repository root."""
    path = Path(path or os.environ.get("BYLINE_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BylineError(f"cannot read config {path}: {exc}") from exc
    config = copy.deepcopy(config)
    environ = os.environ if environ is None else environ
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != "BYLINE_CONFIG":
            _set_dotted(config, name[len(ENV_PREFIX):].lower().replace("__", "."), _parse_value(raw))
    for dotted, value in (overrides or {}).items():
        _set_dotted(config, dotted, _parse_value(value) if isinstance(value, str) else value)
    base = path.resolve().parent.parent
    for keys in _PATH_KEYS:
        node = config
        for key in keys[:-1]:
            node = node[key]
        if node.get(keys[-1]) is not None:
            node[keys[-1]] = str((base / node[keys[-1]]).resolve())
    model = config["reader"]["model"]
    if (base / model).exists():
        config["reader"]["model"] = str((base / model).resolve())
    return config
