"""Runs: what a training run leaves behind.

Owns the :class:`~transferkit.runs.record.Run` record (``record``), the
test-split :class:`~transferkit.runs.evaluation.Evaluation` (``evaluation``)
and the run folder (``layout``: every file name, preparing, resuming and
reading history). Training writes runs; reporting and the CLI read them.
"""
