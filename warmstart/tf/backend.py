"""The one place the TF wing imports TensorFlow and Keras 3.

Keras 3 picks its backend once per process, from ``KERAS_BACKEND`` at its first import; our layers need the
TensorFlow backend, so it is asked for here unless the user chose one. ``tf.keras`` is never used: with
``TF_USE_LEGACY_KERAS=1`` it is tf_keras (Keras 2), while ``import keras`` stays Keras 3 either way, so the wing
behaves the same whatever that variable says.
"""
from __future__ import annotations

import os
import sys

_INSTALL = "pip install 'warmstart[tf]'"

if "keras" not in sys.modules:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")

try:
    import tensorflow as tf
    import keras
except ImportError as err:  # one clear message instead of a bare "No module named 'tensorflow'" from deep inside
    raise ImportError(f"the TensorFlow models need tensorflow and keras ({err}); install them with: {_INSTALL}"
                      ) from err

if not str(keras.__version__).startswith("3."):
    raise ImportError(f"the TensorFlow models need Keras 3 (`import keras` gave {keras.__version__}); "
                      f"install them with: {_INSTALL}")
if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the TensorFlow models need Keras' tensorflow backend, but Keras was started with "
                      f"{keras.backend.backend()!r} (KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}); set "
                      f"KERAS_BACKEND=tensorflow before anything imports keras")

__all__ = ["tf", "keras"]
