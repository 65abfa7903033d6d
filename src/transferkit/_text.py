"""Small pieces of English shared by the CLI, the logs and the reports."""

from __future__ import annotations


def plural(n: int | None, word: str, many: str | None = None) -> str:
    """``n`` and the noun in the form ``n`` needs: ``1 run``, ``2 runs``, ``3 classes``.

    Args:
        n: The count; None reads ``?`` (an unknown count, as in an old record).
        word: The singular noun.
        many: The plural, where it is not the word with ``s`` (``es`` after s, sh, x
            or z): ``plural(n, "batch", "batches")``, as "epochs" is regular.

    Example:
        >>> plural(1, "epoch"), plural(2, "epoch"), plural(1_500, "image")
        ('1 epoch', '2 epochs', '1,500 images')
    """
    if n == 1:
        return f"1 {word}"
    if many is None:
        many = word + ("es" if word.endswith(("s", "sh", "x", "z")) else "s")
    return f"{'?' if n is None else f'{n:,}'} {many}"
