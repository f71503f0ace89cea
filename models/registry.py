"""Model artifacts on disk: a skops file and its JSON metadata (`models.artifact`), written
and loaded. Loading builds the classifier only from a file whose checksum and feature list
`verify_artifact` accepted, and lets skops build only types from an allow-list of
scikit-learn and numpy classes: no pickle is ever executed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED

import numpy as np
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV

from models.artifact import ModelArtifactError, metadata_path, sha256_of, verify_artifact
from models.dataset import MODEL_FEATURES
from models.model import GradientBoostedModel

# The only types a model file may make skops build; everything else is refused.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def save_model(path: Path, model: GradientBoostedModel, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the model and its metadata (adding checksum and explanation data); return it."""
    payload = sio.dumps(model.classifier, compression=ZIP_DEFLATED, compresslevel=9)
    full = {
        **metadata,
        "name": model.name,
        "version": model.version,
        "features": list(MODEL_FEATURES),
        "baseline": [None if np.isnan(v) else v for v in model.baseline.tolist()],
        "artifact_sha256": sha256_of(payload),
        "artifact_bytes": len(payload),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    metadata_path(path).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n")
    return full


def load_model(path: Path) -> GradientBoostedModel:
    """Verify and load a model file; raise `ModelArtifactError` saying what is wrong."""
    metadata, features, payload = verify_artifact(path)
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
