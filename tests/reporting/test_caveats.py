"""The deck's interpretation, caveats and pieces from hand-made records: no training, no browser."""

from types import SimpleNamespace

import numpy as np
from test_story import _run, _study

from transferkit.reporting import caveats, deck_parts, story
from transferkit.reporting.naming import continuations, display_names
from transferkit.reporting.timing import cumulative_seconds, training_seconds
from transferkit.runs.record import Run


def _data(counts=(30, 30, 30), side=32, source="/photos/garden"):
    y = np.repeat(np.arange(len(counts)), counts)
    return SimpleNamespace(y_train=y, y_val=y[:9], class_names=["cat", "dog", "golden_retriever"],
                           image_shape=(side, side, 3), source=source, provenance={})


def test_times_leave_out_the_evaluation_and_a_continuation_adds_its_frozen_run():
    runs = _study()
    runs[0].timings = {"fit": 40.0, "evaluate": 5.0, "total": 45.0}
    runs[1].timings = {"fit": 100.0, "evaluate": 5.0, "total": 105.0}
    cont = continuations(runs)
    assert training_seconds(runs[0]) == 40.0 and training_seconds(runs[1]) == 100.0
    assert cumulative_seconds(runs[1], cont) == 140.0 and cumulative_seconds(runs[2], cont) == 120.0
    assert training_seconds(Run("x", {}, {}, None, {})) is None


def test_the_interpretation_says_plainly_when_fine_tuning_lost():
    runs = _study({(0, 1): 8, (1, 0): 4})  # 80.0% against the frozen head's 85.0%
    said = story.interpretation(runs, continuations(runs), display_names(runs))
    assert said[0].startswith("Transfer learning won, as expected: ")
    assert "Fine-tuning MobileNetV2 did not help: it lost 5.0 points" in said[1]
    assert "the frozen head is the result to use" in said[2]
    assert any(s.startswith("Most frequent mistakes") for s in said)


def test_the_interpretation_says_plainly_when_scratch_beat_transfer():
    runs = _study({(0, 1): 20, (1, 0): 20})
    runs[2] = _run("baseline_cnn_scratch", "features", pretrained=False, model="b", wrong={(0, 1): 1})
    found = story.transfer_finding(runs)
    assert found.startswith("Contrary to the usual result, transfer learning did not beat "
                            "training from scratch here (85.0% vs 98.3%)")
    assert story.interpretation([], {}, {}) == ["No run was evaluated: nothing to interpret."]


def test_caveats_name_this_data_and_budget():
    runs = _study()
    runs[0].config.update(params={"trainable": 100_000, "total": 2_000_000}, data={})  # own photos
    data = _data(counts=(60, 30, 20))
    benefits = caveats.benefits(runs, data)
    assert benefits[0].startswith("Pretrained features reached 90.0% test accuracy with about 20 "
                                  "training images per class, against 66.7% from scratch.")
    assert "A frozen MobileNetV2 trains only 5.0% of its parameters (60 s of training here)" in benefits[1]
    limits = caveats.limitations(runs, data)
    assert limits[0].startswith("Small data: 20 to 60 training images per class")
    assert "One seed, 60 test images: accuracy is known to about ±7.6 points" in limits[1]
    assert "The images are 32 px; MobileNetV2 was pretrained on 96 px photos" in limits[2]
    assert "Unbalanced classes: cat has 60 training images, dog 20" not in limits[3]
    assert limits[3].startswith("Unbalanced classes: cat has 60 training images, golden retriever 20")
    assert limits[4].startswith("Budget: each run trained 60 s to 4.0 min")
    assert "(here 0 epochs)" in caveats.pitfalls(runs, data)[0]  # the records hold no history
    assert "(9 here)" in caveats.pitfalls(runs, data)[3]
    ethics = caveats.ethics(runs, data)
    assert ethics[0].startswith("Own photos: ask the people in them for consent")
    assert "the best run finds 95.0% of dog but 85.0% of cat" in ethics[2]


def test_cifar_gets_its_provenance_and_no_data_gets_the_general_points():
    runs = _study()  # the frozen run's record says CIFAR-10
    assert caveats.ethics(runs)[0] == caveats.CIFAR_PROVENANCE
    assert "80 Million Tiny Images" in caveats.CIFAR_PROVENANCE and "2020" in caveats.CIFAR_PROVENANCE
    bare = [Run("a", {}, {}, None, {})]
    assert caveats.limitations(bare) == ["One seed per run: repeat with several seeds before trusting "
                                         "small differences."]
    assert caveats.benefits(bare)[-1].startswith("ImageNet's 1.28 M labelled photos")
    assert caveats.ethics(bare)[-1].startswith("Accuracy hides per-class failures")


