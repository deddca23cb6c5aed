"""Times scikit-learn's LogisticRegression(solver="lbfgs", C=1/alpha) on the design written by
`cargo bench --bench fit` (target/fit-bench/design.csv: 7 bin codes in 0..8 + outcome per row),
one-hot encoded exactly like the Rust bench (56 dense float64 columns).

Run: python3 benches/sklearn_fit.py [path] [repeats]
"""
import statistics
import sys
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

ALPHA = 1.0
BINS = 8
path = sys.argv[1] if len(sys.argv) > 1 else "target/fit-bench/design.csv"
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5

data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64)
codes, y = data[:, :-1], data[:, -1]
n, features = codes.shape
X = np.zeros((n, features * BINS), dtype=np.float64)
for f in range(features):
    X[np.arange(n), f * BINS + codes[:, f]] = 1.0

times = []
for _ in range(repeats):
    model = LogisticRegression(solver="lbfgs", C=1.0 / ALPHA, max_iter=200)
    start = time.perf_counter()
    model.fit(X, y)
    times.append(time.perf_counter() - start)
print(f"rows {n} x {X.shape[1]}: sklearn lbfgs median {statistics.median(times):.3f} s "
      f"(runs {', '.join(f'{t:.3f}' for t in times)}), iterations {model.n_iter_[0]}, "
      f"intercept {model.intercept_[0]:.6f}, in-sample ROC AUC {roc_auc_score(y, model.predict_proba(X)[:, 1]):.6f}")
