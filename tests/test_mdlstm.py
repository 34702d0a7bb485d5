"""MDLSTM2D against a plain per-pixel reference written from the equations in docs/design.md."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from mdrnn.layers import MDLSTM2D
from mdrnn.layers.wavefront import forward_mode_jvp

DIRECTIONS = ("tl", "tr", "bl", "br")


def reference_mdlstm(x, kernel, recurrent, bias, peephole, directions, mask=None):
    """Per-pixel MDLSTM, one cell at a time, in plain TF eager ops (differentiable).

    x (B, H, W, C); kernel (D, C, 5n); recurrent (D, 2n, 5n); bias (D, 5n);
    peephole (D, 4, n) or None; mask (B, H, W) or None.
    """
    batch, height, width, _ = x.shape
    n = recurrent.shape[1] // 2
    zero = tf.zeros((batch, n), x.dtype)
    outputs = []
    for d, direction in enumerate(directions):
        # The predecessor along y is one row towards the starting corner, along x one column.
        step_y = 1 if direction[0] == "t" else -1
        step_x = 1 if direction[1] == "l" else -1
        rows = range(height) if step_y == 1 else range(height - 1, -1, -1)
        cols = range(width) if step_x == 1 else range(width - 1, -1, -1)
        p = peephole[d] if peephole is not None else tf.zeros((4, n), x.dtype)
        h, c = {}, {}
        for i in rows:
            for j in cols:
                h_y, c_y = h.get((i - step_y, j), zero), c.get((i - step_y, j), zero)
                h_x, c_x = h.get((i, j - step_x), zero), c.get((i, j - step_x), zero)
                z = (x[:, i, j] @ kernel[d] + tf.concat([h_y, h_x], -1) @ recurrent[d]
                     + bias[d])
                z_i, z_fy, z_fx, z_g, z_o = tf.split(z, 5, axis=-1)
                gate_i = tf.sigmoid(z_i + p[0] * (c_y + c_x))
                f_y = tf.sigmoid(z_fy + p[1] * c_y)
                f_x = tf.sigmoid(z_fx + p[2] * c_x)
                cell = gate_i * tf.tanh(z_g) + f_y * c_y + f_x * c_x
                o = tf.sigmoid(z_o + p[3] * cell)
                out = o * tf.tanh(cell)
                if mask is not None:
                    m = tf.cast(mask[:, i, j, None], x.dtype)
                    cell, out = cell * m, out * m
                h[i, j], c[i, j] = out, cell
        rows_out = [tf.stack([h[i, j] for j in range(width)], 1) for i in range(height)]
        outputs.append(tf.stack(rows_out, 1))
    return tf.concat(outputs, -1)


def random_layer(units, channels, directions=DIRECTIONS, peepholes=True, dtype="float32",
                 seed=0, **options):
    """A built layer with random weights everywhere (biases and peepholes too)."""
    layer = MDLSTM2D(units, directions=directions, peepholes=peepholes, dtype=dtype,
                     **options)
    layer.build((None, None, None, channels))
    rng = np.random.default_rng(seed)
    for w in layer.weights:
        w.assign(rng.uniform(-0.6, 0.6, w.shape))
    return layer


def weights_of(layer):
    peephole = layer.peephole if layer.peepholes else None
    return [tf.convert_to_tensor(w) if w is not None else None
            for w in (layer.kernel, layer.recurrent_kernel, layer.bias, peephole)]


def size_mask(sizes, height, width):
    """A (B, H, W) mask whose sample b is valid on its top-left sizes[b] = (h, w) region."""
    mask = np.zeros((len(sizes), height, width), bool)
    for b, (h, w) in enumerate(sizes):
        mask[b, :h, :w] = True
    return mask


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("peepholes", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_matches_per_pixel_reference(direction, peepholes, masked):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5, 2)).astype("float32")
    mask = size_mask([(4, 5), (2, 3), (3, 1)], 4, 5) if masked else None
    layer = random_layer(3, 2, directions=(direction,), peepholes=peepholes)
    got = layer(x, mask=mask).numpy()
    want = reference_mdlstm(tf.constant(x), *weights_of(layer), (direction,), mask).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    if masked:
        assert np.all(got[~mask] == 0)


def test_four_directions_concatenate_in_given_order():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 3, 6, 1)).astype("float32")
    order = ("br", "tl", "bl", "tr")
    layer = random_layer(2, 1, directions=order)
    got = layer(x).numpy()
    want = reference_mdlstm(tf.constant(x), *weights_of(layer), order).numpy()
    assert got.shape == (2, 3, 6, 8)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_padded_image_equals_cropped_image():
    rng = np.random.default_rng(3)
    layer = random_layer(4, 1)
    small = rng.normal(size=(1, 5, 7, 1)).astype("float32")
    padded = np.zeros((2, 9, 12, 1), "float32")
    padded[0, :5, :7] = small[0]
    padded[1] = rng.normal(size=(9, 12, 1))  # another sample in the batch, full size
    mask = size_mask([(5, 7), (9, 12)], 9, 12)
    alone = layer(small).numpy()
    batched = layer(padded, mask=mask).numpy()
    np.testing.assert_allclose(batched[0, :5, :7], alone[0], atol=1e-6)
    np.testing.assert_allclose(batched[1], layer(padded[1:]).numpy()[0], atol=1e-6)


def test_hand_checked_two_by_three():
    # n = 1, C = 1, input all ones, every input weight 1, no recurrent weights, zero
    # bias and peepholes: every gate is sigmoid(1) = s, g = tanh(1), and each cell is
    # c = s*tanh(1) + s*(c_y + c_x), worked out by hand from the starting corner:
    # 0.55677, 0.963801, 1.261365 / 0.963801, 1.96596, 2.916134; h = s * tanh(c).
    h_tl = np.array([[0.369606, 0.545346, 0.622453],
                     [0.545346, 0.702944, 0.726785]])
    expected = {"tl": h_tl, "tr": h_tl[:, ::-1], "bl": h_tl[::-1], "br": h_tl[::-1, ::-1]}
    layer = MDLSTM2D(1, kernel_initializer="ones", recurrent_initializer="zeros")
    out = layer(np.ones((1, 2, 3, 1), "float32")).numpy()[0]
    for d, direction in enumerate(DIRECTIONS):
        np.testing.assert_allclose(out[..., d], expected[direction], atol=1e-6)
    assert math.isclose(out[1, 2, 0], 0.726785, abs_tol=1e-6)


@pytest.mark.parametrize("flip_axis,pairs", [
    (2, [("tl", "tr"), ("bl", "br")]),
    (1, [("tl", "bl"), ("tr", "br")]),
])
def test_flipping_the_input_swaps_directions(flip_axis, pairs):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 4, 6, 2)).astype("float32")
    base = random_layer(3, 2, directions=("tl",))
    for a, b in pairs:
        layer_a = MDLSTM2D(3, directions=(a,))
        layer_b = MDLSTM2D(3, directions=(b,))
        for layer in (layer_a, layer_b):
            layer.build(x.shape)
            layer.set_weights(base.get_weights())
        flipped = np.flip(x, flip_axis).copy()
        np.testing.assert_allclose(np.flip(layer_b(flipped).numpy(), flip_axis),
                                   layer_a(x).numpy(), atol=1e-6)


def _loss_fn(layer, x, mask, probe):
    return lambda: tf.reduce_sum(layer(x, mask=mask) * probe)


def assert_gradients_match_reference(layer, rng):
    """float64 value and gradients (input and weights) of a probed sum, masked, equal the
    reference's autodiff."""
    x = tf.constant(rng.normal(size=(2, 3, 4, 2)))
    mask = size_mask([(3, 4), (2, 3)], 3, 4)
    probe = tf.constant(rng.normal(size=(2, 3, 4, 2 * len(layer.directions))))
    weights = weights_of(layer)
    with tf.GradientTape() as tape:
        tape.watch(x)
        fast = tf.reduce_sum(layer(x, mask=mask) * probe)
    fast_grads = tape.gradient(fast, [x, *layer.trainable_variables])
    with tf.GradientTape() as tape:
        tape.watch([x, *weights])
        ref = tf.reduce_sum(reference_mdlstm(x, *weights, layer.directions, mask) * probe)
    ref_grads = tape.gradient(ref, [x, *weights])
    np.testing.assert_allclose(fast.numpy(), ref.numpy(), rtol=1e-10)
    for got, want in zip(fast_grads, ref_grads, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_gradients_match_reference_autodiff(direction):
    layer = random_layer(2, 2, directions=(direction,), dtype="float64")
    assert_gradients_match_reference(layer, np.random.default_rng(5))


def test_stacked_directions_match_the_reference_forward_and_backward():
    layer = random_layer(2, 2, dtype="float64", stack_directions=True)
    assert_gradients_match_reference(layer, np.random.default_rng(8))
    assert MDLSTM2D.from_config(layer.get_config()).stack_directions


@pytest.mark.parametrize("stack", [False, True])
@pytest.mark.parametrize("jit", [None, False, True])
def test_jacobian_vector_products_match_the_reference_forward_mode(stack, jit):
    """J·v by the double-backward trick within `forward_mode_jvp` (the transpose of the
    hand-written backward is the layer's forward-mode scan) equals the reference's
    forward-mode autodiff, in float64, all directions, masked; eager, traced and
    compiled."""
    rng = np.random.default_rng(11)
    layer = random_layer(2, 2, dtype="float64", stack_directions=stack)
    x = tf.constant(rng.normal(size=(2, 3, 4, 2)))
    mask = size_mask([(3, 4), (2, 3)], 3, 4)
    weights = [v.value for v in layer.trainable_variables]
    tangents = [tf.constant(rng.normal(size=t.shape)) for t in [x, *weights]]

    def jvp(x):
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x, mask=mask)
        probe = tf.zeros_like(y)
        with tf.GradientTape() as outer, forward_mode_jvp():
            outer.watch(probe)
            pulled = tape.gradient(y, [x, *weights], output_gradients=probe)
            paired = tf.add_n([tf.reduce_sum(p * t)
                               for p, t in zip(pulled, tangents, strict=True)])
        return outer.gradient(paired, probe)

    got = jvp(x) if jit is None else tf.function(jvp, jit_compile=jit)(x)
    reference_weights = weights_of(layer)
    with tf.autodiff.ForwardAccumulator([x, *reference_weights], tangents) as accumulator:
        ref = reference_mdlstm(x, *reference_weights, layer.directions, mask)
    np.testing.assert_allclose(got.numpy(), accumulator.jvp(ref).numpy(), rtol=1e-8,
                               atol=1e-12)


