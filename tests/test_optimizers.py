"""The Hessian-free optimiser: its Gauss-Newton products checked in float64 against an
explicit Jacobian product and against finite differences, its CG, and that it learns."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mdrnn.layers import MDLSTM2D
from mdrnn.optimizers import (
    HessianFree,
    conjugate_gradient,
    diagonal_preconditioner,
    softmax_curvature,
    squared_error_curvature,
)


@pytest.fixture
def float64():
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(previous)
    keras.config.set_dtype_policy(policy)


def mdlstm_problem(structural: bool, **options):
    """A tiny two-direction MDLSTM with a softmax over 3 classes per column, masked, its
    loss a mean over the lines: (HessianFree, batch, outputs function)."""
    image = keras.Input((4, None, 1), name="image")
    mask = keras.Input((4, None), name="mask", dtype="bool")
    hidden = MDLSTM2D(2, directions=("tl", "br"))(image, mask=mask)
    logits = keras.layers.Dense(3)(keras.ops.mean(hidden, axis=1))
    model = keras.Model([image, mask], [logits, hidden])
    rng = np.random.default_rng(0)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.7, weight.shape))
    widths = np.array([5, 3])
    batch = {"image": tf.constant(rng.normal(size=(2, 4, 5, 1))),
             "mask": tf.constant(np.arange(5)[None, None, :] < widths[:, None, None]
                                 .repeat(4, 1)),
             "columns": tf.constant((np.arange(5)[None] < widths[:, None]) * 1.0)}

    def outputs(batch):
        z, h = model([batch["image"], batch["mask"]])
        return z, [h * tf.cast(batch["mask"], h.dtype)[..., None]] if structural else []

    def curvature(z, batch, u):
        return softmax_curvature(z, u, batch["columns"] / tf.cast(tf.shape(z)[0], z.dtype))

    hf = HessianFree(model.trainable_variables, outputs, loss=None, curvature=curvature,
                     **options)
    return hf, batch, outputs


def explicit_gauss_newton(hf, batch, outputs, damping, structural):
    """G + λI + λμS built from full Jacobians (tape.jacobian) and the explicit softmax
    Hessian diag(y) − y yᵀ of every output position."""
    params = hf.params
    with tf.GradientTape(persistent=True) as tape:
        z, hidden = outputs(batch)
        zf = tf.reshape(z, [-1])
        hf_ = tf.concat([tf.reshape(h, [-1]) for h in hidden], 0) if hidden else None
    jz = tf.concat([tf.reshape(j, [zf.shape[0], -1]) for j in
                    tape.jacobian(zf, params, unconnected_gradients="zero")], 1)
    y = tf.nn.softmax(z).numpy().reshape(-1, 3)
    w = batch["columns"].numpy().reshape(-1) / 2
    blocks = [w[i] * (np.diag(y[i]) - np.outer(y[i], y[i])) for i in range(len(y))]
    h_loss = np.zeros((len(zf), len(zf)))
    for i, block in enumerate(blocks):
        h_loss[3 * i:3 * i + 3, 3 * i:3 * i + 3] = block
    g = jz.numpy().T @ h_loss @ jz.numpy() + damping * np.eye(jz.shape[1])
    if hf_ is not None:
        jh = tf.concat([tf.reshape(j, [hf_.shape[0], -1]) for j in
                        tape.jacobian(hf_, params, unconnected_gradients="zero")], 1).numpy()
        g += damping * structural * jh.T @ jh / 2  # ½‖Δh‖² / (batch size 2)
    return g


@pytest.mark.parametrize("structural", [False, True])
def test_gauss_newton_product_equals_the_explicit_matrix(float64, structural):
    hf, batch, outputs = mdlstm_problem(structural)
    size = sum(int(np.prod(v.shape)) for v in hf.params)
    v = tf.constant(np.random.default_rng(1).normal(size=size))
    damping, mu = 0.3, 0.5
    product = hf.gauss_newton_product(batch, v, damping, mu).numpy()
    expected = explicit_gauss_newton(hf, batch, outputs, damping, mu if structural else 0) \
        @ v.numpy()
    assert np.linalg.norm(product - expected) <= 1e-6 * np.linalg.norm(expected)
    # Not trivially so: the damping and the structural term change the product.
    other = hf.gauss_newton_product(batch, v, 0.0, 0.0).numpy()
    assert np.linalg.norm(other - expected) > 1e-3 * np.linalg.norm(expected)


@pytest.mark.parametrize("structural", [False, True])
def test_sharded_compiled_products_equal_the_explicit_matrix(float64, structural):
    """Two parts of the batch, each product compiled with XLA: weighted by their rows,
    they sum to the whole batch's product."""
    hf, batch, outputs = mdlstm_problem(structural, shards=2, xla=True)
    size = sum(int(np.prod(v.shape)) for v in hf.params)
    v = tf.constant(np.random.default_rng(1).normal(size=size))
    product = hf.gauss_newton_product(batch, v, 0.3, 0.5).numpy()
    expected = explicit_gauss_newton(hf, batch, outputs, 0.3, 0.5 if structural else 0) \
        @ v.numpy()
    assert np.linalg.norm(product - expected) <= 1e-6 * np.linalg.norm(expected)


