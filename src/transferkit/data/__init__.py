"""Data: images as uint8 arrays in a :class:`~transferkit.data.splits.DataSplits`.

Owns everything before the model: the split container and its checks
(``splits``), CIFAR-10 (``cifar``), your own image folders and archives
(``folder``), folders streamed from disk when they outgrow memory (``stream``,
fed to Keras by ``batches``), decoding and header sizes (``images``), the image size chosen
from the data (``sizing``), warnings about class counts (``checks``),
generated images (``synthetic``) and the NumPy augmentation that runs
outside the compiled step (``augment``). Needs nothing else of
transferkit but its errors and the backend's cache folder.
"""
