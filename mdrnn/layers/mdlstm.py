"""MDLSTM2D: two-dimensional, multidirectional LSTM (Graves, RNNLIB)."""

from __future__ import annotations

import keras
import tensorflow as tf

from mdrnn.layers.wavefront import scan_diagonals, skew, unskew

DIRECTIONS = ("tl", "tr", "bl", "br")
# Axes to reverse so that a scan from the named corner becomes a top-left scan.
_FLIPS = {"tl": [], "tr": [2], "bl": [1], "br": [1, 2]}


def _stacked(initializer, count: int):
    """An initializer that fills each of `count` directions on its own (proper fans)."""
    initializer = keras.initializers.get(initializer)

    def init(shape, dtype=None):
        return keras.ops.stack([initializer(shape[1:], dtype=dtype) for _ in range(count)])

    return init


@keras.saving.register_keras_serializable(package="mdrnn")
class MDLSTM2D(keras.layers.Layer):
    """Two-dimensional LSTM that scans an image from one or more corners.

    Each direction is an LSTM whose cell at (i, j) receives the states (h_y, c_y)
    and (h_x, c_x) of its two predecessors, along y and along x, with one forget
    gate for each (Graves' RNNLIB; docs/design.md, code in `mdrnn.layers.cell`):

        z   = x @ kernel + [h_y, h_x] @ recurrent_kernel + bias   # [i, f_y, f_x, g, o]
        i   = sigmoid(z_i  + p_i  * (c_y + c_x))
        f_y = sigmoid(z_fy + p_fy * c_y)
        f_x = sigmoid(z_fx + p_fx * c_x)
        c   = i * tanh(z_g) + f_y * c_y + f_x * c_x
        o   = sigmoid(z_o + p_o * c)
        h   = o * tanh(c)

    It is computed by wavefront (`mdrnn.layers.wavefront`): H + W - 1 sequential
    steps, each one matmul over a whole anti-diagonal of the batch.

    Args:
        units: size n of the hidden state of each direction.
        directions: scan directions, each named by its starting corner: "tl"
            (top-left), "tr", "bl", "br". Outputs are concatenated in this order.
        peepholes: whether the gates see the cell states (RNNLIB's default).
        kernel_initializer: for the input weights `kernel (D, C, 5n)`.
        recurrent_initializer: for `recurrent_kernel (D, 2n, 5n)`.
        bias_initializer: for `bias (D, 5n)`; gate blocks are [i, f_y, f_x, g, o].
        peephole_initializer: for `peephole (D, 4, n)`, rows [p_i, p_fy, p_fx, p_o].
        stack_directions: advance all directions in one loop, as a batched matmul over
            a direction axis, instead of one loop each. The results are the same; on a
            CPU separate loops were as fast or faster (benchmarks/RESULTS.md), on a GPU
            one loop of larger steps may pay.

    Call arguments:
        inputs: (B, H, W, C) tensor.
        mask: optional boolean (B, H, W); masked cells output zeros and pass zero
            state on, so each valid region computes what it would if cropped.

    Input shape:
        (batch, height, width, channels); height and width may vary between calls.

    Output shape:
        (batch, height, width, len(directions) * units).

    Example:
        >>> layer = MDLSTM2D(8, directions=("tl", "br"))
        >>> layer(np.zeros((2, 16, 40, 1), "float32")).shape
        TensorShape([2, 16, 40, 16])
    """

    def __init__(self, units: int, directions=DIRECTIONS, peepholes: bool = True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", peephole_initializer="zeros",
                 stack_directions: bool = False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise ValueError(f"MDLSTM2D: units must be a positive integer, got {units!r}")
        if isinstance(directions, str):
            directions = (directions,)
        directions = tuple(directions)
        unknown = [d for d in directions if d not in DIRECTIONS]
        if unknown or not directions:
            raise ValueError(f"MDLSTM2D: directions must be among {DIRECTIONS}, "
                             f"got {directions!r}")
        if len(set(directions)) != len(directions):
            raise ValueError(f"MDLSTM2D: duplicated direction in {directions!r}")
        self.units = units
        self.directions = directions
        self.peepholes = bool(peepholes)
        self.stack_directions = bool(stack_directions)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError("MDLSTM2D expects input of rank 4 (batch, height, width, "
                             f"channels), got shape {tuple(input_shape)}")
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("MDLSTM2D needs a known channel count, got shape "
                             f"{tuple(input_shape)}")
        d, n = len(self.directions), self.units
        self.kernel = self.add_weight(
            name="kernel", shape=(d, channels, 5 * n),
            initializer=_stacked(self.kernel_initializer, d))
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(d, 2 * n, 5 * n),
            initializer=_stacked(self.recurrent_initializer, d))
        self.bias = self.add_weight(name="bias", shape=(d, 5 * n),
                                    initializer=self.bias_initializer)
        self.peephole = None
        if self.peepholes:
            self.peephole = self.add_weight(
                name="peephole", shape=(d, 4, n), initializer=self.peephole_initializer)

    def call(self, inputs, mask=None):
        dtype = self.compute_dtype
        x = tf.cast(inputs, dtype)
        width = tf.shape(x)[2]
        valid = tf.ones(tf.shape(x)[:3], dtype) if mask is None else tf.cast(mask, dtype)
        kernel = tf.cast(self.kernel, dtype)
        recurrent = tf.cast(self.recurrent_kernel, dtype)
        bias = tf.cast(self.bias, dtype)
        peephole = (tf.cast(self.peephole, dtype) if self.peepholes
                    else tf.zeros((len(self.directions), 4, self.units), dtype))
        # Each direction is a top-left scan of a flipped image. One loop per direction
        # ran as fast as all directions stacked in one loop on CPU, and up to 15%
        # faster for wide layers (benchmarks/RESULTS.md).
        flips = [_FLIPS[direction] for direction in self.directions]
        xs = [skew(tf.reverse(x, axes) if axes else x) for axes in flips]
        ms = [skew((tf.reverse(valid, axes) if axes else valid)[..., None]) for axes in flips]
        if self.stack_directions:
            stacked = scan_diagonals(tf.stack(xs, axis=1), tf.stack(ms, axis=1), kernel,
                                     recurrent, bias, peephole)  # (K, D, B, H, n)
            hs = [stacked[:, d] for d in range(len(flips))]
        else:
            hs = [scan_diagonals(x_d[:, None], m_d[:, None], kernel[d:d + 1],
                                 recurrent[d:d + 1], bias[d:d + 1], peephole[d:d + 1])[:, 0]
                  for d, (x_d, m_d) in enumerate(zip(xs, ms))]
        outputs = []
        for h, axes in zip(hs, flips):
            h = unskew(h, width)  # (K, B, H, n) -> (B, H, W, n)
            outputs.append(tf.reverse(h, axes) if axes else h)
        return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], len(self.directions) * self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "directions": list(self.directions),
            "peepholes": self.peepholes,
            "stack_directions": self.stack_directions,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
        }
