"""tf.data pipeline: buckets, padding, labels, length checks, skipping, determinism."""

import dataclasses
import logging

import numpy as np
import pytest

from mdrnn.datasets.augment import Augmentation
from mdrnn.datasets.charset import Charset
from mdrnn.datasets.line_dataset import LineDataset, required_frames
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError
from mdrnn.pipelines.preprocess import preprocess_line
from mdrnn.pipelines.preprocess_config import PreprocessConfig

CONFIG = PreprocessConfig(height=16)


def prepared(config=CONFIG):
    """LineDataset's preprocessing arguments for a config."""
    return {"prepare": lambda image: preprocess_line(image, config), "height": config.height}


def make_samples(count=40, seed=0):
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        width = int(rng.integers(12, 120))
        image = np.full((16, width), 255, np.uint8)
        image[4:12, 2:width - 2] = rng.integers(0, 120, (8, width - 4))
        text = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(1, 5))))
        samples.append(Sample(image, text, f"s{i:03d}"))
    return samples


SAMPLES = make_samples()
CHARSET = Charset.from_texts(s.text for s in SAMPLES)


@pytest.mark.parametrize("ids, frames", [([], 0), ([1, 2, 3], 3), ([1, 1], 3), ([1, 1, 1], 5),
                                         ([1, 2, 1], 3), ([4, 4, 5, 5], 6)])
def test_required_frames(ids, frames):
    assert required_frames(ids) == frames


def test_evaluation_batches_hold_exact_preprocessed_lines():
    data = LineDataset(SAMPLES, CHARSET, **prepared(), batch_size=8, width_multiple=6)
    seen = []
    for batch in data.dataset():
        batch = {k: v.numpy() for k, v in batch.items()}
        size, height, padded, channels = batch["image"].shape
        assert (height, channels) == (16, 1) and padded in data.bucket_widths
        assert batch["image"].dtype == np.float32 and batch["labels"].dtype == np.int32
        assert batch["labels"].shape == (size, data.max_label_length)
        for k in range(size):
            sample = SAMPLES[batch["index"][k]]
            expected = preprocess_line(sample.load(), CONFIG)
            width = batch["width"][k]
            assert width == expected.shape[1] <= padded
            np.testing.assert_allclose(batch["image"][k, :, :width, 0], expected, atol=1e-3)
            assert not batch["image"][k, :, width:].any()
            label = CHARSET.encode(sample.text)
            assert batch["label_length"][k] == len(label)
            assert batch["labels"][k, :len(label)].tolist() == label
            assert not batch["labels"][k, len(label):].any()
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(len(SAMPLES)))


def test_bucket_widths_are_few_multiples_covering_all_lines():
    data = LineDataset(SAMPLES, CHARSET, **prepared(), width_multiple=18, num_buckets=4)
    assert 1 <= len(data.bucket_widths) <= 4
    assert all(w % 18 == 0 for w in data.bucket_widths)
    widest = max(preprocess_line(s.load(), CONFIG).shape[1] for s in SAMPLES)
    assert data.bucket_widths[-1] >= widest > data.bucket_widths[-1] - 18


def test_training_shapes_are_only_the_declared_ones():
    data = LineDataset(SAMPLES, CHARSET, **prepared(), batch_size=4, width_multiple=6,
                       bucket_widths=(60, 120, 240), training=True, seed=1)
    shapes = set()
    for epoch in range(3):
        for batch in data.dataset(epoch):
            shapes.add((tuple(batch["image"].shape), tuple(batch["labels"].shape)))
            widths = batch["width"].numpy()
            assert (widths <= batch["image"].shape[2]).all()
    declared = {((4, 16, w, 1), (4, data.max_label_length)) for w in (60, 120, 240)}
    assert shapes <= declared and len(shapes) >= 2


def test_a_limited_epoch_is_the_first_batches_of_the_full_one():
    data = LineDataset(SAMPLES, CHARSET, **prepared(), batch_size=4, width_multiple=6,
                       training=True, augmentation=None, seed=3)
    full = [b["index"].numpy().tolist() for b in data.dataset(2)]
    limited = [b["index"].numpy().tolist() for b in data.dataset(2, limit=3)]
    assert len(full) > 3 and limited == full[:3]
    assert len(list(data.dataset(2, limit=100))) == len(full)


def test_bad_bucket_widths_and_too_wide_lines():
    with pytest.raises(ValueError, match="multiples of 18"):
        LineDataset(SAMPLES, CHARSET, **prepared(), width_multiple=18, bucket_widths=(36, 40))
    data = LineDataset(SAMPLES, CHARSET, **prepared(), width_multiple=6, bucket_widths=(60,))
    widths = [preprocess_line(s.load(), CONFIG).shape[1] for s in SAMPLES]
    assert sorted(data.dropped) == [s.id for s, w in zip(SAMPLES, widths, strict=True) if w > 60]
    assert sorted(data.kept.tolist()) == [i for i, w in enumerate(widths) if w <= 60]


def test_epoch_order_is_reproducible_per_seed_and_epoch():
    def epoch_data(seed, epoch):
        data = LineDataset(SAMPLES, CHARSET, **prepared(), batch_size=4, width_multiple=6,
                           training=True, seed=seed)
        return [(b.width, b.indices) for b in data.plan(epoch)], data.assemble(data.plan(epoch)[0])

    plan, first = epoch_data(seed=5, epoch=2)
    again, first_again = epoch_data(seed=5, epoch=2)
    assert plan == again
    for key in first:
        np.testing.assert_array_equal(first[key], first_again[key])
    assert epoch_data(seed=5, epoch=3)[0] != plan
    assert epoch_data(seed=6, epoch=2)[0] != plan


