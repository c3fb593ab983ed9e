"""Times the QR that SOAP's eigenbasis refresh runs on a GPU (kronecker.h, PowerIterationBases):
torch.linalg.qr (cuSOLVER's Householder QR, as the reference computes it) against column-scaled
Cholesky QR in float64 (kronecker.h's CholeskyQr), on stacks of the refresh's own kind of input,
F Q with F a factor of widely spread eigenvalues and Q near its eigenbasis, at Qwen3-0.6B's
factor sizes. Prints per-matrix milliseconds, the orthogonality error max |Q^T Q - I| of each and
the largest difference of Cholesky's Q from Householder's after matching column signs.

    python3 scripts/bench/cholesky_qr.py            # on a CUDA machine
"""

import time

import torch


def timed(fn, reps=3):
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        out = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps * 1e3, out


def cholesky_qr(a):
    """Q of a = Q R by Cholesky of the column-scaled Gram matrix in float64."""
    a64 = a.double()
    scaled = a64 / a64.norm(dim=-2, keepdim=True).clamp_min(1e-300)
    lower, info = torch.linalg.cholesky_ex(scaled.mT @ scaled)
    return torch.linalg.solve_triangular(lower.mT, scaled, upper=True, left=False).float(), info


def main():
    torch.backends.cuda.matmul.allow_tf32 = False
    for n, batch in [(1024, 64), (2048, 16), (3072, 8)]:
        torch.manual_seed(0)
        g = torch.randn(batch, n, 2 * n, device="cuda")
        g *= torch.logspace(0, -3, 2 * n, device="cuda")
        f = g @ g.mT / (2 * n)
        drift = 1e-3 * torch.randn_like(f) * f.abs().mean()
        q0 = torch.linalg.qr(torch.linalg.eigh(f + drift)[1])[0]
        a = f @ q0
        ms_householder, (householder, _) = timed(lambda: torch.linalg.qr(a))
        ms_cholesky, (cholesky, info) = timed(lambda: cholesky_qr(a))
        eye = torch.eye(n, device="cuda")
        signs = torch.sign((cholesky * householder).sum(-2, keepdim=True))
        print(f"n={n} batch={batch} ms_per_matrix householder={ms_householder / batch:.2f} "
              f"cholesky_qr={ms_cholesky / batch:.3f} cholesky_failed={int((info > 0).sum())} "
              f"orthogonality householder={(householder.mT @ householder - eye).abs().max():.1e} "
              f"cholesky_qr={(cholesky.mT @ cholesky - eye).abs().max():.1e} "
              f"difference={(cholesky * signs - householder).abs().max():.1e}")


if __name__ == "__main__":
    main()