def test_second_derivatives_match_the_reference_outside_forward_mode_jvp():
    """Outside `forward_mode_jvp`, autodiff differentiates the hand-written backward in
    everything: the derivative in the weights of the input gradient's squared norm (a
    gradient penalty) equals the reference's."""
    rng = np.random.default_rng(12)
    layer = random_layer(2, 2, dtype="float64")
    x = tf.constant(rng.normal(size=(2, 3, 4, 2)))
    mask = size_mask([(3, 4), (2, 3)], 3, 4)
    probe = tf.constant(rng.normal(size=(2, 3, 4, 8)))

    def penalty_gradient(forward, weights):
        with tf.GradientTape() as outer:
            outer.watch(weights)
            with tf.GradientTape() as inner:
                inner.watch(x)
                y = tf.reduce_sum(tf.sin(forward()) * probe)
            penalty = tf.reduce_sum(inner.gradient(y, x) ** 2)
        return outer.gradient(penalty, weights)

    got = penalty_gradient(lambda: layer(x, mask=mask),
                           [v.value for v in layer.trainable_variables])
    weights = weights_of(layer)
    want = penalty_gradient(lambda: reference_mdlstm(x, *weights, layer.directions, mask),
                            weights)
    for g, w in zip(got, want, strict=True):
        assert np.abs(w.numpy()).max() > 1e-3
        np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-8, atol=1e-12)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    mask = tf.constant(size_mask([(3, 3), (2, 3)], 3, 3))
    # One unit keeps the number of weights (each costs two evaluations) small; the
    # reference comparison above covers wider layers.
    layer = random_layer(1, 1, dtype="float64")
    probe = tf.constant(rng.normal(size=(2, 3, 3, 4)))
    x0 = rng.normal(size=(2, 3, 3, 1))

    def of_input(x):
        return tf.reduce_sum(layer(x, mask=mask) * probe)

    theoretical, numerical = tf.test.compute_gradient(of_input, [tf.constant(x0)],
                                                      delta=1e-6)
    np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-6)
    # Weights: the tape's gradient against central differences of the loss.
    x = tf.constant(x0)
    with tf.GradientTape() as tape:
        loss = of_input(x)
    grads = tape.gradient(loss, layer.trainable_variables)
    for var, grad in zip(layer.trainable_variables, grads, strict=True):
        def of_weight(w, var=var):
            original = tf.identity(var)
            var.assign(w)
            value = of_input(x)
            var.assign(original)
            return value
        _, numerical = tf.test.compute_gradient(of_weight, [tf.identity(var)], delta=1e-6)
        np.testing.assert_allclose(grad.numpy().reshape(1, -1), numerical[0], atol=1e-6,
                                   err_msg=var.name)


