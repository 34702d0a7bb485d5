"""`mdrnn show` and `mdrnn plot`: the explanation behind a picture, and the pictures."""

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tiny import line_images

pytest.importorskip("matplotlib")

from mdrnn.pipelines.cli import main  # noqa: E402
from mdrnn.pipelines.explain import explain  # noqa: E402
from mdrnn.pipelines.pictures import render  # noqa: E402
from mdrnn.pipelines.recognizer import Recognizer  # noqa: E402


def test_the_shipped_mdlstm_reads_its_characters_where_the_ink_is(shared_data):
    from mdrnn.datasets.formats import open_source
    from mdrnn.zoo import resolve_model

    recognizer = Recognizer.load(resolve_model("fr-copiste-mdlstm"))
    samples = open_source(f"alto:{shared_data / 'copiste' / 'val' / 'wikitexte_0010_2.xml'}")
    letters, spaces, overall = [], [], []
    for sample in samples[:4]:
        explanation = explain(recognizer, sample.load(), activations=True)
        line, spans = explanation.line, explanation.spans
        assert len(spans) == len(explanation.result.symbols) > 10
        assert all(0 <= x0 < x1 <= line.shape[1] for x0, x1 in spans), spans
        assert [x0 for x0, _ in spans] == sorted(x0 for x0, _ in spans)
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # they tile the line
        ink = line.mean(axis=0)  # the ink of each column
        overall.append(ink.mean())
        # Each symbol's columns start at the frame where CTC reads it.
        for symbol, (x0, _) in zip(explanation.result.symbols, spans, strict=True):
            read = ink[x0:x0 + explanation.frame_width]
            (spaces if symbol == " " else letters).append(read.mean())
        assert set(explanation.activations) == {"tl", "tr", "bl", "br"}
        # The same columns on the image as given: cropping and scaling undone.
        mapped = explanation.image_spans
        assert len(mapped) == len(spans)
        assert all(0 <= a <= b <= explanation.image.shape[1] for a, b in mapped)
        assert [a for a, _ in mapped] == sorted(a for a, _ in mapped)
        assert all(abs(a[1] - b[0]) <= 1 for a, b in zip(mapped, mapped[1:]))
        picture = cv2.imdecode(np.frombuffer(render(explanation), np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape[1] == line.shape[1] + 160
    # Letters are read in columns with more ink than the line's average (measured:
    # 1.4 times), the spaces between words in columns with less (0.4 times).
    assert np.mean(letters) > 1.2 * np.mean(overall) > 1.2 * np.mean(spaces)


def test_show_draws_each_line_and_reports_bad_files(model_file, tmp_path):
    lines = tmp_path / "lines"
    lines.mkdir()
    for i, image in enumerate(line_images(2, seed=3)):
        cv2.imwrite(str(lines / f"l{i}.png"), image)
    cv2.imwrite(str(lines / "blank.png"), np.full((20, 50), 255, np.uint8))
    (lines / "broken.png").write_bytes(b"not a png")
    result = CliRunner().invoke(main, ["show", str(model_file), str(lines), "--out",
                                       str(tmp_path / "out"), "--decoder", "beam"])
    assert result.exit_code == 1
    assert "broken.png" in result.output and "Traceback" not in result.output
    drawn = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert drawn == ["blank.png", "l0.png", "l1.png"]
    recognizer = Recognizer.load(model_file)
    for name in ("l0", "l1"):
        picture = cv2.imread(str(tmp_path / "out" / f"{name}.png"))
        width = recognizer.prepare(cv2.imread(str(lines / f"{name}.png"), 0)).shape[1]
        assert picture.shape[1] == max(width, 0) + 160 and picture.shape[0] > 100
    blank = explain(recognizer, np.full((20, 50), 255, np.uint8))
    assert blank.result.text == "" and blank.spans == []


def test_show_activations_of_a_model_without_mdlstm_is_one_clear_error(tmp_path):
    from mdrnn.datasets.charset import Charset
    from mdrnn.models import build_model
    from mdrnn.pipelines.preprocess_config import PreprocessConfig

    charset = Charset.from_texts(["ab c"])
    spec = {"type": "crnn", "conv": [[4, [2, 2]]], "units": 4, "layers": 1}
    crnn = tmp_path / "crnn.keras"
    build_model(spec, len(charset.symbols), height=16, charset=charset.to_config(),
                preprocessing=PreprocessConfig(height=16).to_dict()).save(crnn)
    cv2.imwrite(str(tmp_path / "l.png"), line_images(1)[0])
    result = CliRunner().invoke(main, ["show", str(crnn), str(tmp_path / "l.png"),
                                       "--out", str(tmp_path / "out"), "--activations"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {crnn}: --activations")
    assert not (tmp_path / "out").exists()


def test_plot_draws_a_runs_curves_and_names_bad_logs(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    header = "epoch,learning_rate,loss,val_cer,val_wer,val_line_accuracy,lines_per_s,seconds\n"
    (run / "log.csv").write_text(header + "".join(
        f"{e},0.001,{100 / e},{0.5 / e},{0.9 / e},0.1,30,{60 * e}\n" for e in range(1, 6)))
    result = CliRunner().invoke(main, ["plot", str(run)])
    assert result.exit_code == 0, result.output
    picture = cv2.imread(str(run / "curves.png"))
    assert picture.shape == (700, 700, 3)
    assert (picture < 128).any() and (picture > 250).mean() > 0.5  # drawn on white
    (run / "log.csv").write_text(header + "1,0.001,abc,0.5,0.9,0.1,30,60\n")
    bad = CliRunner().invoke(main, ["plot", str(run), "-o", str(tmp_path / "x.png")])
    assert bad.exit_code == 1 and "log.csv:2: not a row of numbers" in bad.output
    (run / "log.csv").write_text("a,b\n1,2\n")
    bad = CliRunner().invoke(main, ["plot", str(run), "-o", str(tmp_path / "x.png")])
    assert bad.exit_code == 1 and "not a training log (no epoch" in bad.output
    missing = CliRunner().invoke(main, ["plot", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "log.csv: no such file" in missing.output
    assert "Traceback" not in bad.output + missing.output
    assert not (tmp_path / "x.png").exists()


def test_show_pages_draws_each_page_with_its_lines(model_file, tmp_path):
    from test_transcribe import _page

    from mdrnn.datasets.digits import digit_lines

    scans = tmp_path / "scans"
    scans.mkdir()
    lines = [s.source for s in digit_lines("val", 3, seed=2, min_digits=6, max_digits=8)]
    page = _page(lines)
    cv2.imwrite(str(scans / "p.png"), page)
    (scans / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = CliRunner().invoke(main, ["show", str(model_file), str(scans), "--pages",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and "bad.png" in result.output
    assert "Traceback" not in result.output
    picture = cv2.imread(str(tmp_path / "out" / "p.png"))
    # The page and, facing it, its texts: twice the page's width, its height.
    assert abs(picture.shape[1] - 2 * page.shape[1] - 40) <= 2
    assert abs(picture.shape[0] - max(page.shape[0], 300) - 40) <= 2
    # Each line's outline is drawn in colour on the gray page.
    left = picture[:, :picture.shape[1] // 2].astype(int)
    coloured = (np.abs(left[..., 0] - left[..., 1]) + np.abs(left[..., 1] - left[..., 2])) > 60
    assert coloured.sum() > 100
