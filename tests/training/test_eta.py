"""The run-level ETA logged after each epoch."""

import logging

import numpy as np

from transferkit.models.builders import build_baseline_cnn
from transferkit.training.eta import RunETA, format_duration
from transferkit.training.train import train


def test_eta_is_the_mean_epoch_time_times_the_epochs_left():
    ticks = iter([0.0, 0.0, 30.0, 90.0])  # begin (2 reads), then epochs ending at 30 s and 90 s
    eta = RunETA(5, clock=lambda: next(ticks))
    eta.on_train_begin()
    eta.on_epoch_end(0)
    eta.on_epoch_end(1)
    assert eta.messages[0].startswith("epoch 1/5 in 30 s; about 2.0 min left")  # 30 s x 4
    assert eta.messages[1].startswith("epoch 2/5 in 60 s; about 2.2 min left")  # 45 s x 3
    assert format_duration(7200) == "2 h 0 min"


def test_train_logs_the_eta_and_stays_silent_when_quiet(tiny, caplog):
    model = build_baseline_cnn(tiny, filters=(4,), head=())
    with caplog.at_level(logging.INFO, logger="transferkit"):
        train(model, tiny, epochs=3, verbose=2)
    lines = [r.getMessage() for r in caplog.records if "left, ends ~" in r.getMessage()]
    assert [line.split(" in ")[0] for line in lines] == ["epoch 1/3", "epoch 2/3"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transferkit"):
        train(model, tiny, epochs=2, verbose=0)
    assert not any("left, ends ~" in r.getMessage() for r in caplog.records)
    assert np.isfinite(model.predict(tiny.x_test[:2], verbose=0)).all()
