"""scikit-learn estimators over dlpipe's engine: :class:`NeuralClassifier`, :class:`NeuralRegressor`."""

from dlpipe.estimators.neural import NeuralClassifier, NeuralRegressor

__all__ = ["NeuralClassifier", "NeuralRegressor"]
