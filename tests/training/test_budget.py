"""Time budgets: durations, the plan, the schedule that ends with it, and bad budgets."""

import logging
import math
import re
import time

import keras
import pytest

from transferkit._validation import parse_duration
from transferkit.errors import BudgetTooShortError, ConfigurationError
from transferkit.models.builders import build_baseline_cnn, load_model
from transferkit.training import budget as budget_module
from transferkit.training.budget import BudgetShares, Costs, steps_that_fit
from transferkit.training.callbacks import warmup_cosine
from transferkit.training.eta import RunETA
from transferkit.training.optim import WarmupCosine, recipe_optimizer
from transferkit.training.recipes import fine_tune, train_from_scratch
from transferkit.training.train import train


@pytest.mark.parametrize("text, seconds", [
    ("600", 600), (" 90s ", 90), ("10m", 600), ("10 min", 600), ("1.5h", 5400),
    ("1h30m", 5400), ("2 minutes 30 s", 150), (45, 45), (0.5, 0.5),
])
def test_durations_read_as_seconds(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad, message", [
    (0, "more than 0"), (-5, "more than 0"), ("0s", "more than 0"), (float("nan"), "more than 0"),
    ("ten minutes", "not a duration"), ("10 parsecs", "not a duration"), ("", "empty"),
    (True, "seconds or a duration"), ([600], "seconds or a duration"),
])
def test_bad_budgets_are_refused_before_any_work(tiny, bad, message):
    model = build_baseline_cnn(tiny, filters=(4,))
    with pytest.raises(ConfigurationError, match=message):
        train_from_scratch(model, tiny, budget=bad, verbose=0)
    assert getattr(model, "optimizer", None) is None  # nothing was compiled, let alone trained


def test_budget_refuses_what_spans_fixed_epochs(tiny, tmp_path):
    model = build_baseline_cnn(tiny, filters=(4,))
    with pytest.raises(ConfigurationError, match="cannot be resumed"):
        train(model, tiny, budget=60, run_dir=tmp_path, resume=True)
    with pytest.raises(ConfigurationError, match="schedule='cosine' spans"):
        train(model, tiny, budget=60, schedule="cosine")
    with pytest.raises(ConfigurationError, match="progressive= phases"):
        fine_tune(model, tiny, budget=60, progressive=True)


def test_the_steps_that_fit_count_each_epochs_validation():
    costs = Costs(step=1.0, validation=5.0, epoch_overhead=1.0, final=0.0)
    assert steps_that_fit(34, costs, 10, 1000) == 20  # two epochs of 10 + 5 + 1 s, then 2 s
    assert steps_that_fit(40, costs, 10, 1000) == 20 + 2  # 8 s left: 6 for checks, 2 steps
    assert steps_that_fit(1000, costs, 10, 45) == 45
    assert steps_that_fit(3, costs, 10, 1000) == 0


def test_adjustable_schedule_is_keras_warmup_cosine_and_reloads(tmp_path):
    adjustable, keras_own = WarmupCosine(1e-3, 1000, 100), warmup_cosine(
        1e-3, 1000, warmup_steps=100, final_lr_ratio=0.0)
    for step in (0, 1, 50, 99, 100, 101, 550, 999, 1000, 1500):
        assert float(adjustable(step)) == pytest.approx(float(keras_own(step)), abs=1e-9)
    adjustable.set_total_steps(400, step=200)  # past the warm-up: it stays 100 steps
    assert float(adjustable.warmup_steps.numpy()) == 100
    assert float(adjustable(400)) == pytest.approx(0.0, abs=1e-9)
    assert float(adjustable(250)) == pytest.approx(5e-4, rel=1e-5)  # half-way down
    model = build_baseline_cnn(3, input_shape=(8, 8, 3), filters=(4,))
    model.compile(optimizer=recipe_optimizer("adamw", 1e-3, 50, adjustable=True),
                  loss="sparse_categorical_crossentropy")
    model.fit(keras.ops.zeros((2, 8, 8, 3)), keras.ops.zeros((2,)), verbose=0)
    model.save(tmp_path / "m.keras")
    assert isinstance(load_model(tmp_path / "m.keras").optimizer._learning_rate, WarmupCosine)