def test_gauss_newton_product_equals_finite_differences(float64):
    """G v = Jᵀ(H (J v)) with J v and every uᵀ∂z/∂θₖ taken by central differences."""
    hf, batch, outputs = mdlstm_problem(False)
    theta = hf._flat(hf.params)
    rng = np.random.default_rng(2)
    v = tf.constant(rng.normal(size=theta.shape[0]))
    eps = 1e-6

    def z_at(delta):
        hf._move(delta)
        try:
            return outputs(batch)[0]
        finally:
            hf._move(-delta)

    z = outputs(batch)[0]
    jv = (z_at(eps * v) - z_at(-eps * v)) / (2 * eps)
    u = softmax_curvature(z, jv, batch["columns"] / 2)
    columns = []
    for k in range(theta.shape[0]):
        e = tf.one_hot(k, theta.shape[0], dtype=theta.dtype) * eps
        columns.append(float(tf.reduce_sum(u * (z_at(e) - z_at(-e)))) / (2 * eps))
    expected = np.array(columns)
    product = hf.gauss_newton_product(batch, v).numpy()
    assert np.linalg.norm(product - expected) <= 1e-6 * np.linalg.norm(expected)


def test_gauss_newton_product_goes_through_keras_rnn_loops(float64):
    """A tanh RNN (keras.layers.SimpleRNN, a while loop) with squared error: G v = Jᵀ J v."""
    inputs = keras.Input((7, 2))
    outputs_ = keras.layers.Dense(1)(keras.layers.SimpleRNN(3, seed=1)(inputs))
    model = keras.Model(inputs, outputs_)
    x = tf.constant(np.random.default_rng(3).normal(size=(4, 7, 2)))
    hf = HessianFree(model.trainable_variables, lambda b: (model(b), []), loss=None,
                     curvature=lambda z, b, u: squared_error_curvature(z, u, tf.ones(4)))
    v = tf.constant(np.random.default_rng(4).normal(size=hf._flat(hf.params).shape[0]))
    with tf.GradientTape() as tape:
        z = tf.reshape(model(x), [-1])
    j = tf.concat([tf.reshape(g, [4, -1]) for g in tape.jacobian(z, hf.params)], 1).numpy()
    expected = j.T @ j @ v.numpy()
    product = hf.gauss_newton_product(x, v).numpy()
    assert np.linalg.norm(product - expected) <= 1e-6 * np.linalg.norm(expected)


