"""Recognizer (loading, batching, decoders) and the transcription job, on a tiny model."""

import json
import logging

import cv2
import keras
import numpy as np
import pytest
from tiny import TINY_SPEC, line_images, tiny_model

from mdrnn.datasets.charset import Charset
from mdrnn.decoding import greedy_decode
from mdrnn.errors import InputError
from mdrnn.lexicon import read_lexicon
from mdrnn.models import build_model
from mdrnn.pipelines.inputs import InputFile
from mdrnn.pipelines.preprocess_config import PreprocessConfig
from mdrnn.pipelines.recognizer import Recognizer
from mdrnn.pipelines.transcribe import transcribe_files
from mdrnn.pipelines.writers import JsonlWriter, TextWriter


@pytest.fixture(scope="module")
def recognizer(model_file):
    return Recognizer.load(model_file, batch_size=3)


def test_load_reads_charset_and_preprocessing(recognizer, model_file):
    assert recognizer.charset == Charset.from_texts(["ab c"])
    assert recognizer.preprocessing == PreprocessConfig(height=16)
    assert recognizer.width_multiple == 4
    assert recognizer.name == str(model_file)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="missing.keras: no such model file"):
        Recognizer.load(tmp_path / "missing.keras")
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"not a zip archive")
    with pytest.raises(InputError, match=r"garbage.keras: not a \.keras model \(not a zip"):
        Recognizer.load(garbage)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(InputError, match="plain.keras: not an mdrnn recogniser"):
        Recognizer.load(tmp_path / "plain.keras")


def test_option_errors(recognizer):
    with pytest.raises(ValueError, match="decoder must be one of"):
        Recognizer(recognizer.model, decoder="viterbi")
    with pytest.raises(ValueError, match="needs one"):
        Recognizer(recognizer.model, decoder="lexicon")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        Recognizer(recognizer.model, batch_size=0)


def test_batches_sort_by_width_and_pad_to_the_width_multiple(recognizer):
    batches = recognizer.plan([50, 10, 40, 20, 30])
    assert [b.tolist() for b in batches] == [[1, 3, 4], [2, 0]]
    assert [recognizer.padded_width(w) for w in (1, 4, 5, 9)] == [4, 4, 8, 12]
    xla = Recognizer(recognizer.model, xla=True)
    # Buckets grow by 25% (in units of 4 columns): 1, 2, 3, 4, 5, 7, 9, 12, ...
    assert [xla.padded_width(w) for w in (4, 13, 17, 21, 29, 33, 37)] == [
        4, 16, 20, 28, 36, 36, 48]


def test_batched_results_equal_one_at_a_time(recognizer):
    images = line_images(7)
    batched = recognizer.recognize(images)
    alone = Recognizer(recognizer.model, batch_size=1)
    single = [alone.recognize([image])[0] for image in images]
    assert [r.text for r in batched] == [r.text for r in single]
    assert len({r.text for r in batched}) > 2  # the texts differ, so the check has teeth
    for b, s in zip(batched, single):
        assert b.confidence == pytest.approx(s.confidence, abs=1e-6)
        assert b.char_confidences == pytest.approx(s.char_confidences, abs=1e-6)