def test_a_short_fine_tune_peaks_where_a_full_warm_up_would_be():
    # 12 steps: a 6-step warm-up, which without the cap climbed to 1e-3 and wrecked a
    # trained head (issue 21). Both schedules, Keras' and the budget's, rise no faster
    # than 30 steps to 1e-3 and peak at 1e-3 * 7 / 31; a long run still reaches 1e-3.
    fixed = recipe_optimizer("adamw", 1e-3, 12, gentle=True)._learning_rate
    planned = WarmupCosine(1e-3, 50, 25, gentle=True)
    planned.set_total_steps(12, step=0)
    for schedule in (fixed, planned):
        rates = [float(schedule(step)) for step in range(12)]
        assert max(rates) == pytest.approx(1e-3 * 7 / 31, rel=1e-5)
        assert rates[0] == pytest.approx(1e-3 / 31, rel=1e-5)
    assert float(recipe_optimizer("adamw", 1e-3, 12)._learning_rate(6)) == pytest.approx(1e-3)
    none = WarmupCosine(1e-3, 12, 0, gentle=True)  # no warm-up asked: the full rate
    assert float(none(0)) == pytest.approx(1e-3)
    long = recipe_optimizer("adamw", 1e-3, 2000, gentle=True)._learning_rate
    assert max(float(long(step)) for step in (99, 100, 101)) == pytest.approx(1e-3)


def test_a_budgeted_run_plans_stops_on_its_step_and_ends_its_schedule(tiny, caplog, monkeypatch):
    # The timed steps "take" 1 s each, so the plan binds after a few epochs whatever the
    # machine's load (a real 10 s budget failed when compiling took 17 s on a busy
    # machine). The per-epoch re-plan then uses the real steps' times: it stretches the
    # run to fit's room (SLACK) where they are fast, or shortens it where JAX compiles in
    # the first epoch on a busy machine; either way the schedule follows to the last step.
    monkeypatch.setattr(budget_module, "step_time", lambda *args, **kwargs: 1.0)
    model = build_baseline_cnn(tiny, filters=(4,), head=())
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="transferkit"):
        run = train_from_scratch(model, tiny, budget=40, batch_size=16, verbose=0)
    took = time.monotonic() - started
    record = run.config["budget"]
    assert record["seconds"] == 40 and record["steps"] >= 6 and record["planned_steps"] >= 6
    assert int(model.optimizer.iterations.numpy()) == record["steps"]  # stopped on its step
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)  # schedule ended
    assert run.epochs_run == run.config["epochs"] == len(run.history["loss"])
    plan = next(r.getMessage() for r in caplog.records
                if r.getMessage().startswith("Plan for the 40 s budget:"))
    # fit is given room beyond the plan (SLACK): the line says so when Keras will count further.
    counted = re.search(r"Keras counts up to (\d+)", plan)
    assert counted is None or int(counted[1]) > record["planned_epochs"]
    assert took < 40 * 2  # a runaway guard, not a speed target (benchmarks/budget.py is)


def test_epochs_bound_a_budget(tiny):
    model = build_baseline_cnn(tiny, filters=(4,), head=())
    run = train(model, tiny, budget=300, epochs=2, batch_size=32, verbose=0)
    assert run.epochs_run == 2 and run.config["budget"]["steps"] <= 5 + 2 * math.ceil(96 / 32)


def test_a_budget_without_epochs_buys_at_most_thirty(tiny):
    # Uncapped (1,000), 3 minutes on 81 photos fine-tuned for 130 epochs and overfitted.
    model = build_baseline_cnn(tiny, filters=(4,), head=())
    run = train(model, tiny, budget=600, batch_size=32, verbose=0)
    assert run.epochs_run == 30 and run.config["budget"]["elapsed_s"] < 600  # ended early


