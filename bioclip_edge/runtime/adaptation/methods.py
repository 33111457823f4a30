"""The maths of adapting label rows to a site from a few labelled examples' frozen image embeddings.

Two methods, both ending in unit rows that the bundle's logit scale scores like any label matrix:

- ``prototype_rows``: training-free, ``normalize((1-a)·t + a·mean(f))`` with ``a = n/(n+k)``: one
  example barely moves a row, many move it towards the examples' centroid.
- ``clap_rows``: CLAP (Silva-Rodriguez et al., CVPR 2024): the rows start at the zero-shot rows and
  minimise the mean cross-entropy of ``logit_scale · normalize(W)·f`` over the examples plus the
  mean over classes of ``λ_c·||w_c - t_c||²``, where ``λ_c`` is zero-shot's mean softmax on that
  class's examples (the authors' code: ``mean(alpha * ||w - t||²)`` with fixed multipliers, the
  model's own logit scale). A class zero-shot already gets right is held near its text row; one it
  gets wrong is free to move. No validation set is needed, which is what makes it usable from one
  shot per class. Both terms are means, so the balance does not drift with the number of shots:
  more shots move a row further only because their evidence is more consistent.

Rows that have no examples can take part as *competitors* (fixed rows in the softmax), so an adapted
row learns to beat the labels it is confused with in the full matrix, not only its labelled peers.
Everything is numpy; SciPy's L-BFGS is used when importable (it is not a base dependency), else a
deterministic gradient descent with a backtracking step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bioclip_edge.runtime.common.arrays import normalize_rows


@dataclass(frozen=True)
class ClapSettings:
    penalty: float = 1.0  # multiplies every class's λ_c (1 is the paper's); larger keeps rows nearer their text rows
    max_iter: int = 500
    tolerance: float = 1e-6


@dataclass(frozen=True)
class ClapFit:
    rows: np.ndarray  # [C, dim] unit rows
    weights: np.ndarray  # [C] λ_c: zero-shot's mean softmax on each class's examples
    loss_before: float
    loss_after: float
    iterations: int
    optimizer: str


def prototype_rows(text_rows: np.ndarray, features: np.ndarray, labels: np.ndarray, shots: np.ndarray,
                   k: float = 4.0) -> np.ndarray:
    """``normalize((1-a)·t_c + a·mean(f_c))``, ``a = n_c/(n_c+k)``: ``n_c`` the class's shots (examples,
    not their views); ``mean(f_c)`` over all of the class's embeddings, views included."""
    text_rows = np.asarray(text_rows, dtype=np.float64)
    out = text_rows.copy()
    for c in range(len(text_rows)):
        mask = labels == c
        if not mask.any():
            continue
        a = float(shots[c]) / (float(shots[c]) + float(k))
        out[c] = (1.0 - a) * text_rows[c] + a * np.asarray(features, dtype=np.float64)[mask].mean(axis=0)
    return normalize_rows(out)


def zero_shot_weights(text_rows: np.ndarray, features: np.ndarray, labels: np.ndarray, logit_scale: float,
                      competitors: np.ndarray | None = None) -> np.ndarray:
    """CLAP's λ_c: the mean zero-shot softmax probability of class c over its own examples."""
    probs = _softmax(logit_scale * features @ _all_rows(text_rows, competitors).T)
    weights = np.zeros(len(text_rows))
    for c in range(len(text_rows)):
        mask = labels == c
        weights[c] = probs[mask, c].mean() if mask.any() else 1.0
    return weights


