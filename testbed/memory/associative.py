"""Linear associative memories (Cabannes, Dohmatob, Bietti, ICLR 2024, arXiv 2310.02984), closed form.

Inputs x in 1..N with Zipf probabilities p(x) ∝ x^-alpha map to outputs f*(x) = x mod M. With random input
embeddings e_x ~ N(0, I/d) and output embeddings u_y uniform on the unit sphere, a memory stores

    W = sum_x q(x) u_{f*(x)} e_x^T,        prediction f_W(x) = argmax_y u_y^T W e_x,

and its error is the Zipf mass of wrongly recalled inputs, sum_x p(x) 1[f_W(x) != f*(x)] (a population error).
Scores never need W itself: u_y^T W e_x = sum_x' q(x') <u_y, u_f(x')> <e_x', e_x>, i.e. S = K diag(q) A_f with K the
Gram matrix of the input embeddings. Embeddings are nested across d (the first d coordinates of d_max-dimensional
ones, as in the public code), so K and the output Gram matrix grow by one slice per d: a whole error-vs-d curve
costs about as much as its largest d. Ties (e.g. q = 0 everywhere) count as wrong recalls.
"""

from __future__ import annotations

import numpy as np

from generators.core import ConfigError


def zipf(n: int, alpha: float) -> np.ndarray:
    """p(x) ∝ x^-alpha for x = 1..n."""
    p = np.arange(1, n + 1, dtype=np.float64) ** -alpha
    return p / p.sum()


def recall_correct(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, M) scores -> (N,) bool: the target's score is strictly the largest (ties are errors)."""
    own = np.take_along_axis(scores, targets[:, None], axis=1)[:, 0]
    others = scores.copy()
    np.put_along_axis(others, targets[:, None], -np.inf, axis=1)
    return own > others.max(axis=1)


def memory_weights(scheme: str, n: int, alpha: float, d: int, samples: int | None = None, rho: float = 1.0,
                   per: int = 8, seed: int = 0) -> np.ndarray:
    """q(x) of a storage scheme, from T = `samples` Zipf samples (None: infinite data, every token seen with its
    true frequency).

    fill       1 on every seen token            frequency  the (empirical) frequency p̂(x)
    power      p̂(x)^rho                         threshold  1 on the max(1, floor(d / per)) most frequent seen
                                                           tokens (at least one, as the published grid implies)
    """
    p = zipf(n, alpha)
    if samples is None:
        freq = p
    else:
        if samples < 1:
            raise ConfigError(f"the number of samples T must be positive, got {samples}")
        freq = np.random.default_rng(seed).multinomial(samples, p) / samples
    seen = freq > 0
    if scheme == "fill":
        return seen.astype(np.float64)
    if scheme == "frequency":
        return freq.copy()
    if scheme == "power":
        if 2 * alpha * rho <= 1:
            raise ConfigError(f"power scheme needs 2 alpha rho > 1 (else the error diverges), got {2 * alpha * rho}")
        return freq**rho
    if scheme == "threshold":
        keep = max(1, d // per)
        if keep > n:
            raise ConfigError(f"threshold keeps {keep} tokens but there are only N = {n}")
        order = np.argsort(-freq, kind="stable")[:keep]
        q = np.zeros(n)
        q[order[freq[order] > 0]] = 1.0
        return q
    raise ConfigError(f"unknown memory scheme {scheme!r}; valid: fill, frequency, power, threshold")


def _constant(q: np.ndarray):
    return lambda d: q


def error_vs_d(q, ds, n_out: int = 5, alpha: float = 2.0, trials: int = 1, seed: int = 0,
               embeddings: str = "gaussian") -> np.ndarray:
    """Errors of memories at each embedding dimension d, weighted by Zipf(alpha): (trials, len(ds)), or
    (trials, schemes, len(ds)) when `q` is a list.

    A q is a weight vector (N,) or a function d -> (N,) for schemes that depend on d (thresholding). Several q share
    the same random embeddings and Gram matrices, so a whole figure costs little more than one curve.
    `embeddings`: gaussian (the paper's), or orthogonal (rows of a random orthogonal matrix: exactly orthogonal at
    the largest d when it is >= N; smaller d see its truncation)."""
    many = isinstance(q, (list, tuple))
    q_fns = [f if callable(f) else _constant(np.asarray(f, dtype=np.float64)) for f in (q if many else [q])]
    n = len(q_fns[0](1))
    ds = sorted(int(d) for d in ds)
    if not ds or ds[0] < 1:
        raise ConfigError(f"embedding dimensions must be positive, got {ds}")
    if alpha <= 0:
        raise ConfigError(f"alpha must be positive, got {alpha}")
    if n < n_out:
        raise ConfigError(f"N ({n}) must be at least M ({n_out})")
    p = zipf(n, alpha)
    targets = np.arange(1, n + 1) % n_out
    one_hot = np.eye(n_out)[targets]  # (N, M)
    rng = np.random.default_rng(seed)
    errors = np.empty((trials, len(q_fns), len(ds)))
    if embeddings not in ("gaussian", "orthogonal"):
        raise ConfigError(f"unknown embeddings {embeddings!r}; valid: gaussian, orthogonal")
    for t in range(trials):
        e = rng.standard_normal((n, ds[-1]))
        if embeddings == "orthogonal":  # orthonormal columns (rows too when d >= N)
            e = np.linalg.qr(rng.standard_normal((max(n, ds[-1]), max(n, ds[-1]))))[0][:n, : ds[-1]]
        u = rng.standard_normal((n_out, ds[-1]))
        gram_e = np.zeros((n, n))
        gram_u = np.zeros((n_out, n_out))
        start = 0
        for j, d in enumerate(ds):  # grow the Gram matrices slice by slice (nested embeddings)
            gram_e += e[:, start:d] @ e[:, start:d].T
            gram_u += u[:, start:d] @ u[:, start:d].T
            start = d
            norms = np.sqrt(np.diag(gram_u))
            cos_u = gram_u / np.outer(norms, norms)  # <u_y, u_y'> of unit vectors
            answers = one_hot @ cos_u  # <u_y, u_f(x')>
            for i, q_of in enumerate(q_fns):
                scores = gram_e @ (q_of(d)[:, None] * answers)  # S = K diag(q) F A
                errors[t, i, j] = p[~recall_correct(scores, targets)].sum()
    return errors if many else errors[:, 0]
