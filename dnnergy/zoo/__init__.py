"""Architecture definitions with published shapes, found by name (no weights are downloaded).

Each family is a small module in this package (``lenet.py``, ``resnet.py``, ...) whose
factories register themselves with :func:`register_model`; importing the package imports
every public module here, so a new family is added by dropping in a file. Building a model
initialises random weights; ``dnnergy.trace(create_model(n), model_info(n).input_shape)``
gives its workload.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._registry import ARCHITECTURE_ATTRIBUTE, ModelInfo, create_model, list_models, model_info, register_model

__all__ = ["ARCHITECTURE_ATTRIBUTE", "ModelInfo", "register_model", "list_models", "create_model", "model_info"]

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
