"""The demo: its wiring on a tiny budget, and (slow) the real run (about 10 minutes)."""

import csv

import pytest
from click.testing import CliRunner

from mdrnn.pipelines import demo
from mdrnn.pipelines.cli import main
from mdrnn.pipelines.train_config import TrainConfig

TINY = {"type": "mdlstm", "levels": [{"block": [4, 3], "units": 2},
                                     {"block": [4, 2], "tanh": 4, "units": 4}]}


def test_demo_trains_reports_and_writes_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "demo_config", lambda minutes, seed: TrainConfig(
        spec=TINY, preprocessing={"height": 16}, epochs=1, batch_size=4, xla=False, seed=seed))
    result = demo.run_demo(tmp_path / "run", train_lines=16, val_lines=4, test_lines=6,
                           samples=3, verbose=0)
    assert result.model_path == tmp_path / "run" / "model.keras" and result.model_path.is_file()
    assert result.test_lines == 6 and 0 <= result.test_cer and result.epochs == 1
    with open(tmp_path / "run" / "samples" / "transcriptions.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 3 and all((tmp_path / "run" / "samples" / r["file"]).is_file()
                                  for r in rows)
    assert [r["reference"] for r in rows] == [s[1] for s in result.samples]


def test_demo_refuses_an_existing_run(tmp_path):
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text("{}")
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "already holds a run" in result.output


@pytest.mark.slow
def test_the_demo_reaches_five_percent_cer_on_unseen_digits(tmp_path):
    result = demo.run_demo(tmp_path / "demo", verbose=0)
    assert result.test_lines == 1000
    assert result.test_cer <= 0.05
