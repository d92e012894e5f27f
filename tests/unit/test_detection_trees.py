"""The compiled trees score exactly as scikit-learn, or are not used."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from fraud_detection import trees
from fraud_detection.harness import REPO_MODEL
from fraud_detection.model import FEATURES, fraud_scores, load_model


def noisy_data(rows: int = 2000, features: int = 5, seed: int = 1):
    """Features with missing values and a label that depends on several of them."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(rows, features))
    labels = (data[:, 0] + data[:, 1] * data[:, 2] > 0.5).astype(int)
    data[rng.random(data.shape) < 0.1] = np.nan
    return data, labels


def test_the_repository_model_compiles_and_scores_as_scikit_learn_bit_for_bit():
    classifier = load_model(str(REPO_MODEL))[0]
    forest = trees.compile_forest(classifier)
    assert forest is not None
    rng = np.random.default_rng(7)
    rows = np.vstack(
        [
            forest.probe_rows(),
            rng.gamma(2.0, 30.0, size=(300, len(FEATURES))),  # amounts, counts, averages
            rng.random((300, len(FEATURES))),  # flags, risks
        ]
    )
    expected = classifier.predict_proba(rows)[:, 1]
    assert np.array_equal(forest.probabilities(rows), expected)
    assert np.array_equal(fraud_scores(classifier, rows.tolist()), expected)
    assert 0.0 < expected.min() < expected.max() < 1.0  # the rows reach different leaves


def test_the_repository_model_scores_simulated_transactions_as_scikit_learn():
    """Real feature rows (the training's code on a simulated week) walk the trees deep."""
    spec = importlib.util.spec_from_file_location(
        "train_model", REPO_MODEL.parents[1] / "jobs" / "train_model.py"
    )
    train_model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_model)
    settings = {"customers": 300, "terminals": 100, "fraudRate": 0.05, "seed": 3}
    rows, _ = train_model.simulate_features(settings, days=7)
    features = np.array([row[3] for row in rows])
    classifier = load_model(str(REPO_MODEL))[0]
    expected = classifier.predict_proba(features)[:, 1]
    assert len(features) > 1000 and (expected >= 0.8).any()  # some would alert
    assert np.array_equal(fraud_scores(classifier, features), expected)


def test_missing_values_follow_the_side_each_split_learned():
    data, labels = noisy_data()
    classifier = HistGradientBoostingClassifier(max_iter=40, random_state=0).fit(data, labels)
    forest = trees.compile_forest(classifier)
    assert forest is not None and forest.missing_left.any() and not forest.missing_left.all()
    assert np.array_equal(forest.probabilities(data), classifier.predict_proba(data)[:, 1])


def test_a_model_the_compiled_trees_cannot_reproduce_is_scored_by_scikit_learn():
    data, labels = noisy_data()
    data[:, 4] = np.random.default_rng(2).integers(0, 4, size=len(data))
    categorical = HistGradientBoostingClassifier(
        max_iter=20, categorical_features=[4], random_state=0
    ).fit(data, labels)
    multiclass = HistGradientBoostingClassifier(max_iter=5).fit(data, labels + (data[:, 3] > 1))
    namesake = type("HistGradientBoostingClassifier", (), {"n_trees_per_iteration_": 1})()
    for classifier in (categorical, multiclass, namesake):  # the namesake has no trees at all
        assert trees.compile_forest(classifier) is None
    assert np.array_equal(fraud_scores(categorical, data), categorical.predict_proba(data)[:, 1])


def test_trees_that_disagree_with_scikit_learn_on_a_probe_row_are_not_used(monkeypatch):
    data, labels = noisy_data()
    classifier = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(data, labels)
    exact = trees.CompiledForest.of(classifier)
    split = int(np.flatnonzero(~exact.is_leaf)[0])
    threshold = exact.threshold.copy()
    threshold[split] = np.nextafter(threshold[split], -np.inf)  # `<=` becomes `<` at one split
    skewed = trees.CompiledForest(**{**vars(exact), "threshold": threshold})
    monkeypatch.setattr(trees.CompiledForest, "of", classmethod(lambda cls, _: skewed))
    assert trees.compile_forest(classifier) is None


def test_rows_of_the_wrong_width_are_refused():
    data, labels = noisy_data()
    classifier = HistGradientBoostingClassifier(max_iter=5).fit(data, labels)
    with pytest.raises(ValueError, match="5 features"):
        trees.compile_forest(classifier).probabilities(data[:, :4])
