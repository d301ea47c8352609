"""Jupyter-first image classification: robust data, one preprocessing spec, offline transfer learning, model bundles

Modules:

- `imgcls_nb.calibrate`: What evaluation learns after training, written into the bundle: temperature, thresholds, the unknown threshold and the evaluation itself"""

__version__ = "0.1.0"
