"""Training and validation batches: preprocessed lines in width buckets, with CTC labels.

`LineDataset` decodes and preprocesses every sample once, in a thread pool, and
keeps the result in memory as float16 (relative rounding error at most 2**-11,
finer than the 8-bit scans the lines come from; half the memory of float32).
Redoing that work every epoch would take CPU time that training needs
(benchmarks/input_pipeline.py measures both); only augmentation runs per epoch.

Each epoch is planned in Python first (`plan(epoch)`): the order of samples, each
sample's augmentation, and which samples share a batch. The plan depends only on
the seed and the epoch number, so a resumed run sees exactly the data order it
would have seen. Batches are padded to one of a few fixed widths
(`bucket_widths`, each a multiple of `width_multiple`) so that XLA compiles few
shapes, and labels to one fixed length (`max_label_length`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from mdrnn import ctc
from mdrnn.datasets.augment import DEFAULT_AUGMENTATION, Augmentation, Warp
from mdrnn.datasets.charset import Charset
from mdrnn.datasets.samples import Sample
from mdrnn.errors import InputError

log = logging.getLogger(__name__)
# Per-sample warnings beyond this many only count towards the summary.
MAX_LOGGED = 20


def required_frames(label_ids: Sequence[int]) -> int:
    """CTC frames one label needs (`mdrnn.ctc.required_frames` for a single label)."""
    ids = np.asarray(list(label_ids), np.int64).reshape(1, -1)
    return int(ctc.required_frames(ids, [ids.shape[1]])[0])


@dataclass(frozen=True)
class Batch:
    """One planned batch: its padded width, the sample indices, and their warps (or None)."""

    width: int
    indices: tuple[int, ...]
    warps: tuple[Warp, ...] | None


def _round_up(value: float, multiple: int) -> int:
    return max(multiple, math.ceil(value / multiple) * multiple)


class LineDataset:
    """Samples as padded, width-bucketed batches for CTC training or evaluation.

    Each batch is a dict: "image" float32 (B, H, W, 1) with 0 beyond each line's
    width, "width" int32 (B,), "labels" int32 (B, max_label_length) padded with 0,
    "label_length" int32 (B,), and "index" int32 (B,) into `samples` (so
    ``samples[index].id`` names a sample in errors). W is one of `bucket_widths`;
    B is `batch_size` except, without `drop_remainder`, for the last batch of
    a bucket.

    Samples that cannot be read or preprocessed, and samples whose CTC output
    would be shorter than `required_frames`, are skipped with a warning naming
    them and a final count; `dropped` maps their ids to the reason, `drop_counts`
    counts them by kind ("unreadable", "too wide", "too short for their labels").

    Args:
        samples: the data.
        charset: maps texts to label ids.
        prepare: a line image (2-D uint8 gray) -> the network's input (height, W),
            e.g. `mdrnn.pipelines.preprocess.preprocess_line` with a config.
        height: the height `prepare` gives.
        batch_size: samples per batch.
        width_multiple: every padded width is a multiple of this (the model's
            total width subsampling, e.g. 18 for graves2009).
        bucket_widths: the padded widths; by default up to `num_buckets` widths
            at quantiles of the data. Wider samples are dropped.
        num_buckets: how many widths to choose when `bucket_widths` is None.
        training: shuffle per epoch, augment, and drop incomplete batches.
        augmentation: distortions for training; None for none.
        seed: random seed of shuffling and augmentation.
        output_length: model width -> CTC frames (non-decreasing); enables the
            length check.
        unknown: policy for symbols missing from the charset (see `Charset.encode`).
        drop_remainder: drop incomplete batches; default `training`.
        workers: threads for preprocessing and for assembling batches; default the CPU
            count.
    """

    def __init__(self, samples: Sequence[Sample], charset: Charset,
                 prepare: Callable[[np.ndarray], np.ndarray], *, height: int,
                 batch_size: int = 16, width_multiple: int = 1,
                 bucket_widths: Sequence[int] | None = None, num_buckets: int = 6,
                 training: bool = False, augmentation: Augmentation | None = DEFAULT_AUGMENTATION,
                 seed: int = 0, output_length: Callable[[int], int] | None = None,
                 unknown: str = "error",
                 drop_remainder: bool | None = None, workers: int | None = None):
        if batch_size < 1 or width_multiple < 1 or num_buckets < 1:
            raise ValueError(f"batch_size, width_multiple and num_buckets must be >= 1, got "
                             f"{batch_size}, {width_multiple}, {num_buckets}")
        self.samples = list(samples)
        self.charset, self.prepare, self.height = charset, prepare, height
        self.batch_size, self.width_multiple, self.seed = batch_size, width_multiple, seed
        self.training = training
        self.augmentation = augmentation if training else None
        self.drop_remainder = training if drop_remainder is None else drop_remainder
        self.dropped: dict[str, str] = {}
        self.drop_counts: dict[str, int] = {}
        self._labels = self._encode(unknown)
        self.workers = workers or os.cpu_count() or 1
        self._images = self._preprocess(self.workers)
        widths = np.array([0 if x is None else x.shape[1] for x in self._images])
        self._widths = widths
        usable = [i for i, x in enumerate(self._images) if x is not None]
        if not usable:
            raise InputError("no usable samples: " + (next(iter(self.dropped.values()), "")
                                                      if self.dropped else "the list is empty"))
        if bucket_widths is None:
            quantiles = np.quantile(widths[usable], np.arange(1, num_buckets + 1) / num_buckets)
            bucket_widths = sorted({_round_up(q, width_multiple) for q in quantiles})
        elif any(w % width_multiple or w < 1 for w in bucket_widths):
            raise ValueError(f"bucket widths must be positive multiples of {width_multiple}, "
                             f"got {list(bucket_widths)}")
        self.bucket_widths = tuple(sorted(set(bucket_widths)))
        self._min_widths = np.ones(len(self.samples), int)
        kept = []
        for i in usable:
            if widths[i] > self.bucket_widths[-1]:
                self._drop(i, "too wide", f"width {widths[i]} exceeds the largest bucket "
                                          f"{self.bucket_widths[-1]}")
                continue
            if output_length is not None:
                need = required_frames(self._labels[i])
                frames = output_length(int(widths[i]))
                if frames < need:
                    self._drop(i, "too short for their labels",
                               f"{frames} output frames for a label that needs {need}")
                    continue
                self._min_widths[i] = self._narrowest(output_length, need, int(widths[i]))
            kept.append(i)
        self.kept = np.array(kept, int)
        if self.dropped:
            short = self.drop_counts.get("too short for their labels", 0)
            hint = ("; a network that shrinks the width less (e.g. --preset graves2009_x9) or "
                    "a taller --height gives dense lines more frames"
                    if short > 0.01 * len(self.samples) else "")
            log.warning("%d of %d samples skipped (%s)%s", len(self.dropped), len(self.samples),
                        ", ".join(f"{n} {kind}" for kind, n in self.drop_counts.items()), hint)
        if not kept:
            raise InputError(f"no usable samples: {next(iter(self.dropped.values()))}")
        self.max_label_length = max(1, max(len(self._labels[i]) for i in kept))

    def _encode(self, unknown: str) -> list[list[int]]:
        if unknown == "error":
            missing = {}
            for sample in self.samples:
                for symbol in self.charset.unknown_symbols(sample.text):
                    missing.setdefault(symbol, sample.id)
            if missing:
                listed = ", ".join(f"{s!r} (e.g. in {i})" for s, i in list(missing.items())[:10])
                raise InputError(f"{len(missing)} symbols the charset lacks: {listed}")
        return [self.charset.encode(s.text, unknown, name=s.id) for s in self.samples]

    def _load_one(self, i: int) -> np.ndarray | None | str:
        sample = self.samples[i]
        try:
            image = self.prepare(sample.load())
        except InputError as error:
            return str(error)
        except Exception as error:  # noqa: BLE001 - one bad line must not end a training run
            lines = str(error).strip().splitlines()
            return f"{sample.name}: {type(error).__name__}: {lines[-1] if lines else ''}"
        if image.ndim != 2 or image.shape[0] != self.height or image.shape[1] < 1:
            return f"{sample.name}: preprocessing gave shape {image.shape}"
        return image.astype(np.float16)

    def _preprocess(self, workers: int) -> list[np.ndarray | None]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(self._load_one, range(len(self.samples))))
        images: list[np.ndarray | None] = []
        for i, result in enumerate(results):
            if isinstance(result, str):
                self._drop(i, "unreadable", result)
                result = None
            images.append(result)
        return images

    def _drop(self, i: int, kind: str, reason: str) -> None:
        sample = self.samples[i]
        # Reasons from reading already start with the file name.
        message = reason if kind == "unreadable" else f"{sample.name}: {reason}"
        self.dropped[sample.id] = message
        self.drop_counts[kind] = self.drop_counts.get(kind, 0) + 1
        if len(self.dropped) <= MAX_LOGGED:
            log.warning("skipping %s", message)

    @staticmethod
    def _narrowest(output_length: Callable[[int], int], need: int, width: int) -> int:
        low, high = 1, width  # output_length(width) >= need is known
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if output_length(middle) >= need else (middle + 1, high)
        return low

    def plan(self, epoch: int = 0) -> list[Batch]:
        """The batches of one epoch, in order; the same for the same seed and epoch.

        Training shuffles with seed (seed, epoch) and augments sample i with seed
        (seed, epoch, i); evaluation orders samples by width, without augmentation.
        """
        if self.training:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.kept)
        else:
            order = self.kept[np.argsort(self._widths[self.kept], kind="stable")]
        open_batches: dict[int, list[tuple[int, Warp | None]]] = {}
        batches = []
        for i in order:
            i = int(i)
            warp = None
            if self.augmentation is not None:
                rng = np.random.default_rng([self.seed, epoch, i])
                warp = self.augmentation.draw(rng, self.height, int(self._widths[i]),
                                              min_width=int(self._min_widths[i]),
                                              max_width=self.bucket_widths[-1])
            width = warp.width if warp else int(self._widths[i])
            bucket = next(w for w in self.bucket_widths if w >= width)
            members = open_batches.setdefault(bucket, [])
            members.append((i, warp))
            if len(members) == self.batch_size:
                batches.append(self._batch(bucket, open_batches.pop(bucket)))
        if not self.drop_remainder:
            batches += [self._batch(w, m) for w, m in sorted(open_batches.items())]
        elif not batches:
            raise InputError(f"no complete batch: {len(self.kept)} usable samples over "
                             f"{len(self.bucket_widths)} width buckets for batch size "
                             f"{self.batch_size}; use a smaller batch or fewer buckets")
        return batches

    def _batch(self, width: int, members: list[tuple[int, Warp | None]]) -> Batch:
        indices = tuple(i for i, _ in members)
        warps = tuple(w for _, w in members) if self.augmentation is not None else None
        return Batch(width, indices, warps)

    def assemble(self, batch: Batch) -> dict[str, np.ndarray]:
        """Build one batch's arrays (the work each tf.data map call does)."""
        size, height = len(batch.indices), self.height
        image = np.zeros((size, height, batch.width, 1), np.float32)
        widths = np.zeros(size, np.int32)
        labels = np.zeros((size, self.max_label_length), np.int32)
        lengths = np.zeros(size, np.int32)
        for k, i in enumerate(batch.indices):
            line = self._images[i].astype(np.float32)
            if batch.warps is not None:
                line = Augmentation.apply(line, batch.warps[k])
            image[k, :, :line.shape[1], 0] = line
            widths[k] = line.shape[1]
            label = self._labels[i]
            labels[k, :len(label)] = label
            lengths[k] = len(label)
        return {"image": image, "width": widths, "labels": labels, "label_length": lengths,
                "index": np.array(batch.indices, np.int32)}

    def dataset(self, epoch: int = 0, limit: int | None = None) -> tf.data.Dataset:
        """The tf.data pipeline of one epoch: batches assembled in parallel, then prefetched.

        With `limit`, only the first `limit` batches of the epoch's plan.

        Parallelism and prefetch are fixed rather than autotuned: with tf.data's
        autotuning on, the end of an epoch often waited about 8 s while training kept
        the CPU busy (the demo's 12-s epochs took 20.5 s).
        """
        batches = self.plan(epoch)[:limit]
        keys = ("image", "width", "labels", "label_length", "index")
        types = (tf.float32, tf.int32, tf.int32, tf.int32, tf.int32)

        def build(b):
            arrays = self.assemble(batches[int(b)])
            return tuple(arrays[k] for k in keys)

        def to_dict(*tensors):
            shapes = ([None, self.height, None, 1], [None],
                      [None, self.max_label_length], [None], [None])
            for tensor, shape in zip(tensors, shapes, strict=True):
                tensor.set_shape(shape)
            return dict(zip(keys, tensors, strict=True))

        dataset = tf.data.Dataset.range(len(batches))
        dataset = dataset.map(lambda b: tf.numpy_function(build, [b], types, stateful=False),
                              num_parallel_calls=self.workers, deterministic=True)
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.map(to_dict).prefetch(2).with_options(options)
