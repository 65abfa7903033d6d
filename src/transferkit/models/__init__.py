"""Models: backbones and the classifiers built on them.

Owns the backbone registry (``registry``: what each network is, no Keras
import), building backbones with their weights and preprocessing
(``backbones``), the files a model is made from checked without Keras (``files``:
weights and model files, ImageNet weights in Keras' cache), the classifiers that know their parts and do their own
surgery (``classifier``: feature model and head, frozen prefix and trainable
suffix, a view at another resolution), freezing (``freezing``), the friendly
constructors and loading (``builders``), the anatomy of foreign models
(``anatomy``), inference helpers (``features``: pooled features, feature
maps), the key of a frozen part's outputs in the on-disk cache
(``fingerprint``), and export for serving (``export``: a SavedModel, TFLite or
ONNX file taking raw images; ``exported``: that file run by its own runtime and
compared with the model). Sits on ``data``; knows nothing of training.
"""
