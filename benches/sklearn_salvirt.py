"""Reference ROC AUC on the salvirt B2B data set (CC BY 4.0, Bohanec et al. 2017).

5-fold stratified CV of scikit-learn's LogisticRegression (lbfgs, default C=1) on one-hot
encoded columns (all 448 rows), plus each C = 1/alpha of dealscore's default alpha grid.
Run: python3 benches/sklearn_salvirt.py
"""
import csv
import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

DATA = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "salvirt_b2b.csv")
with open(DATA, newline="") as f:
    rows = list(csv.reader(f, delimiter=";"))
header, data = rows[0], rows[1:]
status = header.index("Status")
X = np.array([[v for i, v in enumerate(r) if i != status] for r in data])
y = np.array([r[status] == "Won" for r in data])
for seed in (0, 1, 2):
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    for alpha in (0.01, 0.1, 1.0, 10.0, 100.0):
        model = make_pipeline(
            OneHotEncoder(handle_unknown="ignore"),
            LogisticRegression(C=1.0 / alpha, max_iter=1000),
        )
        auc = cross_val_score(model, X, y, cv=cv, scoring="roc_auc")
        print(f"seed {seed} alpha {alpha:>6} (C={1/alpha:g}): CV ROC AUC {auc.mean():.4f} ± {auc.std():.4f}")