def test_training_drops_incomplete_batches_and_evaluation_keeps_them():
    train = LineDataset(SAMPLES, CHARSET, **prepared(), batch_size=6, width_multiple=6,
                        training=True)
    assert all(len(b.indices) == 6 for b in train.plan(0))
    used = [i for b in train.plan(0) for i in b.indices]
    assert len(used) == len(set(used)) and len(used) > len(SAMPLES) - 6 * len(train.bucket_widths)
    evaluation = LineDataset(SAMPLES, CHARSET, **prepared(), batch_size=6, width_multiple=6)
    assert sorted(i for b in evaluation.plan() for i in b.indices) == list(range(len(SAMPLES)))


def test_training_without_a_complete_batch_is_an_error():
    data = LineDataset(SAMPLES[:5], CHARSET, **prepared(), batch_size=8, training=True)
    with pytest.raises(InputError, match="no complete batch: 5 usable samples"):
        data.plan(0)


def test_lines_too_short_for_their_labels_are_dropped_and_logged(caplog):
    samples = SAMPLES[:10] + [Sample(np.full((16, 20), 200, np.uint8), "11111111", "tiny")]
    charset = Charset.from_texts(s.text for s in samples)

    def output_length(width):
        return width // 4

    with caplog.at_level(logging.WARNING, logger="mdrnn.datasets.line_dataset"):
        data = LineDataset(samples, charset, **prepared(), batch_size=2, width_multiple=4,
                           training=True, output_length=output_length)
    assert "tiny" in data.dropped and "5 output frames for a label that needs 15" in caplog.text
    # One line in eleven is more than 1%: the message says what gives lines more frames.
    assert ("1 of 11 samples skipped (1 too short for their labels); a network that shrinks "
            "the width less (e.g. --preset graves2009_x9)") in caplog.text
    # Augmentation may narrow a line, but never below what its label needs.
    for epoch in range(4):
        for batch in data.plan(epoch):
            arrays = data.assemble(batch)
            for k, i in enumerate(arrays["index"]):
                need = required_frames(charset.encode(samples[i].text))
                assert output_length(arrays["width"][k]) >= need


def test_unreadable_samples_are_skipped_by_name(tmp_path, caplog):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    samples = SAMPLES[:5] + [Sample(broken, "1", "broken"),
                             Sample(tmp_path / "gone.png", "2", "gone")]
    with caplog.at_level(logging.WARNING, logger="mdrnn.datasets.line_dataset"):
        data = LineDataset(samples, CHARSET, **prepared(), width_multiple=6)
    assert sorted(data.dropped) == ["broken", "gone"]
    assert "broken.png" in caplog.text and "gone.png" in caplog.text
    assert "2 of 7 samples skipped (2 unreadable)" in caplog.text
    assert sorted(data.kept.tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(InputError, match="no usable samples: .*broken.png"):
        LineDataset(samples[5:6], CHARSET, **prepared())


def test_unknown_symbols_fail_before_training():
    samples = SAMPLES[:3] + [Sample(np.full((16, 20), 255, np.uint8), "12x", "odd")]
    with pytest.raises(InputError, match=r"1 symbols the charset lacks: 'x' \(e\.g\. in odd\)"):
        LineDataset(samples, CHARSET, **prepared())
    data = LineDataset(samples, CHARSET, **prepared(), unknown="skip")
    assert data.assemble(data.plan()[-1])["labels"].max() <= len(CHARSET.symbols)


def test_right_to_left_mirrors_the_image():
    sample = SAMPLES[3]
    forward = LineDataset([sample], CHARSET, **prepared())
    mirrored = LineDataset([sample], CHARSET,
                           **prepared(dataclasses.replace(CONFIG, right_to_left=True)))
    a = forward.assemble(forward.plan()[0])
    b = mirrored.assemble(mirrored.plan()[0])
    width = a["width"][0]
    np.testing.assert_array_equal(a["image"][0, :, :width], b["image"][0, :, width - 1::-1])


def test_augmentation_is_deterministic_and_respects_width_limits():
    augmentation = Augmentation()
    image = preprocess_line(SAMPLES[0].load(), CONFIG)
    h, w = image.shape
    for seed in range(30):
        warp = augmentation.draw(np.random.default_rng(seed), h, w, min_width=w - 2,
                                 max_width=w + 5)
        assert w - 2 <= warp.width <= w + 5
        out = Augmentation.apply(image, warp)
        assert out.shape == (h, warp.width) and out.dtype == np.float32
        again = Augmentation.apply(image, augmentation.draw(
            np.random.default_rng(seed), h, w, min_width=w - 2, max_width=w + 5))
        np.testing.assert_array_equal(out, again)


def test_augmentation_without_ranges_is_identity():
    none = Augmentation(shear=0, rotation=0, scale_x=(1, 1), scale_y=(1, 1), contrast=(1, 1),
                        blur=0, noise=0)
    image = preprocess_line(SAMPLES[1].load(), CONFIG)
    warp = none.draw(np.random.default_rng(0), *image.shape)
    np.testing.assert_allclose(Augmentation.apply(image, warp), image, atol=1e-5)
    with pytest.raises(ValueError, match="invalid augmentation"):
        Augmentation(scale_y=(0.9, 1.2))
