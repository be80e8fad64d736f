"""Optimisers and learning-rate schedulers with PyTorch's names, options and update rules.

Gradients are returned by `avalon.grad`, not stored on parameters, so `step` takes them:

>>> opt = avalon.optim.Adam(model.parameters(), lr=1e-3)
>>> loss, grads = avalon.grad(loss_fn, model, x, y)
>>> opt.step(grads[0])
"""
from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .nadam import NAdam
from .optimizer import Optimizer, OptimizerError, ParamState
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "OptimizerError", "ParamState", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "Adadelta", "Adamax", "NAdam", "RAdam", "lr_scheduler"]
