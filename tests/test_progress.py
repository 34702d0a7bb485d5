"""The training progress line: drawn on terminals only, with the mean loss so far."""

import io

from mdrnn.pipelines.progress import EpochProgress


def test_nothing_is_drawn_when_the_output_is_not_a_terminal():
    stream = io.StringIO()
    progress = EpochProgress(1, 5, 3, stream=stream)
    for loss in (3.0, 2.0, 1.0):
        progress.update(loss, 16)
    progress.close()
    assert stream.getvalue() == ""
    assert progress.mean_loss == 2.0 and progress.lines == 48


def test_the_line_shows_the_mean_loss_and_is_redrawn_in_place():
    stream = io.StringIO()
    progress = EpochProgress(2, 5, 2, stream=stream, show=True, interval=0.0)
    progress.update(4.0, 8)
    progress.update(1.0, 8)
    drawn = stream.getvalue()
    assert "\n" not in drawn and drawn.count("\r") == 2
    last = drawn.split("\r")[-1]
    assert last.startswith("epoch 2/5 2/2  loss 2.5000") and "0s left" in last
    progress.close()
    assert stream.getvalue().endswith("\r") and "\n" not in stream.getvalue()


def test_a_terminal_gets_the_line_unless_told_not_to():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert EpochProgress(1, 1, 1, stream=Terminal()).enabled
    assert not EpochProgress(1, 1, 1, stream=Terminal(), show=False).enabled
