"""The calibrated classifier's trees as flat arrays, scored with a few numpy operations.

scikit-learn's `predict_proba` on the fitted `CalibratedClassifierCV` costs about 12 ms
whatever the batch size (Python and OpenMP set-up for each of its ~360 trees, then label
encoding and validation per fold), then about 16 µs a row: that fixed cost was most of a
screening request. Here every tree of every fold lives in one node table, and all rows
descend all trees together, one level per step: about 0.3 ms for one row and 40 µs per
further row, so it serves batches up to a few hundred rows and scikit-learn larger ones. The
arithmetic is scikit-learn's, in the same order: float64 `x <= threshold` splits with NaN
sent by `missing_go_to_left`, each fold's raw score summed tree by tree from its baseline,
the fold's sigmoid calibrator, and the folds' mean. A test holds the two bit-identical.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV

_LARGEST = float(np.finfo(np.float64).max)


class CalibratedForest:
    """Fraud probabilities of a fitted sigmoid-calibrated `HistGradientBoostingClassifier`.

    Nodes are renumbered so that a node's right child follows its left one: a step is then
    `first_child + (x > threshold)`. A leaf is its own first child with an infinite threshold,
    so every row can take the same number of steps. Missing values take no branch of their
    own: each row is looked up in two copies, NaN read as -inf (always left) or +inf (always
    right), and each node reads the copy its `missing_go_to_left` says. A split of missing
    against present values has an infinite threshold; it becomes the largest float, and a
    present +inf is read as that float, so both still go left and NaN still goes right.
    """

    def __init__(self, classifier: CalibratedClassifierCV) -> None:
        self.features = int(classifier.n_features_in_)
        columns, thresholds, first_children, values, roots = [], [], [], [], []
        self.fold_trees: list[int] = []
        self.depth = 0
        baselines, slopes, intercepts = [], [], []
        offset = 0
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
                table = self._tree_table(predictor.nodes, offset)
                for parts, part in zip(
                    (columns, thresholds, first_children, values), table, strict=True
                ):
                    parts.append(part)
                roots.append(offset)
                self.depth = max(self.depth, int(predictor.nodes["depth"].max()))
                offset += len(predictor.nodes)
        self.column = np.concatenate(columns)
        self.threshold = np.concatenate(thresholds)
        self.first_child = np.concatenate(first_children)
        self.value = np.concatenate(values)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.baselines = np.asarray(baselines)
        self.slopes = np.asarray(slopes)
        self.intercepts = np.asarray(intercepts)

    def _tree_table(
        self, nodes: np.ndarray, offset: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(column, threshold, first child, value) per node, renumbered breadth-first."""
        order, position = [0], {0: 0}
        for old in order:  # grows while iterating: breadth-first
            if not nodes["is_leaf"][old]:
                for child in (int(nodes["left"][old]), int(nodes["right"][old])):
                    position[child] = len(order)
                    order.append(child)
        size = len(order)
        column = np.zeros(size, dtype=np.intp)
        threshold = np.full(size, np.inf)
        first_child = np.arange(size, dtype=np.intp) + offset
        value = np.zeros(size)
        for new, old in enumerate(order):
            node = nodes[old]
            value[new] = node["value"]
            if node["is_leaf"]:
                continue
            missing_right = not node["missing_go_to_left"]
            column[new] = int(node["feature_idx"]) + (self.features if missing_right else 0)
            threshold[new] = min(float(node["num_threshold"]), _LARGEST)
            first_child[new] = position[int(node["left"])] + offset
        return column, threshold, first_child, value

    def leaf_values(self, matrix: np.ndarray) -> np.ndarray:
        """The value of the leaf each row reaches in each tree (rows × trees)."""
        missing = np.isnan(matrix)
        present = np.minimum(matrix, _LARGEST)
        cells = np.concatenate(
            [np.where(missing, -np.inf, present), np.where(missing, np.inf, present)], axis=1
        ).ravel()
        row_start = (np.arange(len(matrix)) * (2 * self.features))[:, None]
        node = np.broadcast_to(self.roots, (len(matrix), len(self.roots)))
        for _ in range(self.depth):
            x = cells.take(row_start + self.column.take(node))
            node = self.first_child.take(node) + (x > self.threshold.take(node))
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
