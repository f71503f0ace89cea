"""A model file's metadata and checksum, checked without loading it (nor scikit-learn).

`NAME.skops` holds the fitted classifier; `NAME.json` next to it holds the name, version,
feature list, training-data hash, parameters, seed, evaluation figures, library versions, the
artifact's sha256 and what the explanation needs. `models.registry` builds the classifier
from a file that passed `verify_artifact`; `fraudwatch up` checks one before it starts the
processes that load it, without taking scikit-learn's memory into its own.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from models.dataset import MODEL_FEATURES


class ModelArtifactError(ValueError):
    """A model file that is missing, altered, unsafe or built for other features."""


def metadata_path(model_path: Path) -> Path:
    """The JSON metadata file that belongs to a model file."""
    return model_path.with_suffix(".json")


def sha256_of(data: bytes) -> str:
    """The checksum a model's metadata records for its file."""
    return hashlib.sha256(data).hexdigest()


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata of a model file (raises `ModelArtifactError` if absent or unreadable)."""
    meta_file = metadata_path(path)
    try:
        return dict(json.loads(meta_file.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelArtifactError(f"{meta_file}: model metadata not found") from None
    except json.JSONDecodeError as exc:
        raise ModelArtifactError(f"{meta_file}: not valid JSON ({exc})") from None


def verify_artifact(path: Path) -> tuple[dict[str, Any], list[str], bytes]:
    """A model file's metadata, feature list and bytes, once the file is there, its metadata
    reads, its features are ones this service computes and its checksum matches; else
    `ModelArtifactError` saying what is wrong."""
    try:
        payload = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        raise ModelArtifactError(f"{path}: no model file (not found)") from None
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
    if sha256_of(payload) != metadata.get("artifact_sha256"):
        raise ModelArtifactError(f"{path}: checksum does not match its metadata; refusing it")
    return metadata, features, payload


def _earlier_features(features: list[Any]) -> bool:
    """Whether a model's feature list is `MODEL_FEATURES` or an earlier release's: the same
    names in the same order, without those added since (a model keeps serving until it is
    retrained; features added later are never given to it)."""
    return features == [name for name in MODEL_FEATURES if name in set(features)] and bool(
        features
    )
