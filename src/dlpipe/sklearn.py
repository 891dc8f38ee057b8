"""The scikit-learn front door: ``from dlpipe.sklearn import NeuralClassifier, NeuralRegressor``."""

from dlpipe.estimators import NeuralClassifier, NeuralRegressor

__all__ = ["NeuralClassifier", "NeuralRegressor"]
