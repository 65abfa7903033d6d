"""Runs: what a training run leaves behind.

Owns the :class:`~transferkit.runs.record.Run` record (``record``), the
test-split :class:`~transferkit.runs.evaluation.Evaluation` and the predictions it is
made from, with or without test-time augmentation (``evaluation``)
and the run folder (``layout``: every file name, preparing, resuming and
reading history). Training writes runs; reporting and the CLI read them.
"""
