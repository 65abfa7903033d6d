"""Training: recipes, the fast paths they choose, and one fit core.

The path a call takes::

    train / fine_tune / train_from_scratch     (train.py, recipes.py)
      -> a Plan: every option, the recipe, the run folder   (plan.py)
      -> one fast path, chosen in one place                 (fastpath.py)
           cached head (cached_head.py), cached prefix (cached_prefix.py),
           progressive resizing (progressive.py), or images streamed
      -> the fit core: model.fit with callbacks             (core.py)
      -> a Run record                                        (transferkit.runs.record)

``callbacks`` holds the learning-rate schedules and the standard callback
set, ``losses`` the recipes' loss, ``class_weight`` the ``class_weight=`` option
(resolved once per call, handed to ``fit`` by the fit core on every path); ``budget`` plans a run to a time budget and
``eta`` logs the plan and ETA of one without. Sits on ``models``, ``data`` and ``runs``.
"""

from transferkit import _backend

_backend.drop_retracing_notices()
