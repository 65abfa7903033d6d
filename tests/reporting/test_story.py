"""Names and the deck's story on hand-made run records: no training, no browser."""

import numpy as np
import pytest

from transferkit.models.registry import BACKBONES, list_backbones
from transferkit.reporting import story
from transferkit.reporting.naming import (
    backbone_label,
    continuations,
    dataset_label,
    display_names,
    humanize,
    report_title,
)
from transferkit.runs.evaluation import evaluate_predictions
from transferkit.runs.record import Run

CLASSES = ["cat", "dog", "golden_retriever"]


def _evaluation(wrong: dict[tuple[int, int], int], per_class: int = 20):
    """Each class ``per_class`` test images; ``wrong[(true, predicted)]`` of them mistaken."""
    y = np.repeat(np.arange(3), per_class)
    pred = y.copy()
    for (t, p), n in wrong.items():
        start = np.flatnonzero(y == t)[0] + sum(m for (t2, p2), m in wrong.items() if t2 == t and p2 < p)
        pred[start:start + n] = p
    return evaluate_predictions(y, np.eye(3)[pred], CLASSES)


def _run(name, backbone=None, *, pretrained=None, frozen=False, model="m", wrong=None, seconds=60.0,
         data=None):
    bb = None if backbone is None else {"name": backbone, "frozen": frozen}
    if bb is not None and pretrained is not None:
        bb["pretrained"] = pretrained
    config = {"model": model, "backbone": bb, "data": data or {}} if backbone or model else {}
    ev = None if wrong is None else _evaluation(wrong)
    return Run(name, config, {}, ev, {"total": seconds})


def _study(tuned_wrong=None, *, tuned_seconds=180.0):
    """A frozen MobileNetV2, the fine-tuning that continues it, and a CNN from scratch."""
    cifar = {"source": "/data/cifar-10-batches-py", "provenance": {"loader": "cifar10"}}
    return [
        _run("mobilenet_v2_frozen", "mobilenet_v2", pretrained=True, frozen=True,
             wrong={(0, 1): 6, (1, 0): 3}, seconds=60.0, data=cifar),
        _run("mobilenet_v2_finetuned", "mobilenet_v2", pretrained=True,
             wrong=tuned_wrong if tuned_wrong is not None else {(0, 1): 3, (2, 1): 2, (1, 0): 1},
             seconds=tuned_seconds),
        _run("baseline_cnn_scratch", "features", pretrained=False, model="b",
             wrong={(0, 1): 10, (1, 2): 10}, seconds=120.0),
    ]


@pytest.mark.parametrize("identifier, words", [
    ("mobilenet_v2_finetuned", "MobileNetV2, fine-tuned"),
    ("frozen_head", "Frozen head"),
    ("fine_tuned", "Fine-tuned"),
    ("baseline_cnn_scratch", "Baseline CNN from scratch"),
    ("transfer_mobilenet_v2", "Transfer MobileNetV2"),
    ("mobilenet_v3_small_frozen", "MobileNetV3-Small, frozen"),  # the longest backbone name wins
])
def test_identifiers_read_as_words(identifier, words):
    assert humanize(identifier) == words


def test_every_backbone_has_a_display_name_people_read():
    assert backbone_label("mobilenet_v1_025") == "MobileNet v1 0.25"
    assert backbone_label("convnext_tiny") == "ConvNeXt-Tiny" and backbone_label("resnet50") == "ResNet50"
    assert all("_" not in spec.display_name for spec in BACKBONES.values())
    assert {r["name"]: r["display_name"] for r in list_backbones()}["mobilenet_v2"] == "MobileNetV2"
    assert backbone_label("stage1_block") == "Stage1 block"  # a block transferred from a CNN


def test_runs_are_named_from_their_records_not_their_identifiers():
    runs = _study()
    runs += [_run("frozen_head", "resnet50", pretrained=True, frozen=False, model="r"),
             _run("mobilenet_v2_scratch", "mobilenet_v2", pretrained=False, model="s"),
             _run("random_head", "mobilenet_v2", pretrained=False, frozen=True, model="w"),
             _run("transfer_mobilenet_v2", model=None)]  # records nothing: its name, as words
    assert list(display_names(runs).values()) == [
        "MobileNetV2, frozen head", "MobileNetV2, fine-tuned", "CNN from scratch",
        "ResNet50, fine-tuned",  # the record, not the name, says it was fine-tuned
        "MobileNetV2 from scratch",
        "MobileNetV2 (random weights), frozen head",  # --weights none: not transfer, not scratch
        "Transfer MobileNetV2"]