def test_greedy_result_equals_decoding_the_unpadded_model_output(recognizer):
    image = line_images(1, seed=3)[0]
    line = recognizer.prepare(image)
    logits = recognizer.model({"image": line[None, :, :, None],
                               "width": np.array([line.shape[1]], np.int32)})
    frames = -(-line.shape[1] // 4)
    ids, confidence, chars = greedy_decode(np.asarray(logits), [frames], per_char=True)[0]
    # Batched with wider lines, so this line is padded.
    result = recognizer.recognize([image, *line_images(2, seed=4)])[0]
    assert result.text == recognizer.charset.decode(ids)
    assert result.symbols == tuple(recognizer.charset.decode_symbols(ids))
    assert result.confidence == pytest.approx(confidence, abs=1e-6)
    assert result.char_confidences == pytest.approx(chars.tolist(), abs=1e-6)


def test_confidences_lie_in_unit_interval(recognizer):
    images = line_images(5, seed=1)
    greedy = recognizer.recognize(images)
    beam = Recognizer(recognizer.model, decoder="beam", beam_width=4).recognize(images)
    for result in greedy + beam:
        assert 0.0 <= result.confidence <= 1.0
        assert len(result.char_confidences) == len(result.symbols) == len(result.text)
        assert all(0.0 < c <= 1.0 for c in result.char_confidences)
    # The greedy path is the best of all paths, so it is the best alignment of its own
    # text: where beam search reads the greedy text, the characters' confidences agree.
    same = [(g, b) for g, b in zip(greedy, beam, strict=True) if g.text == b.text]
    assert same
    for g, b in same:
        assert b.char_confidences == pytest.approx(g.char_confidences, abs=1e-6)


def test_lexicon_word_mode_picks_list_entries(recognizer):
    words = ["ab", "ba", "c a", "bab"]
    lexical = Recognizer(recognizer.model, decoder="lexicon", lexicon=words)
    results = lexical.recognize(line_images(6, seed=2))
    assert all(r.text in words for r in results)
    # The confidence is the entry's posterior among the entries, so the best has >= 1/N.
    assert all(1 / len(words) <= r.confidence <= 1.0 for r in results)


def test_lexicon_line_mode_reads_listed_words_joined_by_spaces(recognizer):
    words = ["ab", "ba", "c"]
    lexical = Recognizer(recognizer.model, decoder="lexicon", lexicon=words, lexicon_mode="line")
    results = lexical.recognize(line_images(6, seed=2))
    assert any(" " in r.text for r in results)
    for r in results:
        assert r.text == "" or all(word in words for word in r.text.split(" "))


def test_lexicon_line_mode_needs_a_space_in_the_charset():
    model = tiny_model(Charset.from_texts(["ab"]))
    with pytest.raises(InputError, match="cannot emit a space"):
        Recognizer(model, decoder="lexicon", lexicon=["ab"], lexicon_mode="line")


def test_read_lexicon(tmp_path, caplog):
    charset = Charset.from_texts(["ab c"])
    path = tmp_path / "words.txt"
    path.write_text("ab\n\nba\nab\nzz\nc  a\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        lexicon = read_lexicon(path, charset)
    assert lexicon.entries == tuple(tuple(charset.encode(w)) for w in ["ab", "ba", "c a"])
    assert "1 entries use symbols the model cannot emit" in caplog.text and "'zz'" in caplog.text
    assert read_lexicon(path, charset, split_words=True).entries == tuple(
        tuple(charset.encode(w)) for w in ["ab", "ba", "c", "a"])
    tokens = Charset(["saB", "yaM", "aaE"], separator="|")
    path.write_text("saB|aaE\nyaM\n", encoding="utf-8")
    assert read_lexicon(path, tokens).entries == ((1, 3), (2,))
    path.write_text("zz\n", encoding="utf-8")
    with pytest.raises(InputError, match="words.txt: no usable lexicon entries"):
        read_lexicon(path, charset)
    with pytest.raises(InputError, match="nothing.txt: no such lexicon file"):
        read_lexicon(tmp_path / "nothing.txt", charset)


def test_xla_path_gives_the_same_texts(recognizer):
    images = line_images(3, seed=5)
    compiled = Recognizer(recognizer.model, batch_size=2, xla=True)
    # 3 lines in batches of 2: the last batch is padded with an empty row.
    assert [r.text for r in compiled.recognize(images)] == [
        r.text for r in recognizer.recognize(images)]


def _write_inputs(folder, images, bad=()):
    folder.mkdir()
    files = []
    for i, image in enumerate(images):
        path = folder / f"line{i}.png"
        cv2.imwrite(str(path), image)
        files.append(InputFile(path, f"line{i}"))
    for name in bad:
        (folder / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
        files.append(InputFile(folder / name, name.rsplit(".", 1)[0]))
    return files


def test_job_writes_good_inputs_and_reports_bad_ones(recognizer, tmp_path):
    images = line_images(5, seed=6)
    files = _write_inputs(tmp_path / "in", images, bad=["broken.png"])
    files.insert(2, files.pop())  # the bad input in the middle
    finished, failed = [], []
    with TextWriter(tmp_path / "out") as writer:
        report = transcribe_files(recognizer, files, writer, window=2, progress=finished.append,
                                  on_failure=lambda path, reason: failed.append(reason))
    assert (report.total, report.done, report.skipped) == (6, 5, 0)
    assert report.failures == [(files[2].path, failed[0])]
    assert failed[0].startswith(str(files[2].path)) and "truncated" in failed[0]
    assert sum(finished) == 6
    expected = recognizer.recognize(images)
    for i, result in enumerate(expected):
        assert (tmp_path / "out" / f"line{i}.txt").read_text("utf-8") == (
            result.text + "\n" if result.text else "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"line{i}.txt" for i in range(5)]


def _page(lines: list[np.ndarray]) -> np.ndarray:
    """A white page holding the line images one under another, well apart."""
    width = max(line.shape[1] for line in lines) + 80
    page = np.full((60 * len(lines) + 60, width), 255, np.uint8)
    for i, line in enumerate(lines):
        page[40 + 60 * i:40 + 60 * i + line.shape[0], 40:40 + line.shape[1]] = line
    return page


def test_job_on_pages_gives_lines_in_reading_order(recognizer, tmp_path):
    from mdrnn.datasets.digits import digit_lines

    lines = [s.source for s in digit_lines("val", 3, seed=1, min_digits=5, max_digits=8)]
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "page.png"), _page(lines))
    files = [InputFile(tmp_path / "in" / "page.png", "page")]
    with JsonlWriter(tmp_path / "out.jsonl") as writer:
        report = transcribe_files(recognizer, files, writer, pages=True)
    assert report.done == 1
    record = json.loads((tmp_path / "out.jsonl").read_text("utf-8"))
    assert record["source"] == str(files[0].path)
    assert len(record["lines"]) == 3
    tops = [line["bbox"][1] for line in record["lines"]]
    assert tops == sorted(tops) and all(abs(t - (40 + 60 * i)) < 15 for i, t in enumerate(tops))
    assert record["text"] == "\n".join(line["text"] for line in record["lines"])
    confidences = [line["confidence"] for line in record["lines"]]
    assert record["confidence"] == pytest.approx(np.mean(confidences), abs=1e-5)
    for line in record["lines"]:
        assert len(line["polygon"]) >= 4 and len(line["char_confidences"]) == len(line["text"])


def test_a_right_to_left_model_reads_mirrored_lines(tmp_path):
    # The flag travels in the model file: a right-to-left model reads each line as
    # the same model without the flag reads the mirrored line.
    charset = Charset.from_texts(["ab c"])
    model = tiny_model(charset)
    rtl = build_model(TINY_SPEC, len(charset.symbols), charset=charset.to_config(),
                      preprocessing=PreprocessConfig(height=16, right_to_left=True).to_dict())
    rtl.set_weights(model.get_weights())
    rtl.save(tmp_path / "rtl.keras")
    ltr = Recognizer(model)
    loaded = Recognizer.load(tmp_path / "rtl.keras")
    assert loaded.preprocessing.right_to_left
    images = line_images(4, seed=5)
    mirrored = [np.ascontiguousarray(image[:, ::-1]) for image in images]
    assert [r.text for r in loaded.recognize(images)] == [
        r.text for r in ltr.recognize(mirrored)]
    assert [r.text for r in loaded.recognize(images)] != [r.text for r in ltr.recognize(images)]
