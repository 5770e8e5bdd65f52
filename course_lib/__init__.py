"""course_lib: the library of the image-segmentation course module.

Subpackages, one concept each:

- ``course_lib.data``: PASCAL VOC 2012, CamVid, the synthetic default, the batch iterator; fetching the archives and
  packing a term's data into one file (``python -m course_lib.data``).
- ``course_lib.term``: what the course announces for the term (data, size, mode, tiers).
- ``course_lib.models``: reference architectures and ``build_model``.
- ``course_lib.losses``: the training losses: cross-entropy, Dice, focal, Tversky, OHEM.
- ``course_lib.metrics``: the confusion matrix and every metric derived from it (mIoU, pixel accuracy).
- ``course_lib.train``: ``TrainConfig``, ``fit``, ``evaluate``, checkpoints, seeding, time estimates.
- ``course_lib.viz``: curves, prediction grids, per-class bars, confusion heat maps.
- ``course_lib.submission``: what a student hands in next to the notebook.
- ``course_lib.experiments``: the concepts notebook's skip-connection experiment.
"""

__version__ = "0.1.0"