def test_every_weight_gets_a_finite_nonzero_gradient():
    x = np.random.default_rng(7).normal(size=(2, 5, 6, 3)).astype("float32")
    layer = MDLSTM2D(4)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(loss, layer.trainable_variables)
    assert len(grads) == 4
    for var, grad in zip(layer.trainable_variables, grads, strict=True):
        assert np.all(np.isfinite(grad)), var.name
        # Every direction's slice of every weight must learn.
        per_direction = np.abs(grad.numpy()).reshape(4, -1).sum(axis=1)
        assert np.all(per_direction > 0), var.name


def test_xla_and_graph_match_eager_forward_and_backward():
    rng = np.random.default_rng(8)
    layer = random_layer(3, 2)
    x = tf.constant(rng.normal(size=(2, 5, 7, 2)).astype("float32"))
    mask = tf.constant(size_mask([(5, 7), (3, 4)], 5, 7))

    def forward_backward(x, mask):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.sin(layer(x, mask=mask)))
        return loss, tape.gradient(loss, layer.trainable_variables)

    eager = forward_backward(x, mask)
    for jit in (False, True):
        compiled = tf.function(forward_backward, jit_compile=jit)(x, mask)
        np.testing.assert_allclose(compiled[0], eager[0], rtol=1e-5)
        for got, want in zip(compiled[1], eager[1], strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_sizes_may_vary_between_calls_in_one_traced_function():
    layer = random_layer(2, 1)
    fn = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 1))])
    for shape in [(1, 3, 4, 1), (2, 6, 2, 1), (1, 1, 1, 1)]:
        x = np.random.default_rng(9).normal(size=shape).astype("float32")
        np.testing.assert_allclose(fn(x), layer(x), atol=1e-6)