def test_conjugate_gradient_solves_and_saves_iterates_geometrically():
    rng = np.random.default_rng(5)
    m = rng.normal(size=(40, 40))
    a = tf.constant(m @ m.T + 0.1 * np.eye(40))
    b = tf.constant(rng.normal(size=40))
    saved = conjugate_gradient(lambda v: tf.linalg.matvec(a, v), b, tf.zeros(40, tf.float64),
                               max_iterations=200, tolerance=1e-12)
    assert [i for i, _ in saved][:5] == [5, 7, 9, 11, 15]  # ⌈5·1.3ʲ⌉
    solution = np.linalg.solve(a.numpy(), b.numpy())
    assert np.allclose(saved[-1][1].numpy(), solution, rtol=1e-6, atol=1e-8)
    # Martens' relative-progress rule stops well before exactness at its tolerance.
    early = conjugate_gradient(lambda v: tf.linalg.matvec(a, v), b, tf.zeros(40, tf.float64),
                               max_iterations=200)
    assert early[-1][0] < saved[-1][0]


def test_a_diagonal_preconditioner_reaches_the_same_solution_sooner():
    """A = D B D with B well conditioned and D spanning four decades: CG alone crawls,
    CG preconditioned by diag(A) is CG on (nearly) B."""
    rng = np.random.default_rng(7)
    m = rng.normal(size=(60, 60))
    scale = np.diag(10.0 ** rng.uniform(-2, 2, 60))
    a_np = scale @ (m @ m.T / 60 + np.eye(60)) @ scale
    a, b = tf.constant(a_np), tf.constant(rng.normal(size=60))
    solution = np.linalg.solve(a_np, b.numpy())

    def error(preconditioner, iterations):
        x = conjugate_gradient(lambda v: tf.linalg.matvec(a, v), b, tf.zeros(60, tf.float64),
                               iterations, min_iterations=iterations, tolerance=0,
                               preconditioner=preconditioner)[-1][1].numpy()
        return np.linalg.norm(x - solution) / np.linalg.norm(solution)

    diagonal = tf.constant(np.diag(a_np))
    assert error(diagonal, 20) < 1e-3 < 0.1 < error(None, 20)
    assert error(diagonal, 200) < 1e-8  # the same minimiser
    # M = I is plain CG, iterate for iterate.
    for (i, x), (j, y) in zip(
            conjugate_gradient(lambda v: tf.linalg.matvec(a, v), b, tf.zeros(60, tf.float64),
                               12, preconditioner=tf.ones(60, tf.float64)),
            conjugate_gradient(lambda v: tf.linalg.matvec(a, v), b, tf.zeros(60, tf.float64),
                               12), strict=True):
        assert i == j and np.array_equal(x.numpy(), y.numpy())


def test_the_preconditioner_estimates_the_mean_squared_case_gradient_without_bias():
    """Per-case gradients with mean μ and spread σ per coordinate; over many draws of k
    batches of m cases, the estimate from the batch means averages μ² + σ², where the
    plain mean of the batch gradients' squares gives μ² + σ²/m."""
    rng = np.random.default_rng(8)
    mu, sigma = np.array([0.0, 1.0, 3.0, -2.0]), np.array([1.0, 0.5, 0.0, 4.0])
    k, m, draws = 4, 16, 3000
    estimates, naive = [], []
    for _ in range(draws):
        cases = mu + sigma * rng.normal(size=(k, m, 4))
        grads = [tf.constant(g) for g in cases.mean(1)]
        estimates.append(diagonal_preconditioner(grads, [m] * k, damping=0.0, exponent=1.0))
        naive.append(np.mean([g.numpy() ** 2 for g in grads], 0))
    truth = mu ** 2 + sigma ** 2
    np.testing.assert_allclose(np.mean(estimates, 0), truth, rtol=0.05)
    np.testing.assert_allclose(np.mean(naive, 0), mu ** 2 + sigma ** 2 / m, rtol=0.05)
    # M = (d + λ)^ξ.
    one = diagonal_preconditioner([tf.constant([3.0, 0.0])], [5], damping=1.0, exponent=0.75)
    np.testing.assert_allclose(one.numpy(), [10.0 ** 0.75, 1.0])


