"""The report's own pieces: numbered figures, recall table, feature maps, configuration, no paths.

The slide deck does not use these (its pieces are in :mod:`._parts`): the
report numbers its figures, shows a run's feature maps only where they differ
from another run's, and prints its folded configuration.
"""

from __future__ import annotations

import json
import logging
import re

from transferkit.errors import TransferkitError
from transferkit.reporting._parts import depth_layers, esc, img, pct, table
from transferkit.reporting.naming import display_names

logger = logging.getLogger("transferkit")

OPEN_FOR_PRINT = ("<script>addEventListener('beforeprint',function(){"
                  "document.querySelectorAll('details').forEach(function(d){d.open=true;});});</script>")
"""Opens every folded block before printing: a printed ``<details>`` would show its triangle only."""


class Figures:
    """Numbers the report's figures in the order they are made, which is the reading order.

    Each figure is a ``<figure>`` with its image (and ``alt`` text, what it
    shows) and a ``<figcaption>`` "Figure N. ..." (what to look at).
    ``numbers`` keeps the number given to each ``key``, so later text can
    refer to a figure ("see Figure 5").
    """

    def __init__(self) -> None:
        self.count = 0
        self.numbers: dict[str, int] = {}

    def __call__(self, fig_or_path, alt: str, caption: str, *, key: str = "", cls: str = "") -> str:
        """A numbered figure from a matplotlib Figure or a PNG file."""
        return self.wrap(img(fig_or_path, alt), caption, key=key, cls=cls)

    def wrap(self, image: str, caption: str, *, key: str = "", cls: str = "") -> str:
        """A numbered figure around an ``<img>`` made elsewhere; any other HTML (a note) as it is."""
        if not image.startswith("<img"):
            return image
        self.count += 1
        if key:
            self.numbers[key] = self.count
        return (f'<figure class="{cls}" id="figure-{self.count}">{image}'
                f"<figcaption><b>Figure {self.count}.</b> {esc(caption)}</figcaption></figure>")

    def ref(self, key: str) -> str:
        """" (Figure N)" for a figure made under ``key``, else ""."""
        return f" (Figure {self.numbers[key]})" if key in self.numbers else ""


_PATH = re.compile(r"(?<![\w.:/\\…-])(?:~|[A-Za-z]:)?(?:[/\\][\w.@+-]+)+[/\\]?")


def no_paths(text: str) -> str:
    """``text`` with each absolute path cut to its last part: where files sat on one machine is no one's business.

    Example:
        >>> no_paths("read /home/me/data/cifar-10-batches-py and C:\\\\photos\\\\flowers; train/val 1e-05")
        'read …/cifar-10-batches-py and …/flowers; train/val 1e-05'
    """
    return _PATH.sub(lambda m: "…/" + re.split(r"[/\\]", m.group().rstrip("/\\"))[-1], text)


RECALL_NOTE = ("Recall: the share of each class's test images the model named correctly. "
               "Balanced accuracy is their mean, so a class the model ignores costs its "
               "share however few images it has. Where classes are unbalanced, train with "
               "class_weight='balanced' (transferkit train --class-weight balanced).")


def recall_table(runs) -> str:
    """Each class's test recall (rows) for each evaluated run (columns); "" where none has it."""
    scored = [r for r in runs if r.evaluation and r.evaluation.per_class]
    if not scored:
        return ""
    names = list(dict.fromkeys(n for r in scored for n in r.evaluation.recall_per_class))
    rows = [[name, *(pct(r.evaluation.recall_per_class.get(name)) for r in scored)]
            for name in names]
    rows.append(["Balanced accuracy", *(pct(r.evaluation.balanced_accuracy) for r in scored)])
    labels = display_names(scored)
    return (table(["Class (test recall)", *(labels[r.name] for r in scored)], rows, "results")
            + f'<p class="note">{esc(RECALL_NOTE)}</p>')


def feature_maps(runs, data, figures: Figures) -> str:
    """Feature maps at increasing depth of the first test image, once per different set of maps.

    A run whose maps equal an earlier run's at the same layers (a fine-tuned
    run whose shown layers sat in the part fine-tuning left frozen) gets one
    line saying so instead of a second, identical figure.
    """
    import numpy as np

    from transferkit.models.features import extract_feature_maps
    from transferkit.reporting.image_plots import plot_feature_maps_by_depth

    if data is None or not len(data.x_test):
        return ("<p>Feature maps are drawn on a test image: give the dataset "
                "(<code>transferkit report ... --data PATH</code>).</p>")
    out, shown, names = [], [], display_names(runs)
    for run in [r for r in runs if r.model is not None]:
        try:
            layers = depth_layers(run.model)
            maps = extract_feature_maps(run.model, data.x_test[:1], layers)
        except (TransferkitError, ValueError, IndexError) as exc:
            logger.info("No feature maps for %s: %s", run.name, exc)
            continue
        label = names[run.name]
        twin = next((other for other, seen in shown if seen.keys() == maps.keys() and all(
            np.allclose(seen[k], maps[k], atol=1e-5) for k in maps)), None)
        if twin is not None:
            out.append(f'<p class="note">{esc(_same_maps(run, label, twin, layers))}</p>')
            continue
        shown.append((label, maps))
        fig = plot_feature_maps_by_depth(data.x_test[0], {k: v[0] for k, v in maps.items()}, model_name=label)
        out.append(figures(
            fig, f"{label}: the first test image and the most active channels of layers "
            f"{', '.join(layers)}, shallow to deep",
            f"{label}: what {len(layers)} of its layers, shallow to deep, respond to in the first "
            "test image (its most active channels). Shallow layers follow edges and colours; deeper ones "
            "respond to larger parts and are coarser.", cls="maps"))
    return "".join(out) or ("<p>Feature maps are drawn from the trained models; these run "
                            "folders hold no <code>model.keras</code>.</p>")


def _same_maps(run, label: str, twin: str, layers) -> str:
    """The line shown for a run whose maps equal ``twin``'s, with why where the model tells."""
    from transferkit.models.anatomy import require_classifier

    why = ""
    try:
        backbone = require_classifier(run.model, "Feature maps").backbone
        if not backbone.trainable:
            why = ": its backbone is frozen, with the same weights"
        elif all(not backbone.get_layer(n).trainable for n in layers):
            why = ": fine-tuning left these layers frozen, so they did not change"
    except (TransferkitError, AttributeError, ValueError):
        pass
    return f"{label}: the same feature maps as {twin} at these layers, not shown again{why}."


def _rounded(value):
    """Floats to 4 significant digits (0.3333333432674408 is 0.3333), all the way down."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def compact_json(config) -> str:
    """``config`` as indented JSON with each list of numbers or strings on one line.

    Example:
        >>> print(compact_json({"shape": [32, 32, 3], "lr": 0.00025000001}))
        {
          "shape": [32, 32, 3],
          "lr": 0.00025
        }
    """
    text = json.dumps(_rounded(config), indent=2, default=str)
    return re.sub(r"\[\s*([^\[\]{}]*?)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",\n")) + "]", text)


def configuration(runs) -> str:
    """Each run's recorded configuration, folded on screen and opened for print (:data:`OPEN_FOR_PRINT`)."""
    label = display_names(runs)
    return ('<p class="note">Folded on screen: open a run to read its settings. Printing opens them all.</p>'
            + "".join(f'<details class="config"><summary>{esc(label[r.name])} (run folder '
                      f"<code>{esc(r.name)}</code>)</summary><pre>"
                      f"{esc(no_paths(compact_json(r.config)))}</pre></details>"
                      for r in runs))
