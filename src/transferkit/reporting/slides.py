"""The 10-slide deck: 16:9, one slide per screen, keyboard navigation, one landscape page each.

Written by :func:`transferkit.reporting.report.write_report` with ``slides=True``. Each
slide is a 1280x720 px box (13.333 x 7.5 in printed), scaled to the window on
screen. Keys: right arrow, space or Page Down for the next slide, left arrow
or Page Up for the previous one, Home and End; ``#3`` in the address opens
slide 3. Printing gives exactly one landscape page per slide. Everything
(figures, styles, script) is inside the file: it works offline.
"""

from __future__ import annotations

from transferkit._text import plural
from transferkit.reporting import _parts as parts
from transferkit.reporting import caveats, story
from transferkit.reporting import deck_parts as deck
from transferkit.reporting.naming import backbone_label, best_run, continuations, display_names

SLIDES = (
    "Overview",
    "Dataset",
    "Transfer learning in brief",
    "Pretrained models and their original purpose",
    "Fine-tuning steps",
    "Results: transfer vs from scratch",
    "What the results mean",
    "What the network sees",
    "Benefits, limitations, pitfalls and ethics",
    "Conclusion",
)
"""Slide titles, in order."""

_CSS = """
@page{size:13.333in 7.5in;margin:0}
:root{--ink:#1b1d23;--muted:#5b6170;--line:#d9dce3;--accent:#c2410c;--head:#14213d;--s:1}
*{box-sizing:border-box}
html,body{margin:0;height:100%;background:#22252b}
body{font-family:"Source Sans 3","Segoe UI",Helvetica,Arial,sans-serif;color:var(--ink)}
.slide{width:1280px;height:720px;padding:44px 64px 58px;background:#fff;display:none;flex-direction:column;
overflow:hidden;position:absolute;left:50%;top:50%;transform:translate(-50%,-50%) scale(var(--s));
font-size:25px;line-height:1.35}
.slide.active{display:flex}
.slide h2{font-size:40px;line-height:1.1;margin:0 0 18px;color:var(--head);border-left:10px solid var(--accent);
padding-left:18px}
.slide h1{font-size:54px;line-height:1.1;color:var(--head);margin:36px 0 20px}
.body{flex:1;min-height:0;display:flex;flex-direction:column;gap:12px}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:28px;flex:1;min-height:0}
.cols.wide{grid-template-columns:1fr 1.1fr}
.cols>*{min-width:0;min-height:0}
.fig{flex:1;min-height:0;display:flex;align-items:center;justify-content:center}
.fig img{max-width:100%;max-height:100%;object-fit:contain;display:block}
ul{margin:0;padding-left:1.1em}li{margin:0 0 .35em}
table{border-collapse:collapse;width:100%;font-size:20px;table-layout:auto}
td,th{border-bottom:1px solid var(--line);padding:5px 10px;text-align:left;vertical-align:top;
overflow-wrap:break-word}th{background:#f1f3f6}
table.results td+td,table.results th+th{text-align:right;white-space:nowrap}
.small{font-size:19px}.small table{font-size:inherit}
.note{color:var(--muted);font-size:18px;margin:4px 0}
ol.steps{margin:0;padding-left:1.4em;font-size:21px}ol.steps li{margin:0 0 .25em}
.pipe{display:flex;align-items:stretch;gap:6px;margin:10px 0 4px}
.pipe .box{flex:1;border:2px solid var(--line);border-radius:8px;padding:8px 10px;display:flex;
flex-direction:column;justify-content:center;font-size:19px;line-height:1.25;background:#f7f8fa}
.pipe .box b{color:var(--head)}.pipe .frozen{background:#e8edf5;border-color:#9aa9c4}
.pipe .trains{background:#fff1e8;border-color:var(--accent)}
.pipe .arrow{align-self:center;font-size:30px;color:var(--muted)}
.pipe-caption{font-size:23px;font-weight:600;color:var(--head);margin:8px 0 0}
.quad{display:grid;grid-template-columns:1fr 1fr;grid-template-rows:auto auto;gap:6px 28px;
font-size:19px;line-height:1.28}.quad b{color:var(--head)}.quad ul{margin-bottom:4px}
.quad li{margin:0 0 .2em}
table.data thead{display:none}table.tight td,table.tight th{padding:3px 10px}table.purposes td:first-child{width:17%}table.purposes td:last-child{width:15%}
.body>p{margin:10px 0}.body>p.note{margin:4px 0}
.big{font-size:34px;font-weight:600;color:var(--head)}
footer{position:absolute;left:64px;right:64px;bottom:16px;display:flex;justify-content:space-between;
gap:20px;font-size:18px;color:var(--muted);border-top:1px solid var(--line);padding-top:6px}
footer .quick{color:#fff;background:var(--accent);padding:0 10px;border-radius:4px;font-weight:600}
.banner{background:#fff4e5;border-left:8px solid var(--accent);padding:10px 16px;font-weight:600;font-size:22px}
@media print{html,body{background:#fff;height:auto}
.slide{display:flex!important;position:relative;left:0;top:0;transform:none;break-after:page;
page-break-after:always}}
html.static body{background:#fff;height:auto}
html.static .slide{display:flex!important;position:relative;left:0;top:0;transform:none}
"""

