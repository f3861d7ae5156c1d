"""Gaussian filters and smooth random fields, numpy only.

All arrays are indexed (row, col). Object windows are blurred by matrix products with Gaussian
matrices (zero outside the window): the full matrix for short rows, a shared block matrix for
long ones, so the cost is a few BLAS calls per window whatever the kernel size.
:func:`gaussian_blur` blurs a whole image with reflected borders (the original, simple filter).
"""

from __future__ import annotations

import functools

import numpy as np


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2D float image with reflected borders.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    sigma : float
        Standard deviation in pixels; 0 returns a copy.

    Returns
    -------
    ndarray, shape (H, W), float64
    """
    if sigma <= 0:
        return image.astype(np.float64, copy=True)
    kernel = _gaussian_kernel(sigma)
    radius = len(kernel) // 2
    out = np.asarray(image, dtype=np.float64)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        for i, weight in enumerate(kernel):
            index = [slice(None), slice(None)]
            index[axis] = slice(i, i + out.shape[axis])
            acc += weight * padded[tuple(index)]
        out = acc
    return out


_BLOCK = 32  # output block length of the banded blur
_ONE_THREAD_MNK = 1 << 18  # OpenBLAS runs a gemm on one thread up to m * n * k = 262144


def _kernel(sigma: float, radius: int) -> np.ndarray:
    """Unit-sum Gaussian of length ``2 radius + 1``, float32, tails below 1e-9 set to 0."""
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    kernel[kernel < 1e-9] = 0.0  # tiny tails would be float32 denormals, which are very slow
    return kernel.astype(np.float32)


def gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """Matrix that blurs a length-``n`` signal with zero outside it.

    Parameters
    ----------
    n : int
        Signal length.
    sigma : float
        Standard deviation in pixels; below 0.05 the identity is returned.

    Returns
    -------
    ndarray, shape (n, n), float32
        ``M @ x`` is ``x`` convolved with a unit-sum Gaussian.
    """
    if sigma < 0.05:
        return np.eye(n, dtype=np.float32)
    kernel = _kernel(sigma, n - 1)
    # M[i, j] = kernel[n - 1 + j - i] (the kernel is symmetric): a strided view, then a copy
    step = kernel.itemsize
    view = np.lib.stride_tricks.as_strided(kernel[n - 1 :], shape=(n, n), strides=(-step, step))
    return view.copy()


@functools.lru_cache(maxsize=512)
def _full_operator(n: int, sigma: float) -> np.ndarray:
    """``gaussian_matrix(n, sigma).T``, read-only (right-multiplying rows blurs them)."""
    matrix = np.ascontiguousarray(gaussian_matrix(n, sigma).T)
    matrix.flags.writeable = False
    return matrix


@functools.lru_cache(maxsize=128)
def _block_operator(sigma: float) -> np.ndarray:
    """(L, B) matrix blurring a block of L = B + 2 r inputs into its B central outputs."""
    radius = max(1, int(np.ceil(4.0 * sigma)))
    kernel = _kernel(sigma, radius)
    length = _BLOCK + 2 * radius
    operator = np.zeros((length, _BLOCK), dtype=np.float32)
    for b in range(_BLOCK):
        operator[b : b + 2 * radius + 1, b] = kernel
    operator.flags.writeable = False
    return operator


def _matmul_rows(x: np.ndarray, operator: np.ndarray) -> np.ndarray:
    """``x @ operator`` in row chunks small enough for single-threaded BLAS.

    Threaded BLAS on tiny matrices stalls badly when other processes load the cores, and the
    windows here are small, so every product is kept on one thread.
    """
    k, n = operator.shape
    step = max(1, _ONE_THREAD_MNK // (k * n))
    if x.shape[0] <= step:
        return x @ operator
    out = np.empty((x.shape[0], n), dtype=np.float32)
    for start in range(0, x.shape[0], step):
        out[start : start + step] = x[start : start + step] @ operator
    return out


def _blur_rows(x: np.ndarray, sigma: float) -> np.ndarray:
    """Blur each row of a (R, n) float32 array, zero outside it.

    Short rows use the full (n, n) matrix; long rows are cut into blocks of 32 outputs, each
    computed from its 32 + 2 r inputs with one shared (L, 32) matrix.
    """
    rows, n = x.shape
    radius = max(1, int(np.ceil(4.0 * sigma)))
    if n <= _BLOCK + 2 * radius:
        return _matmul_rows(x, _full_operator(n, sigma))
    operator = _block_operator(sigma)
    length = operator.shape[0]
    n_blocks = -(-n // _BLOCK)
    padded = np.zeros((rows, n_blocks * _BLOCK + 2 * radius), dtype=np.float32)
    padded[:, radius : radius + n] = x
    row_step, col_step = padded.strides
    blocks = np.lib.stride_tricks.as_strided(
        padded, shape=(rows, n_blocks, length), strides=(row_step, _BLOCK * col_step, col_step)
    ).reshape(rows * n_blocks, length)
    out = _matmul_rows(blocks, operator).reshape(rows, n_blocks * _BLOCK)
    return out[:, :n]


def blur_window(stack: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of one or more same-sized windows, zero outside them.

    Parameters
    ----------
    stack : ndarray, shape (..., h, w)
        Windows to blur; the leading axes are a batch.
    sigma : float
        Standard deviation in pixels (rounded to 0.01 so operators can be reused); below 0.05
        the windows are returned unchanged.

    Returns
    -------
    ndarray, shape (..., h, w), float32
    """
    stack = np.asarray(stack, dtype=np.float32)
    sigma = round(float(sigma), 2)
    if sigma < 0.05:
        return stack.copy()
    shape = stack.shape
    h, w = shape[-2:]
    along_cols = _blur_rows(stack.reshape(-1, w), sigma).reshape(shape)
    transposed = np.ascontiguousarray(along_cols.swapaxes(-1, -2)).reshape(-1, h)
    along_rows = _blur_rows(transposed, sigma).reshape(*shape[:-2], w, h)
    return np.ascontiguousarray(along_rows.swapaxes(-1, -2))


