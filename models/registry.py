"""Model artifacts on disk: a skops file and its JSON metadata, checked before anything loads.

`NAME.skops` holds the fitted classifier; `NAME.json` next to it holds the name, version,
feature list, training-data hash, parameters, seed, evaluation figures, library versions, the
artifact's sha256 and what the explanation needs (baseline, importance). Loading verifies the
checksum, refuses a feature list other than `MODEL_FEATURES` (or an earlier release's: the same
names in order, without those added since), and lets skops build only types
from an allow-list of scikit-learn and numpy classes: no pickle is ever executed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED

import numpy as np
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV

from models.dataset import MODEL_FEATURES
from models.model import GradientBoostedModel

# The only types a model file may make skops build; everything else is refused.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


class ModelArtifactError(ValueError):
    """A model file that is missing, altered, unsafe or built for other features."""


def metadata_path(model_path: Path) -> Path:
    """The JSON metadata file that belongs to a model file."""
    return model_path.with_suffix(".json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(path: Path, model: GradientBoostedModel, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the model and its metadata (adding checksum and explanation data); return it."""
    payload = sio.dumps(model.classifier, compression=ZIP_DEFLATED, compresslevel=9)
    full = {
        **metadata,
        "name": model.name,
        "version": model.version,
        "features": list(MODEL_FEATURES),
        "baseline": [None if np.isnan(v) else v for v in model.baseline.tolist()],
        "artifact_sha256": _sha256(payload),
        "artifact_bytes": len(payload),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    metadata_path(path).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata of a model file (raises `ModelArtifactError` if absent or unreadable)."""
    meta_file = metadata_path(path)
    try:
        return dict(json.loads(meta_file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelArtifactError(f"{meta_file}: model metadata not found") from None
    except json.JSONDecodeError as exc:
        raise ModelArtifactError(f"{meta_file}: not valid JSON ({exc})") from None


def load_model(path: Path) -> GradientBoostedModel:
    """Verify and load a model file; raise `ModelArtifactError` saying what is wrong."""
    metadata = read_metadata(path)
    features = metadata.get("features")
    if not (isinstance(features, list) and _earlier_features(features)):
        expected, got = set(MODEL_FEATURES), set(features or ())
        raise ModelArtifactError(
            f"{path}: the model was trained on other features than this service computes "
            f"(missing from the model: {sorted(expected - got) or 'none'}; unknown to the "
            f"service: {sorted(got - expected) or 'none'}; or a different order); retrain it "
            "with `fraudwatch train`"
        )
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise ModelArtifactError(f"{path}: model file not found") from None
    if _sha256(payload) != metadata.get("artifact_sha256"):
        raise ModelArtifactError(f"{path}: checksum does not match its metadata; refusing it")
    untrusted = sio.get_untrusted_types(data=payload)
    refused = [name for name in untrusted if not name.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelArtifactError(f"{path}: refusing to build untrusted types {refused}")
    classifier = sio.loads(payload, trusted=untrusted)
    if not isinstance(classifier, CalibratedClassifierCV):
        raise ModelArtifactError(f"{path}: not a calibrated classifier")
    if getattr(classifier, "n_features_in_", None) != len(features):
        raise ModelArtifactError(
            f"{path}: the classifier was trained on other features than its metadata lists "
            f"({getattr(classifier, 'n_features_in_', '?')} columns, {len(features)} names)"
        )
    baseline = [np.nan if v is None else v for v in metadata["baseline"]]
    return GradientBoostedModel(metadata["name"], metadata["version"], classifier, baseline,
                                features)  # fmt: skip


def _earlier_features(features: list[Any]) -> bool:
    """Whether a model's feature list is `MODEL_FEATURES` or an earlier release's: the same
    names in the same order, without those added since (a model keeps serving until it is
    retrained; features added later are never given to it)."""
    return features == [name for name in MODEL_FEATURES if name in set(features)] and bool(
        features
    )