def clap_objective(w_flat: np.ndarray, text_rows: np.ndarray, features: np.ndarray, labels: np.ndarray,
                   logit_scale: float, weights: np.ndarray, competitors: np.ndarray | None = None
                   ) -> tuple[float, np.ndarray]:
    """(loss, gradient) of mean cross-entropy + Σ_c weights_c·||w_c - t_c||² at the flattened rows ``w_flat``
    (``clap_rows`` passes ``weights = penalty·λ_c/C``: the paper's mean over classes)."""
    c, d = text_rows.shape
    w = w_flat.reshape(c, d)
    norms = np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    u = w / norms
    probs = _softmax(logit_scale * features @ _all_rows(u, competitors).T)
    n = len(features)
    ce = -np.log(np.maximum(probs[np.arange(n), labels], 1e-300)).mean()
    delta = probs[:, :c].copy()
    delta[np.arange(n), labels] -= 1.0
    grad_u = logit_scale * (delta.T @ features) / n
    grad_w = (grad_u - np.sum(grad_u * u, axis=1, keepdims=True) * u) / norms
    diff = w - text_rows
    loss = ce + float(np.sum(weights * np.sum(diff * diff, axis=1)))
    grad_w += 2.0 * weights[:, None] * diff
    return float(loss), grad_w.ravel()


def clap_rows(text_rows: np.ndarray, features: np.ndarray, labels: np.ndarray, logit_scale: float,
              settings: ClapSettings = ClapSettings(), competitors: np.ndarray | None = None) -> ClapFit:
    """CLAP's rows for classes ``0..C-1`` (``labels`` index ``text_rows``), started at the text rows.

    The penalty is the paper's mean over the ``C`` adapted classes of ``λ_c·||w_c - t_c||²`` (fixed
    competitor rows carry none): the cross-entropy is a mean over all examples, so each row's share
    of it shrinks with ``C`` and so does its share of the penalty.
    """
    text_rows = normalize_rows(text_rows).astype(np.float64)
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    comp = None if competitors is None or not len(competitors) else np.asarray(competitors, dtype=np.float64)
    confidence = zero_shot_weights(text_rows, features, labels, logit_scale, comp)
    weights = settings.penalty * confidence / len(text_rows)
    args = (text_rows, features, labels, float(logit_scale), weights, comp)
    start = text_rows.ravel().copy()
    before = clap_objective(start, *args)[0]
    w, iterations, optimizer = _minimise(start, args, settings)
    after = clap_objective(w, *args)[0]
    return ClapFit(normalize_rows(w.reshape(text_rows.shape)), weights, before, after, iterations, optimizer)


def _minimise(start: np.ndarray, args: tuple, settings: ClapSettings) -> tuple[np.ndarray, int, str]:
    try:
        from scipy.optimize import minimize  # type: ignore[import-untyped]  # optional, and SciPy ships no stubs
    except ImportError:  # the torch-free base install has no SciPy: plain gradient descent does the same job
        return _gradient_descent(start, args, settings)
    result = minimize(clap_objective, start, args=args, jac=True, method="L-BFGS-B",
                      options={"maxiter": settings.max_iter, "gtol": settings.tolerance})
    return np.asarray(result.x), int(result.nit), "scipy-lbfgs"


def _gradient_descent(start: np.ndarray, args: tuple, settings: ClapSettings) -> tuple[np.ndarray, int, str]:
    """Steepest descent with a backtracking (Armijo) step: deterministic and monotone."""
    w, step = start.copy(), 1.0
    loss, grad = clap_objective(w, *args)
    iterations = 0
    for iterations in range(1, 5 * settings.max_iter + 1):
        gnorm2 = float(grad @ grad)
        if np.sqrt(gnorm2) < settings.tolerance:
            break
        while step > 1e-10:
            candidate = w - step * grad
            new_loss, new_grad = clap_objective(candidate, *args)
            if new_loss <= loss - 1e-4 * step * gnorm2:
                break
            step *= 0.5
        else:
            break
        converged = loss - new_loss < settings.tolerance * max(1.0, abs(loss))
        w, loss, grad, step = candidate, new_loss, new_grad, step * 2.0
        if converged:
            break
    return w, iterations, "numpy-gradient-descent"


def _all_rows(rows: np.ndarray, competitors: np.ndarray | None) -> np.ndarray:
    return rows if competitors is None or not len(competitors) else np.concatenate([rows, competitors])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
