"""The MDLSTM recurrence by wavefront: top-left scans over anti-diagonals, forward and back.

Every cell on the anti-diagonal i + j = k depends only on cells of diagonal k - 1,
so the top-left scan of an H x W image takes H + W - 1 sequential steps, each one
matmul over the whole batch. The image is "skewed" so that diagonal k becomes slice
k of a (K, B, H, F) tensor, K = H + W - 1: row i of the diagonal holds cell
(i, k - i). In that layout the predecessor along x of (i, k - i) is row i of the
previous diagonal and the predecessor along y is row i - 1, a shift by one row.
Other directions are top-left scans of flipped images. `MDLSTM2D` calls the loop
once per direction (D = 1); with ``stack_directions`` it advances all D of them
side by side, as a leading axis with a batched matmul. The cell's equations are
`mdrnn.layers.cell`'s, here applied to a whole diagonal at a time.

The backward pass is written by hand (`tf.custom_gradient`): it walks the diagonals
in reverse and leaves the weight gradients to single matmuls after the loop, which
is about twice as fast as autodiff through the loop. That backward is linear in the
incoming gradient, and its derivative there is the layer's forward mode: one scan
along the diagonals carrying the changes of h and c, which gives J·v for the
double-backward trick (Gauss-Newton products) at about the cost of a forward pass,
where autodiff through the backward loop records and reverses it. Backward passes
built within `forward_mode_jvp()` take that scan as their derivative (a
`tf.custom_gradient` of their own) and their derivative in the inputs and weights
themselves as zero: enough for Gauss-Newton products, not for exact second
derivatives (Hessian-vector products, gradient penalties), which autodiff gives
outside it.
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

from mdrnn.layers.cell import cell_backward, cell_forward, cell_tangent

_jvp = threading.local()


@contextlib.contextmanager
def forward_mode_jvp():
    """MDLSTM backward passes built within take the layer's forward mode as their
    derivative in the incoming gradient (see the module docstring): J·v by the
    double-backward trick at about the cost of a forward pass, their derivative in the
    inputs and weights taken as zero. Outside (the default), autodiff differentiates
    them in everything, exactly."""
    previous = getattr(_jvp, "forward_mode", False)
    _jvp.forward_mode = True
    try:
        yield
    finally:
        _jvp.forward_mode = previous


def skew(x: tf.Tensor) -> tf.Tensor:
    """Lay the anti-diagonals of an image out as time steps.

    (B, H, W, F) -> (K, B, H, F), K = H + W - 1, with out[k, b, i] = x[b, i, k - i]
    and zeros where k - i falls outside [0, W).
    """
    shape = tf.shape(x)
    b, h, w, f = shape[0], shape[1], shape[2], shape[3]
    # Pad each row with H zeros and re-read the flat buffer with rows one shorter:
    # row i then starts i elements early, which shifts it right by i.
    x = tf.pad(x, [[0, 0], [0, 0], [0, h], [0, 0]])  # (B, H, W+H, F)
    x = tf.reshape(x, [b, h * (w + h), f])[:, : h * (w + h - 1)]
    x = tf.reshape(x, [b, h, w + h - 1, f])  # (B, H, K, F)
    return tf.transpose(x, [2, 0, 1, 3])  # (K, B, H, F)


def unskew(y: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """Invert `skew`: (K, B, H, F) -> (B, H, W, F) with out[b, i, j] = y[i + j, b, i]."""
    shape = tf.shape(y)
    k, b, h, f = shape[0], shape[1], shape[2], shape[3]
    y = tf.transpose(y, [1, 2, 0, 3])  # (B, H, K, F)
    # Rows one longer than stored: row i then starts i elements late, a shift left by i.
    y = tf.pad(tf.reshape(y, [b, h * k, f]), [[0, 0], [0, h], [0, 0]])
    y = tf.reshape(y, [b, h, k + 1, f])
    return y[:, :, :width]


def _shift_down(x: tf.Tensor) -> tf.Tensor:
    """Row i takes row i - 1 (zero for row 0): the predecessor along y. (..., H, F)."""
    pad = [[0, 0]] * (x.shape.rank - 2) + [[1, 0], [0, 0]]
    return tf.pad(x[..., :-1, :], pad)


def _shift_up(x: tf.Tensor) -> tf.Tensor:
    """The transpose of `_shift_down`: row i takes row i + 1 (zero for the last)."""
    pad = [[0, 0]] * (x.shape.rank - 2) + [[0, 1], [0, 0]]
    return tf.pad(x[..., 1:, :], pad)


def _sum_cells(x: tf.Tensor) -> tf.Tensor:
    """(K, D, B, H, F) -> (D, F): sum over all cells of each direction."""
    return tf.reduce_sum(x, axis=[0, 2, 3])


@tf.custom_gradient
def scan_diagonals(xs: tf.Tensor, mask: tf.Tensor, kernel: tf.Tensor, recurrent: tf.Tensor,
                   bias: tf.Tensor, peephole: tf.Tensor):
    """Run D top-left MDLSTM scans over skewed inputs, side by side.

    The input projection happens inside the loop, in the same matmul as the
    recurrent one: it avoids materialising a (K, D, B, H, 5n) tensor and its gradient.

    Args:
        xs: (K, D, B, H, C) inputs, skewed; D scans (one per direction).
        mask: (K, D, B, H, 1) 1 where a cell is valid, 0 outside the image or masked.
        kernel: (D, C, 5n) input weights; gate blocks [i, f_y, f_x, g, o].
        recurrent: (D, 2n, 5n); rows [:n] multiply h_y, rows [n:] multiply h_x.
        bias: (D, 5n).
        peephole: (D, 4, n) rows [p_i, p_fy, p_fx, p_o].

    Returns:
        (K, D, B, H, n) hidden states, zero at invalid cells.
    """
    n = peephole.shape[-1]  # static, so sliced states keep their shape in the loops
    steps = tf.shape(xs)[0]
    dtype = xs.dtype
    weights = tf.concat([kernel, recurrent], axis=1)  # (D, C + 2n, 5n)
    bias = bias[:, None, None, :]  # (D, 1, 1, 5n)
    peepholes = tuple(p[:, None, None, :] for p in tf.unstack(peephole, axis=1))
    state_shape = tf.concat([tf.shape(xs)[1:4], [n]], 0)
    zero_state = tf.zeros(state_shape, dtype)  # (D, B, H, n)

    def step(k, h_prev, c_prev, h_acc, c_acc, g_acc):
        inputs = tf.concat([xs[k], _shift_down(h_prev), h_prev], axis=-1)  # (D, B, H, C+2n)
        z = tf.einsum("dbhi,dim->dbhm", inputs, weights) + bias  # (D, B, H, 5n)
        h, c, gates = cell_forward(z, _shift_down(c_prev), c_prev, peepholes, mask[k])
        return (k + 1, h, c, h_acc.write(k, h), c_acc.write(k, c), g_acc.write(k, gates))

    def accumulator(width):
        return tf.TensorArray(dtype, size=steps,
                              element_shape=[*zero_state.shape[:3], width])

    _, _, _, h_acc, c_acc, g_acc = tf.while_loop(
        lambda k, *_: k < steps,
        step,
        (tf.constant(0), zero_state, zero_state, accumulator(n), accumulator(n),
         accumulator(5 * n)),
        maximum_iterations=steps,
    )
    hs, cs, gates = h_acc.stack(), c_acc.stack(), g_acc.stack()

    def backward(dhs):
        # States entering each diagonal: the previous diagonal's (zero before the first).
        h_in = tf.concat([zero_state[None], hs[:-1]], axis=0)  # (K, D, B, H, n)
        c_in = tf.concat([zero_state[None], cs[:-1]], axis=0)
        recurrent_t = tf.transpose(recurrent, [0, 2, 1])  # (D, 5n, 2n)

        def back(k, dh_next, dc_next, dz_acc):
            dz, dc_y, dc_x = cell_backward(dhs[k] + dh_next, dc_next, gates[k], cs[k],
                                           _shift_down(c_in[k]), c_in[k], peepholes, mask[k])
            dh_yx = tf.einsum("dbhm,dmn->dbhn", dz, recurrent_t)  # (D, B, H, 2n)
            dh_prev = _shift_up(dh_yx[..., :n]) + dh_yx[..., n:]
            dc_prev = _shift_up(dc_y) + dc_x
            return k - 1, dh_prev, dc_prev, dz_acc.write(k, dz)

        _, _, _, dz_acc = tf.while_loop(
            lambda k, *_: k >= 0,
            back,
            (steps - 1, zero_state, zero_state, accumulator(5 * n)),
            maximum_iterations=steps,
        )
        dz = dz_acc.stack()  # (K, D, B, H, 5n)
        # Weight gradients as single reductions over all cells, outside the loop:
        # fold K, B and H together, keeping the direction axis D.
        inputs = tf.concat([xs, _shift_down(h_in), h_in], axis=-1)  # (K, D, B, H, C+2n)
        d_weights = tf.einsum("kdbhi,kdbhm->dim", inputs, dz)
        d_kernel, d_recurrent = tf.split(d_weights, [tf.shape(kernel)[1], 2 * n], axis=1)
        c_y, c_x = _shift_down(c_in), c_in
        dz_i, dz_fy, dz_fx, _, dz_o = tf.split(dz, 5, axis=-1)
        d_peephole = tf.stack([
            _sum_cells(dz_i * (c_y + c_x)),
            _sum_cells(dz_fy * c_y),
            _sum_cells(dz_fx * c_x),
            _sum_cells(dz_o * cs),
        ], axis=1)  # (D, 4, n)
        d_xs = tf.einsum("kdbhm,dcm->kdbhc", dz, kernel)
        d_inputs = (d_xs, tf.zeros_like(mask), d_kernel, d_recurrent, _sum_cells(dz),
                    d_peephole)

        def forward_mode(dxs, dkernel, drecurrent, dbias, dpeephole):
            """The change of hs for changes of the inputs and weights (J·v), by one scan."""
            # What does not travel along the diagonals is one matmul outside the loop.
            dweights = tf.concat([dkernel, drecurrent], axis=1)
            dz_fixed = (tf.einsum("kdbhi,dim->kdbhm", inputs, dweights)
                        + tf.einsum("kdbhc,dcm->kdbhm", dxs, kernel) + dbias[:, None, None, :])
            dpeepholes = tuple(p[:, None, None, :] for p in tf.unstack(dpeephole, axis=1))

            def step(k, dh_prev, dc_prev, dh_acc):
                dh_yx = tf.concat([_shift_down(dh_prev), dh_prev], axis=-1)
                dz = dz_fixed[k] + tf.einsum("dbhi,dim->dbhm", dh_yx, recurrent)
                dh, dc = cell_tangent(dz, _shift_down(dc_prev), dc_prev, dpeepholes, gates[k],
                                      cs[k], _shift_down(c_in[k]), c_in[k], peepholes, mask[k])
                return k + 1, dh, dc, dh_acc.write(k, dh)

            _, _, _, dh_acc = tf.while_loop(
                lambda k, *_: k < steps,
                step,
                (tf.constant(0), zero_state, zero_state, accumulator(n)),
                maximum_iterations=steps,
            )
            return dh_acc.stack()

        def transpose(*changes):
            # This backward is linear in dhs, so its transpose is the forward mode.
            changes = [tf.zeros_like(d) if c is None else c
                       for c, d in zip(changes, d_inputs, strict=True)]
            return forward_mode(changes[0], *changes[2:])

        return d_inputs, transpose

    linear_backward = tf.custom_gradient(backward)

    def grad(dhs):
        in_context = getattr(_jvp, "forward_mode", False)
        return linear_backward(dhs) if in_context else backward(dhs)[0]

    return hs, grad