def test_runs_the_record_cannot_tell_apart_keep_their_identifier():
    runs = [_run("stage1_cnn", "features", pretrained=False, model="a"),
            _run("stage2_scratch_cnn", "features", pretrained=False, model="b")]
    assert list(display_names(runs).values()) == ["CNN from scratch (Stage1 CNN)",
                                                  "CNN from scratch (Stage2 scratch CNN)"]


def test_the_title_names_the_dataset_and_what_the_runs_compare():
    assert report_title(_study()) == "CIFAR-10: transfer learning vs training from scratch"
    photos = {"source": "/home/me/cd_data", "provenance": {"loader": "image_folder",
                                                           "path": "/home/me/cd_data"}}
    runs = [_run("frozen_head", "mobilenet_v2", pretrained=True, frozen=True, data=photos),
            _run("fine_tuned", "mobilenet_v2", pretrained=True)]
    assert report_title(runs) == "cd data: MobileNetV2, frozen head vs fine-tuned"
    assert report_title(runs[:1]) == "cd data: transfer learning with MobileNetV2"


@pytest.mark.parametrize("data, label", [
    ({"source": "keras.datasets.cifar10 download"}, "CIFAR-10"),
    ({"source": "synthetic [subset ['cat', 'dog']]"}, "Synthetic images"),
    ({"source": "/home/me/my_pets [subset ['cat']]"}, "my pets"),
    ({"source": "arrays"}, "Your images"),
    ({}, "Your images"),
])
def test_the_dataset_is_named_as_people_name_it(data, label):
    assert dataset_label([_run("r", "features", data=data)]) == label


def test_the_verdict_compares_in_points_and_says_who_won():
    runs = _study()
    assert story.verdict(runs) == ("Transfer learning beats training from scratch by 23.3 points "
                                   "of test accuracy (90.0% vs 66.7%).")
    worse = _study({(0, 1): 20, (1, 0): 20})  # fine-tuned 33.3%, frozen 85.0%
    worse[0].evaluation = _evaluation({(0, 1): 20, (1, 0): 20, (2, 0): 5})
    assert story.verdict(worse) == ("Training from scratch beats transfer learning by 33.3 points "
                                    "of test accuracy (66.7% vs 33.3%).")  # the winner's first
    assert "no run from scratch" in story.verdict(runs[:2])


def test_findings_state_the_fine_tuning_gain_its_time_the_best_rate_and_the_mistakes():
    runs = _study()
    found = story.findings(runs, continuations(runs), display_names(runs))
    assert found == [
        "Best run: MobileNetV2, fine-tuned (90.0% test accuracy).",
        "Fine-tuning MobileNetV2 helped: +5.0 points over the frozen head (90.0% vs 85.0%) "
        "for 3.0 min more training.",
        "Most accuracy per minute of training: MobileNetV2, frozen head (85.0% in 60 s).",
        "Most frequent mistakes (MobileNetV2, fine-tuned): cat → dog: 3 test images; "
        "golden retriever → dog: 2 test images; dog → cat: 1 test image.",
    ]


def test_a_fine_tuning_that_lost_says_so_plainly():
    runs = _study({(0, 1): 8, (1, 0): 4})  # 80.0% against the frozen head's 85.0%
    [sentence] = story.fine_tuning_findings(runs, continuations(runs))
    assert sentence == ("Fine-tuning MobileNetV2 did not help: it lost 5.0 points to the frozen "
                        "head (80.0% vs 85.0%) for 3.0 min more training.")


def test_a_fine_tuned_run_is_charged_its_frozen_stage_per_minute():
    # 30 s of fine-tuning alone would beat the frozen head's 60 s; with them, 90 s does not.
    runs = _study(tuned_seconds=30.0)
    finding = story.per_minute_finding(runs, continuations(runs), display_names(runs))
    assert finding == "Most accuracy per minute of training: MobileNetV2, frozen head (85.0% in 60 s)."
    runs = _study(tuned_seconds=2.0)
    finding = story.per_minute_finding(runs, continuations(runs), display_names(runs))
    assert finding.endswith("MobileNetV2, fine-tuned (90.0% in 62 s, counting its frozen stage).")


def test_findings_leave_out_what_the_records_cannot_support():
    old = _study()
    for run in old:
        run.evaluation = type(run.evaluation).from_dict(
            {**run.evaluation.to_dict(include_predictions=False), "confusion_matrix": None})
    found = story.findings(old, continuations(old), display_names(old))
    assert not any("mistakes" in f for f in found) and len(found) == 3
    assert story.findings([_run("x", "features", model="b")], {}, {}) == []