def test_the_pipeline_says_the_share_of_parameters_that_trains():
    runs = _study()
    runs[0].config.update(params={"trainable": 164_355, "non_trainable": 2_257_984, "total": 2_422_339},
                          input_shape=[32, 32, 3])
    runs[0].config["backbone"].update(layers=153, trainable_layers=0, image_size=[96, 96])
    runs[1].config.update(params={"trainable": 2_310_000, "non_trainable": 112_339, "total": 2_422_339},
                          input_shape=[32, 32, 3], lr=1e-4)
    runs[1].config["backbone"].update(layers=153, trainable_layers=34, image_size=[96, 96])
    runs[0].config["lr"] = 1e-3
    cont, names = continuations(runs), display_names(runs)
    html = deck_parts.pipeline(runs, cont, names)
    assert "32 × 32 px" in html and "Resized in the model" in html and "96 × 96 px" in html
    assert ('aria-label="Pipeline: Input image, 32 × 32 px → Resized in the model, 96 × 96 px → '
            "MobileNetV2: frozen, 119 of 153 layers") in html
    assert "119 of 153 layers" in html and "34 of 153 layers" in html and "2.15 M parameters" in html
    assert ("MobileNetV2, fine-tuned: 95.4% of parameters train (2.31 M of 2.42 M), though only "
            "34 of 153 backbone layers do.") in html
    assert "MobileNetV2, frozen head: 6.8% of parameters train (164 k of 2.42 M): only the new head." in html
    steps = deck_parts.fine_tuning_steps(runs, cont)
    assert steps.startswith('<ol class="steps">') and 4 <= steps.count("<li>") <= 6
    assert "Fine-tune at a low learning rate, 0.0001, 10× below the head&#x27;s, held constant." in steps
    runs[1].config["lr"] = 1e-3  # the same rate as the head's is said as it is
    assert "not below the head&#x27;s (usually 10× lower)" in deck_parts.fine_tuning_steps(runs, cont)


def test_the_conclusion_is_short_and_not_the_interpretation_again():
    runs = _study({(0, 1): 8, (1, 0): 4})
    cont, names = continuations(runs), display_names(runs)
    said = story.conclusion(runs, cont, names)
    assert said[0] == "Best run: MobileNetV2, frozen head (85.0% test accuracy)."
    assert said[1] == "Pretrained features: +18.3 points against the best run from scratch."
    assert said[2] == "Fine-tuning did not help MobileNetV2 (-5.0) points over the frozen head."
    # Only the accuracy-per-minute line is said on both slides.
    assert set(said) & set(story.interpretation(runs, cont, names)) == {
        story.per_minute_finding(runs, cont, names)}
    assert story.conclusion([], {}, {}) == []


def test_the_conclusion_says_ties_in_words():
    runs = _study({(0, 1): 6, (1, 0): 3})  # fine-tuned exactly as good as its frozen head
    runs[2] = _run("baseline_cnn_scratch", "features", pretrained=False, model="b",
                   wrong={(0, 1): 6, (1, 0): 3})
    said = story.conclusion(runs, continuations(runs), display_names(runs))
    assert "Pretrained features: no gain over training from scratch." in said
    assert ("Fine-tuning changed nothing for MobileNetV2: same test accuracy as the frozen head."
            in said)
    assert said[-1].startswith("Most frequent mistake (")  # one pair: singular


def test_the_models_slide_names_the_chosen_backbone_with_its_size_and_input():
    runs = _study()
    runs[1].config.update(params={"trainable": 2_300_000, "total": 2_423_242})
    runs[1].config["backbone"]["image_size"] = [96, 96]
    used = deck_parts.backbone_use(runs, continuations(runs))
    # One backbone: "Used here", its best run (the fine-tune, 85.0% of 60 test images).
    assert used == ["Used here, MobileNetV2: 2.42 M parameters, fed 96 px images; "
                    f"best test accuracy {story.pct(runs[1].evaluation.accuracy)}, fine-tuned."]
    runs.append(_run("mobilenet_v1_025_frozen", "mobilenet_v1_025", pretrained=True, frozen=True,
                     wrong={(0, 1): 30}))
    used = deck_parts.backbone_use(runs, continuations(runs))
    assert used[0].startswith("Chosen model, MobileNetV2") and used[1].startswith("Used here, MobileNet v1 0.25")


def test_the_budget_names_the_cpu_kind_the_times_come_from():
    runs = _study()
    runs[1].config.update(machine="x86_64 2 CPU cores, no GPU",
                          cpu="AMD EPYC, 2 CPUs, avx avx2 avx512f avx512_vnni avx512_bf16")
    budget = next(line for line in caveats.limitations(runs) if line.startswith("Budget:"))
    assert "(AMD EPYC, 2 CPUs, AVX-512, no GPU)" in budget
    runs[1].config["cpu"] = "AMD EPYC, 2 CPUs, avx avx2"
    assert caveats.cpu_words(runs[1].config["cpu"]) == "AMD EPYC, 2 CPUs, AVX2"
    del runs[1].config["cpu"]  # a record made before the CPU was kept
    budget = next(line for line in caveats.limitations(runs) if line.startswith("Budget:"))
    assert "(x86-64 2 CPU cores, no GPU)" in budget
