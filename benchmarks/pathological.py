"""Long-range problems of Hochreiter & Schmidhuber (1997), trained by HF, Adam or SGD.

The problems, as Martens & Sutskever (ICML 2011) ran them on tanh RNNs, at length T
(each sequence drawn afresh; the answer read after the last step):

- addition / multiplication: inputs (x_t, m_t), x_t uniform in [0, 1], m_t = 1 at
  two positions (the first among the first T/10, the second among the rest) and 0
  elsewhere; the target is x_a + x_b (addition) or x_a · x_b (multiplication),
  squared error. Solved when at least 99% of 2,000 fresh test sequences are within
  0.04 of their target (Hochreiter & Schmidhuber's tolerance, on targets of range
  2 and 1).
- xor: as addition with x_t in {0, 1}; the target class is x_a XOR x_b.
- order (temporal order): symbols one-hot out of 6 (a, b, c, d distractors, X, Y);
  X or Y at one position among [T/10, 2T/10) and one among [5T/10, 6T/10); the
  class is which of XX, XY, YX, YY.
- memorisation (3-bit noiseless memorisation): 3 bits given as symbols at the
  first 3 steps, distractor symbols after, a trigger at step T; classes are the
  3-bit word.
  Classification problems are solved at 99% accuracy on 2,000 test sequences.

Models: a tanh RNN (`keras.layers.SimpleRNN`, 100 units; sparse initialisation as
Martens & Sutskever used: 15 incoming weights per unit from N(0, 1), the recurrent
matrix scaled to spectral radius 1.2) or an LSTM (100 units, Keras defaults), a
dense output. Optimisers: `hf` (`mdrnn.optimizers.HessianFree`, gradient on 2 x 1,000
fresh sequences, curvature on the first 1,000, structural damping μ = 1/30 on the
RNN's hidden states), `adam` (1e-3) and `sgd` (momentum 0.9, learning rate 0.01),
both on batches of 100 with gradients clipped to norm 1. Training stops when solved
(tested every --check seconds) or at --budget seconds.

    python benchmarks/pathological.py --task addition --length 100 --model rnn \\
        --optimizer hf --seed 3

The last line printed is a JSON object: solved, steps, seconds, and the test score.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

TASKS = ("addition", "multiplication", "xor", "order", "memorisation")
CLASSES = {"xor": 2, "order": 4, "memorisation": 8}


def sequences(task: str, length: int, count: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (count, length, features) float32, targets (count,) float32 or int)."""
    rows = np.arange(count)
    if task in ("addition", "multiplication", "xor"):
        values = rng.integers(0, 2, (count, length)) if task == "xor" else \
            rng.uniform(0, 1, (count, length))
        first = rng.integers(0, max(1, length // 10), count)
        second = rng.integers(max(1, length // 10), length, count)
        marks = np.zeros((count, length))
        marks[rows, first] = marks[rows, second] = 1
        a, b = values[rows, first], values[rows, second]
        target = a + b if task == "addition" else a * b if task == "multiplication" else \
            (a != b).astype(np.int32)
        return np.stack([values, marks], -1).astype(np.float32), target
    symbols = rng.integers(0, 4, (count, length))  # distractors a, b, c, d
    if task == "order":
        first = rng.integers(length // 10, 2 * length // 10, count)
        second = rng.integers(5 * length // 10, 6 * length // 10, count)
        which = rng.integers(0, 2, (count, 2))
        symbols[rows, first], symbols[rows, second] = 4 + which[:, 0], 4 + which[:, 1]
        return np.eye(6, dtype=np.float32)[symbols], which[:, 0] * 2 + which[:, 1]
    bits = rng.integers(0, 2, (count, 3))
    symbols[:, :3] = bits  # a/b stand for 0/1 at the first three steps
    inputs = np.concatenate([np.eye(4, dtype=np.float32)[symbols],
                             np.zeros((count, length, 2), np.float32)], -1)
    inputs[:, :3, 4] = 1  # "this is a bit to remember"
    inputs[:, -1, 5] = 1  # the trigger
    return inputs, bits @ np.array([4, 2, 1])


def build(task: str, kind: str, features: int, seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, features))
    if kind == "rnn":
        recurrent = keras.layers.SimpleRNN(100, return_sequences=True)
    else:
        recurrent = keras.layers.LSTM(100, return_sequences=True)
    hidden = recurrent(inputs)
    outputs = keras.layers.Dense(CLASSES.get(task, 1))(hidden[:, -1])
    model = keras.Model(inputs, [outputs, hidden])
    if kind == "rnn":  # Martens & Sutskever's sparse initialisation
        rng = np.random.default_rng(seed)
        for weight in (recurrent.cell.kernel, recurrent.cell.recurrent_kernel):
            n_in, n_out = weight.shape
            w = np.zeros((n_in, n_out))
            for unit in range(n_out):
                chosen = rng.choice(n_in, min(15, n_in), replace=False)
                w[chosen, unit] = rng.normal(0, 1, len(chosen))
            if weight is recurrent.cell.recurrent_kernel:
                w *= 1.2 / max(abs(np.linalg.eigvals(w)))
            weight.assign(w.astype(np.float32))
    return model


def score(task: str, model, x, y) -> float:
    """Fraction of test sequences answered right."""
    out = model.predict(x, batch_size=500, verbose=0)[0]
    if task in CLASSES:
        return float(np.mean(np.argmax(out, -1) == y))
    return float(np.mean(np.abs(out[:, 0] - y) < 0.04))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="addition")
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--model", choices=("rnn", "lstm"), default="rnn")
    parser.add_argument("--optimizer", choices=("hf", "adam", "sgd"), default="hf")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=1800, help="seconds of training")
    parser.add_argument("--check", type=float, default=30, help="seconds between tests")
    parser.add_argument("--max-cg", type=int, default=250)
    args = parser.parse_args()

    import tensorflow as tf

    from mdrnn.optimizers import HessianFree, softmax_curvature, squared_error_curvature

    rng = np.random.default_rng(args.seed)
    test_x, test_y = sequences(args.task, args.length, 2000, np.random.default_rng(10**6))
    model = build(args.task, args.model, test_x.shape[-1], args.seed)
    classes = args.task in CLASSES

    def loss_of(z, y):
        if classes:
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, z))
        return 0.5 * tf.reduce_mean(tf.square(z[:, 0] - tf.cast(y, z.dtype)))

    def batch(count):
        x, y = sequences(args.task, args.length, count, rng)
        return tf.constant(x), tf.constant(y)

    if args.optimizer == "hf":
        def curvature(z, b, u):
            weights = tf.fill(tf.shape(z)[:1], 1.0 / tf.cast(tf.shape(z)[0], tf.float32))
            return (softmax_curvature if classes else squared_error_curvature)(z, u, weights)

        hf = HessianFree(model.trainable_variables,
                         lambda b: (lambda out: (out[0], [out[1]] if args.model == "rnn"
                                                 else []))(model(b[0])),
                         lambda z, b: loss_of(z, b[1]), curvature,
                         structural=1 / 30 if args.model == "rnn" else 0.0,
                         max_cg=args.max_cg)

        def train_step():
            batches = [batch(1000), batch(1000)]
            return hf.step(batches, batches[0])["new_loss"]
    else:
        import keras

        optimizer = keras.optimizers.Adam(1e-3, global_clipnorm=1.0) if args.optimizer == \
            "adam" else keras.optimizers.SGD(0.01, momentum=0.9, global_clipnorm=1.0)

        @tf.function
        def update(x, y):
            with tf.GradientTape() as tape:
                loss = loss_of(model(x)[0], y)
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables),
                                          model.trainable_variables))
            return loss

        def train_step():
            return float(update(*batch(100)))

    start = last_check = time.monotonic()
    steps, solved, accuracy = 0, False, score(args.task, model, test_x, test_y)
    while time.monotonic() - start < args.budget:
        loss = train_step()
        steps += 1
        if time.monotonic() - last_check >= args.check:
            accuracy = score(args.task, model, test_x, test_y)
            last_check = time.monotonic()
            print(f"{last_check - start:7.0f} s  step {steps}  loss {loss:.4f}  "
                  f"test {accuracy:.3f}", file=sys.stderr, flush=True)
            if accuracy >= 0.99:
                solved = True
                break
    if not solved:
        accuracy = score(args.task, model, test_x, test_y)
        solved = accuracy >= 0.99
    print(json.dumps({"task": args.task, "length": args.length, "model": args.model,
                      "optimizer": args.optimizer, "seed": args.seed, "solved": solved,
                      "steps": steps, "seconds": round(time.monotonic() - start, 1),
                      "test_right": accuracy, "budget": args.budget}))


if __name__ == "__main__":
    main()