@functools.lru_cache(maxsize=128)
def _noise_gain(sigma: float) -> float:
    """Standard deviation of unit white noise after :func:`blur_window` (away from edges)."""
    kernel = _kernel(sigma, max(1, int(np.ceil(4.0 * sigma))))
    return float((kernel.astype(np.float64) ** 2).sum())


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-correlated noise with zero mean and unit standard deviation (in expectation).

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (int, int)
        (rows, cols).
    sigma : float
        Correlation length (Gaussian sigma) in pixels, rounded to 0.01.

    Returns
    -------
    ndarray, shape ``shape``, float32
        The variance is lower within about 3 sigma of the edges (zero outside).
    """
    sigma = round(float(sigma), 2)
    field = blur_window(rng.standard_normal(shape, dtype=np.float32), sigma)
    field *= np.float32(1.0 / _noise_gain(sigma)) if sigma >= 0.05 else np.float32(1.0)
    return field


def _interpolation_matrix(n: int, step: float, nodes: int) -> np.ndarray:
    """(n, nodes) Gaussian weights (sigma = 1 node) from ``n`` pixels to grid nodes ``step``
    pixels apart, the first node 2 steps before pixel 0; rows sum to 1."""
    position = np.arange(n, dtype=np.float64) / step + 2.0
    weights = np.exp(-0.5 * (position[:, None] - np.arange(nodes)[None, :]) ** 2)
    weights[weights < 1e-6] = 0.0
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def blob_field(rng: np.random.Generator, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Smooth random field with blotches about ``scale`` pixels across.

    White noise on a coarse grid (nodes ``scale / 2`` apart) is interpolated with Gaussian
    weights: two small matrix products, cheap for any image size.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : (int, int)
        (rows, cols).
    scale : float
        Typical blotch size in pixels (>= 2).

    Returns
    -------
    ndarray, shape ``shape``, float32
        Zero mean and unit standard deviation over the field.
    """
    step = max(1.0, scale / 2.0)
    nodes_r = int(np.ceil(shape[0] / step)) + 5
    nodes_c = int(np.ceil(shape[1] / step)) + 5
    grid = rng.standard_normal((nodes_r, nodes_c), dtype=np.float32)
    rows = _interpolation_matrix(shape[0], step, nodes_r)
    cols = _interpolation_matrix(shape[1], step, nodes_c)
    field = _matmul_rows(rows, _matmul_rows(grid, np.ascontiguousarray(cols.T)))
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field
