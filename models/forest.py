"""The calibrated classifier's trees as flat arrays, scored with a few numpy operations.

scikit-learn's `predict_proba` on the fitted `CalibratedClassifierCV` costs about 12 ms
whatever the batch size (Python and OpenMP set-up for each of its ~360 trees, then label
encoding and validation per fold), then about 16 µs a row: that fixed cost was most of a
screening request. Here every tree of every fold lives in one node table, and all rows descend
all trees together, one level per step: about 0.5 ms for one row, 60 µs per further row, so it
serves small batches and scikit-learn large ones. The arithmetic is scikit-learn's, in the
same order: float64 `x <= threshold` splits with NaN sent by `missing_go_to_left`, each fold's
raw score summed tree by tree from its baseline, the fold's sigmoid calibrator, and the folds'
mean. A test holds the two bit-identical.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV


class CalibratedForest:
    """Fraud probabilities of a fitted sigmoid-calibrated `HistGradientBoostingClassifier`."""

    def __init__(self, classifier: CalibratedClassifierCV) -> None:
        tables, roots, offset = [], [], 0
        self.fold_trees: list[int] = []
        baselines, slopes, intercepts = [], [], []
        for fold in classifier.calibrated_classifiers_:
            trees = fold.estimator
            if trees.n_trees_per_iteration_ != 1 or trees._preprocessor is not None:
                raise ValueError("only binary classifiers over numeric features are supported")
            (calibrator,) = fold.calibrators
            baselines.append(float(trees._baseline_prediction.ravel()[0]))
            slopes.append(float(calibrator.a_))
            intercepts.append(float(calibrator.b_))
            self.fold_trees.append(len(trees._predictors))
            for (predictor,) in trees._predictors:
                nodes = predictor.nodes
                # A leaf points at itself, so every row can take the same number of steps.
                own = np.arange(len(nodes)) + offset
                leaf = nodes["is_leaf"].astype(bool)
                left = np.where(leaf, own, nodes["left"].astype(np.int64) + offset)
                right = np.where(leaf, own, nodes["right"].astype(np.int64) + offset)
                tables.append((nodes, left, right))
                roots.append(offset)
                offset += len(nodes)
        nodes = np.concatenate([table[0] for table in tables])
        self.feature = nodes["feature_idx"].astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.missing_right = ~nodes["missing_go_to_left"].astype(bool)
        # children[2 * node] is the left child, children[2 * node + 1] the right one.
        left = np.concatenate([table[1] for table in tables])
        right = np.concatenate([table[2] for table in tables])
        self.children = np.stack([left, right], axis=1).ravel()
        self.value = nodes["value"].astype(np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = int(nodes["depth"].max())
        self.baselines = np.asarray(baselines)
        self.slopes = np.asarray(slopes)
        self.intercepts = np.asarray(intercepts)

    def leaf_values(self, matrix: np.ndarray) -> np.ndarray:
        """The value of the leaf each row reaches in each tree (rows × trees)."""
        cells = matrix.ravel()
        row_start = (np.arange(len(matrix)) * matrix.shape[1])[:, None]
        node = np.broadcast_to(self.roots, (len(matrix), len(self.roots)))
        for _ in range(self.depth):
            x = cells.take(row_start + self.feature.take(node))
            go_right = ~(x <= self.threshold.take(node))
            missing = np.isnan(x)
            if missing.any():
                go_right[missing] = self.missing_right.take(node[missing])
            node = self.children.take(2 * node + go_right)
        values: np.ndarray = self.value.take(node)
        return values

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """Fraud probability of each row, as `classifier.predict_proba(matrix)[:, 1]`."""
        matrix = np.ascontiguousarray(matrix, dtype=np.float64)
        leaves = self.leaf_values(matrix)
        total = np.zeros(len(matrix))
        start = 0
        for fold, count in enumerate(self.fold_trees):
            # cumsum adds left to right, as scikit-learn adds one tree after another.
            column = np.full((len(matrix), 1), self.baselines[fold])
            raw = np.cumsum(np.hstack([column, leaves[:, start : start + count]]), axis=1)[:, -1]
            total += expit(-(self.slopes[fold] * raw + self.intercepts[fold]))
            start += count
        probability: np.ndarray = total / len(self.fold_trees)
        return probability