def softmax_classifier(**options):
    """(HessianFree, batch, model): a small tanh net on 256 points of 4 classes."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(256, 5)).astype("float32")
    labels = np.argmax(x @ rng.normal(size=(5, 4)), 1)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(16, activation="tanh"),
                              keras.layers.Dense(4)])
    batch = (tf.constant(x), tf.constant(labels))

    def loss(z, b):
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(b[1], z))

    hf = HessianFree(model.trainable_variables, lambda b: (model(b[0]), []), loss,
                     lambda z, b, u: softmax_curvature(z, u, tf.fill(tf.shape(z)[:1],
                                                                     1 / z.shape[0])),
                     damping=1.0, max_cg=50, **options)
    return hf, batch, model


def test_trial_points_leave_the_weights_exactly_as_they_were():
    """A huge trial step (θ + p − p in float32 would lose θ) and a non-finite loss."""
    hf, batch, model = softmax_classifier()
    before = [w.numpy().copy() for w in model.weights]
    size = sum(int(np.prod(w.shape)) for w in model.weights)
    assert hf._at(tf.fill([size], 1e9), [batch]) > 0
    assert hf._at(tf.fill([size], np.inf), [batch]) == np.inf  # rejected, not NaN
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))


def test_a_batch_without_a_finite_gradient_makes_no_step():
    hf, batch, model = softmax_classifier()
    hf.step([batch], batch)
    weights, previous = [w.numpy().copy() for w in model.weights], hf.previous.numpy()
    bad = (tf.fill(batch[0].shape, np.nan), batch[1])
    record = hf.step([bad], bad)
    assert record["rate"] == 0 and record["cg"] == 0
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(weights, model.weights))
    assert np.array_equal(previous, hf.previous.numpy())
    assert hf.step([batch], batch)["rate"] > 0  # and goes on from there


def test_the_gradient_noise_is_the_standard_error_of_the_batch_gradients():
    hf, (x, labels), model = softmax_classifier()
    batches = [(x[i::4], labels[i::4]) for i in range(4)]
    grads = np.stack([hf._gradient(b)[1].numpy().astype(np.float64) for b in batches])
    mean = grads.mean(0)
    expected = np.sqrt(((grads - mean) ** 2).sum() / (4 * 3)) / np.linalg.norm(mean)
    losses, grad, noise = hf.loss_and_gradient(batches)
    np.testing.assert_allclose(grad.numpy(), mean, rtol=1e-5, atol=1e-7)
    assert noise == pytest.approx(expected, rel=1e-5) and 0.05 < noise < 5
    assert hf.loss_and_gradient([batches[0]] * 3)[2] < 1e-6  # no spread (but rounding)
    assert np.isnan(hf.loss_and_gradient(batches[:1])[2])  # one batch: unknown
    assert hf.step(batches, batches[0])["gradient_noise"] == pytest.approx(expected, rel=1e-5)


def test_a_scaled_step_takes_that_share_of_the_step():
    hf, (x, labels), model = softmax_classifier()
    hf.line_search = False
    start = [w.numpy().copy() for w in model.weights]
    moves = {}
    for scale in (1.0, 0.3):
        for w, value in zip(model.weights, start):
            w.assign(value)
        hf.damping.assign(1.0)
        hf.previous.assign(tf.zeros_like(hf.previous))
        record = hf.step([(x, labels)], (x, labels), scale=scale)
        assert record["rate"] == scale
        moves[scale] = np.concatenate([(w.numpy() - a).ravel()
                                       for w, a in zip(model.weights, start)])
    np.testing.assert_allclose(moves[0.3], 0.3 * moves[1.0], rtol=1e-4, atol=1e-7)
    assert np.abs(moves[1.0]).max() > 1e-3


@pytest.mark.parametrize("precondition", [0.0, 0.75])
def test_hessian_free_fits_a_softmax_classifier_in_a_few_steps(precondition):
    hf, batch, _ = softmax_classifier(precondition=precondition)
    first = hf.loss_value([batch])
    records = [hf.step([batch], batch) for _ in range(10)]
    assert records[-1]["new_loss"] < 0.2 * first
    assert all(r["new_loss"] <= r["loss"] for r in records)  # the line search never climbs
    assert int(hf.iterations.numpy()) == 10
    assert hf.previous.numpy().any() and 0 < float(hf.damping.numpy()) != 1.0