def test_a_budget_spent_before_training_stops_without_timing_steps(tiny):
    from transferkit.training.budget import Budget

    model = build_baseline_cnn(tiny, filters=(4,), head=())
    spent = Budget(5.0, started=time.monotonic() - 10)  # e.g. a CLI's, after reading images
    # 10 s or more: a busy machine may take a second between here and the check.
    with pytest.raises(BudgetTooShortError, match=r"was spent before training began: 1\d s"):
        train_from_scratch(model, tiny, budget=spent, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 0  # not one step taken


def test_a_budget_too_short_for_one_epoch_says_what_it_needs(tiny, monkeypatch):
    # A slow machine, made deterministic: every timed step "takes" 100 s, so one epoch
    # cannot fit in 60 s whatever the backend compiles (PyTorch fits a real epoch in 0.3 s).
    monkeypatch.setattr(budget_module, "step_time", lambda *args, **kwargs: 100.0)
    model = build_baseline_cnn(tiny, filters=(4,), head=())
    with pytest.raises(BudgetTooShortError, match=r"too short for one epoch.*Give at least") as err:
        train_from_scratch(model, tiny, budget=60, verbose=0)
    needed = float(str(err.value).split("budget=")[1].split(")")[0])
    assert needed > 100 * 2  # at least one epoch of two or more steps


def test_a_share_too_short_for_one_epoch_trains_one_epoch_and_says_so(tiny, monkeypatch, caplog):
    from transferkit.training.budget import Budget

    monkeypatch.setattr(budget_module, "step_time", lambda *args, **kwargs: 100.0)
    model = build_baseline_cnn(tiny, filters=(4,), head=())
    share = Budget(60.0, one_epoch_at_least=True)  # a BudgetShares' share
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        run = train_from_scratch(model, tiny, budget=share, verbose=0)
    assert run.epochs_run == 1 and "too short for one epoch here" in caplog.text


def test_runs_without_a_budget_log_their_plan_early_unless_they_are_short():
    # Step 0 compiles (10 s); steps 1-5 are timed; 50 steps an epoch, 10 epochs, 100
    # validation images at a third of a step per image of a 10-image batch.
    for step_seconds, logged in ((2.0, True), (0.01, False)):
        end = 10.0 + 5 * step_seconds
        ticks = iter([0.0, 0.0, 10.0, end, end])  # begin (2 reads), batch 0, batch 5 (2 reads)
        eta = RunETA(10, steps_per_epoch=50, validation_images=100, batch_size=10,
                     clock=lambda t=ticks: next(t))
        eta.on_train_begin()
        for batch in range(6):
            eta.on_train_batch_end(batch)
        if logged:  # 20 s, then 494 steps x 2 s and 10 validations of 6.7 s: 1,075 s
            assert len(eta.messages) == 1
            assert eta.messages[0].startswith("Plan: 10 epochs (500 steps), about 17.9 min, ends ~")
        else:
            assert eta.messages == []


def test_shares_split_what_is_left_and_pass_on_what_a_run_leaves(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(budget_module.time, "monotonic", lambda: now[0])
    shares = BudgetShares(320, runs=3, reserve=20, started=now[0])
    assert shares.next().seconds == 100  # (320 - 20) / 3
    now[0] += 40  # the first run ran out of epochs 60 s early
    assert shares.next().seconds == 130  # (300 - 40) / 2
    now[0] += 130
    assert shares.next().seconds == 130  # the last run takes what is left
    now[0] += 200  # a spent budget: the run trains one epoch (not fail a command half done)
    last = shares.next()
    assert last.seconds == 0 and last.one_epoch_at_least


def test_an_estimate_refuses_before_preparing_only_where_it_cannot_fit():
    from transferkit.training.budget import Budget, refuse_before_preparing

    ten_spent = Budget(100.0, started=time.monotonic() - 10)
    refuse_before_preparing(ten_spent, preparing=40, what="caching", epoch=40, final=5)  # 95 s fit
    with pytest.raises(BudgetTooShortError, match=r"caching would take about 50 s.*before caching"
                                                  r".*budget=10[78]\)") as err:
        refuse_before_preparing(ten_spent, preparing=50, what="caching", epoch=40, final=5)
    assert "an epoch about 40 s" in str(err.value)
    share = Budget(100.0, started=time.monotonic() - 10, one_epoch_at_least=True)
    refuse_before_preparing(share, preparing=500, what="caching", epoch=40, final=5)  # one epoch anyway
    with pytest.raises(BudgetTooShortError, match=r"an epoch \(feeding\) would take about 1.5 min"):
        refuse_before_preparing(ten_spent, preparing=0, what="feeding", epoch=90, final=5)


@pytest.mark.parametrize("seconds, fed, one, two, views", [
    (300, 0.7, 0.4, -0.2, 0), (600, 1.4, 1.7, 1.0, 1), (1200, 2.9, 4.1, 3.5, 1),
    (3000, 7.4, 11.5, 10.8, 2)])
def test_views_that_pay_buy_the_most_epochs_and_the_mirror_only_in_long_runs(
        seconds, fed, one, two, views):
    # The AVX2 EPYC's figures on all of CIFAR-10: caching 150 s a view, then 240 s an
    # epoch; 390 s an epoch without it. The estimates given here are what each way buys.
    from transferkit.training.budget import MARGIN, MIRROR_EPOCHS, Budget, views_that_pay

    left = seconds * (1 - MARGIN) - 40
    assert [round(left / 390, 1), round((left - 150) / 240, 1),
            round((left - 300) / 240, 1)] == [fed, one, two]
    kw = dict(image_pass=150, mirror_pass=150, cached_epoch=240, fed_epoch=390, final=40)
    assert views_that_pay(Budget(seconds), **kw) == views
    assert two < MIRROR_EPOCHS or views == 2
    # A mirror view already cached costs nothing: it is kept wherever caching pays.
    assert views_that_pay(Budget(seconds), **{**kw, "mirror_pass": 0}) == (2 if views else 0)
    # Both views cached already: nothing to pay, caching always wins.
    assert views_that_pay(Budget(seconds), **{**kw, "image_pass": 0, "mirror_pass": 0}) == 2