_JS = """
(function(){var s=[].slice.call(document.querySelectorAll('.slide')),i=0;
function fit(){document.documentElement.style.setProperty('--s',
Math.min(innerWidth/1280,innerHeight/720));}
function show(n){i=Math.max(0,Math.min(s.length-1,n));s.forEach(function(e,k){
e.classList.toggle('active',k===i);});if(location.hash!=='#'+(i+1))history.replaceState(null,'','#'+(i+1));}
addEventListener('keydown',function(e){var k=e.key;
if(k==='ArrowRight'||k==='PageDown'||k===' '||k==='ArrowDown'){show(i+1);e.preventDefault();}
else if(k==='ArrowLeft'||k==='PageUp'||k==='ArrowUp'){show(i-1);e.preventDefault();}
else if(k==='Home'){show(0);}else if(k==='End'){show(s.length-1);}});
addEventListener('resize',fit);addEventListener('hashchange',function(){show(parseInt(location.hash.slice(1),10)-1||0);});
fit();show(parseInt(location.hash.slice(1),10)-1||0);window.deck={show:show,count:s.length};})();
"""


def deck_html(runs, ctx) -> str:
    """The whole deck as one HTML page (see :func:`transferkit.reporting.report.write_report`)."""
    import matplotlib

    with matplotlib.rc_context({"font.size": 14}):  # figures read from the back of a room
        contents = _contents(runs, ctx)
    title = ctx["title"]
    quick = '<span class="quick">QUICK RUN: not results</span>' if ctx["quick"] else ""
    slides = []
    for i, name in enumerate(SLIDES, start=1):
        heading = "" if i == 1 else f"<h2>{parts.esc(name)}</h2>"
        slides.append(
            f'<section class="slide" id="slide-{i}" aria-label="Slide {i} of {len(SLIDES)}: '
            f'{parts.esc(name)}">{heading}<div class="body">{contents[name]}</div>'
            f"<footer><span>{parts.esc(title)}</span>{quick}<span>{i} / {len(SLIDES)}</span>"
            "</footer></section>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{parts.esc(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(slides) + f"\n<script>{_JS}</script></body></html>\n")


def _fit_class(rows: int) -> str:
    # Never below 19 px: longer lists are capped (deck_parts.ROWS), not shrunk.
    return "" if rows <= 5 else "small"


def _contents(runs, ctx) -> dict[str, str]:
    """``{slide title: its HTML body}`` for every slide of :data:`SLIDES`."""
    from transferkit.reporting.plots import plot_accuracy_vs_time

    cont, names, data = continuations(runs), display_names(runs), ctx["data"]
    best = best_run(runs)
    listed = "; ".join(names.values())  # the labels hold commas
    timing = parts.img(plot_accuracy_vs_time(runs),
                       f"Validation accuracy against cumulative training time for {listed}; "
                       "stars: test accuracy")
    return {
        # The verdict opens the deck, once; the conclusion states the findings behind it.
        "Overview": _overview(runs, ctx, story.verdict(runs), names),
        "Dataset": _dataset(runs, ctx),
        "Transfer learning in brief": (parts.bullets(_IN_BRIEF, "small")
                                       + deck.pipeline(runs, cont, names, data)),
        "Pretrained models and their original purpose": _purposes(runs, ctx),
        "Fine-tuning steps": (deck.fine_tuning_steps(runs, cont) + '<div class="small">'
                              + deck.settings_table(runs, cont, names) + "</div>"),
        "Results: transfer vs from scratch": (
            f'<div class="fig">{timing}</div><div class="small">'
            + deck.results_table(runs, cont, names) + "</div>"),
        "What the results mean": _meaning(runs, cont, names, best, data),
        "What the network sees": _network_sees(runs, ctx, best, names),
        "Benefits, limitations, pitfalls and ethics": _caveats(runs, data),
        "Conclusion": _conclusion(runs, ctx, cont, names),
    }


_IN_BRIEF = (
    "A network trained on ImageNet (1.28 M photos, 1,000 classes) already computes general "
    "visual features: edges and textures early, object parts later.",
    "Transfer learning keeps those layers frozen and trains a small new head for our classes; "
    "fine-tuning then unfreezes the top layers and trains them gently.",
    "It needs far less data and compute than training the same network from scratch.",
)


def _overview(runs, ctx, verdict: str, names) -> str:
    banners = ([parts.QUICK_NOTE] if ctx["quick"] else []) + list(ctx["notes"])
    skipped = ", ".join(map(backbone_label, ctx["skipped"]))
    return (f"<h1>{parts.esc(ctx['title'])}</h1>"
            + "".join(f'<p class="banner">{parts.esc(b)}</p>' for b in banners)
            + f'<p class="big">{parts.esc(verdict)}</p>'
            # Semicolons: the labels hold commas ("MobileNetV2, fine-tuned").
            + f"<p>{plural(len(runs), 'run')}: {parts.esc('; '.join(names.values()))}.</p>"
            + (f"<p>Skipped: {parts.esc(skipped)} (weights unavailable; see slide 4).</p>"
               if skipped else ""))


def _dataset(runs, ctx) -> str:
    rows = parts.dataset_rows(runs, ctx["data"])
    grid = deck.sample_grid(ctx["data"])
    return (parts.table(["", ""], rows, "data small")
            + (f'<div class="fig">{grid}</div>' if "<img" in grid else grid)
            + '<p class="note">Validation images come from the training split; the test '
            "split is never used to choose a model.</p>")


def _purposes(runs, ctx) -> str:
    """The backbones used, as a table; the skipped ones, with why, as a list below it."""
    rows = parts.purposes_rows(runs, ctx["skipped"])
    if not rows:
        return "<p>No pretrained backbone among these runs.</p>"
    used = [r[:3] for r in rows if r[3] == "used"]
    skipped = [f"{r[0]}: {r[3].removeprefix('skipped: ')}" for r in rows if r[3] != "used"]
    shown = used[:deck.ROWS + 1]
    # A sentence per backbone where the table leaves room; at least the chosen model's.
    room = max(1, deck.ROWS - len(shown) - (2 if skipped else 0))
    more = (f'<p class="note">{plural(len(used) - len(shown), "more backbone")} in the report.</p>'
            if len(used) > len(shown) else "")
    return ((parts.table(["Backbone", "Original purpose", "Pretrained at"], shown, "purposes small")
             + more + parts.bullets(deck.backbone_use(runs, continuations(runs))[:room])
             if shown else "")
            + (f'<div class="small"><b>Skipped</b>{parts.bullets(skipped)}</div>' if skipped else ""))


def _meaning(runs, cont, names, best, data) -> str:
    """What the runs show (:func:`story.interpretation`) with the top mistake's images.

    Beyond three fine-tuned backbones the first two keep their sentence and
    the rest share one (:func:`story.fine_tuning_summary`): the slide keeps
    its text size; the report has every sentence.
    """
    said = story.interpretation(runs, cont, names)
    tuning = story.fine_tuning_findings(runs, cont)
    if len(tuning) > 3:
        at = said.index(tuning[2])
        said = [s for s in said if s not in tuning[2:]]
        said[at:at] = story.fine_tuning_summary(runs, cont, skip=2)
    text = parts.bullets(said, "small")
    label = names.get(best.name, best.name) if best is not None else ""
    examples = deck.confused_examples(best, data, label)
    if not examples:
        return text
    if len(said) <= 4:  # short enough for half the width
        return f'<div class="cols wide"><div>{text}</div><div class="fig">{examples}</div></div>'
    return f'{text}<div class="fig">{examples}</div>'


def _caveats(runs, data) -> str:
    """Four short lists from :mod:`caveats`; the slide keeps the first (most specific) few."""
    parts_ = (("Benefits", caveats.benefits(runs, data)[:3]),
              ("Limitations", caveats.limitations(runs, data)[:4]),
              ("Pitfalls", caveats.pitfalls(runs, data)[:3]),
              ("Ethics", caveats.ethics(runs, data)[:3]))
    return ('<div class="quad">' + "".join(f"<div><b>{t}</b>{parts.bullets(items)}</div>"
                                           for t, items in parts_) + "</div>")


def _network_sees(runs, ctx, best, names) -> str:
    """Grad-CAM of the best run on right and wrong test predictions; else its per-class scores."""
    import matplotlib

    from transferkit.reporting.plots import plot_per_class_metrics

    # Six images, not eight, at a larger font: their titles must read at 12 px on the slide.
    with matplotlib.rc_context({"font.size": 18}):
        cams = (parts.grad_cam_examples(runs, ctx["data"], right=3, wrong=3)
                if ctx["data"] is not None else "")
    if "<img" in cams:
        return f'<div class="fig">{cams}</div><p class="note">{parts.esc(parts.GRAD_CAM_NOTE)}</p>'
    if best is None:
        return cams or "<p>No evaluated run.</p>"
    scores = parts.img(plot_per_class_metrics(best.evaluation, name=names[best.name]),
                       f"Precision, recall and F1 per class for {names[best.name]}")
    return ('<p class="note">No Grad-CAM (it needs the dataset and a saved model); '
            f'per-class scores of the best run instead.</p><div class="fig">{scores}</div>')


def _conclusion(runs, ctx, cont, names) -> str:
    """The findings in short (:func:`transferkit.reporting.story.conclusion`), not the verdict again."""
    found = story.conclusion(runs, cont, names) or ["No run was evaluated: nothing to conclude."]
    # Why they were left out is on slide 4: here, only which.
    left_out = "; ".join(map(backbone_label, ctx["skipped"]))
    skipped = [f"Not compared: {left_out} (see slide 4)."] if left_out else []
    return (f'<p class="big">{parts.esc(found[0])}</p>'
            + parts.bullets([*found[1:], *skipped], _fit_class(len(found) + len(skipped)))
            + parts.bullets(["Next: several seeds, more fine-tuning epochs, larger inputs."],
                            "note"))