@pytest.mark.parametrize("kwargs,needle", [
    ({"units": 0}, "units"),
    ({"units": 2.5}, "2.5"),
    ({"units": 2, "directions": ("tl", "up")}, "'up'"),
    ({"units": 2, "directions": ("tl", "tl")}, "duplicated"),
    ({"units": 2, "directions": ()}, "directions"),
])
def test_bad_arguments_raise_value_error_quoting_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        MDLSTM2D(**kwargs)


def test_wrong_input_rank_raises():
    with pytest.raises(ValueError, match=r"rank 4.*\(2, 5, 3\)"):
        MDLSTM2D(2)(np.zeros((2, 5, 3), "float32"))


def test_config_round_trip_and_output_shape():
    layer = MDLSTM2D(5, directions=("tr", "bl"), peepholes=False,
                     kernel_initializer="he_normal", name="md")
    clone = MDLSTM2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.compute_output_shape((None, None, 30, 3)) == (None, None, 30, 10)
    clone.build((None, None, None, 3))
    assert [w.shape for w in clone.weights] == [(2, 3, 25), (2, 10, 25), (2, 25)]


def test_weight_count_per_direction():
    # 5nC + 10n^2 + 5n + 4n per direction.
    layer = MDLSTM2D(10, directions=("tl", "tr", "bl", "br"))
    layer.build((None, None, None, 6))
    assert layer.count_params() == 4 * (5 * 10 * 6 + 10 * 100 + 5 * 10 + 4 * 10)


def test_sequential_and_functional_models_save_and_load(tmp_path):
    x = np.random.default_rng(10).normal(size=(2, 6, 9, 1)).astype("float32")
    sequential = keras.Sequential([keras.Input((None, None, 1)), MDLSTM2D(3),
                                   keras.layers.Dense(2)])
    inputs = keras.Input((None, None, 1))
    functional = keras.Model(inputs, MDLSTM2D(2, directions=("br",))(inputs))
    for model in (sequential, functional):
        path = tmp_path / f"{model.name}.keras"
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True)
        np.testing.assert_allclose(loaded(x), model(x), atol=0)
        assert any(isinstance(layer, MDLSTM2D) for layer in loaded.layers)


def test_mixed_precision_runs():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = MDLSTM2D(4)
        x = np.random.default_rng(11).normal(size=(2, 4, 5, 1)).astype("float32")
        with tf.GradientTape() as tape:
            y = layer(x)
            loss = tf.reduce_sum(tf.cast(y, "float32"))
        grads = tape.gradient(loss, layer.trainable_variables)
        assert y.dtype == tf.float16
        assert all(g.dtype == tf.float32 and np.all(np.isfinite(g)) for g in grads)
    finally:
        keras.config.set_dtype_policy(previous)
