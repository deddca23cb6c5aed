"""The training job of `dealscore-train`, done with scikit-learn on the same SQLite database:
load the closed deals, time split (the newest 20 % by closing time, then id, are the holdout),
5-fold stratified cross-validation of C = 1/alpha over dealscore's alpha grid on the training
part (GridSearchCV, 2 jobs, refit of the best C on the training part), holdout ROC AUC of that
refit, then a refit on every closed deal. The encoding is learnt once per training set, not in
every fold. Features as dealscore's default spec: 8 quantile bins one-hot (median imputation plus a
missing indicator) for cycle_days, interaction_count, response_hours and amount; one-hot for
sector, contact_role and region, levels seen fewer than 20 times merged.

Run: python3 benches/training_sklearn.py DB.sqlite   (prints one JSON line)
Used by benches/training_vs_sklearn.sh; scikit-learn is installed there into a venv under target/.
"""
import json
import sqlite3
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder

ALPHAS = [0.01, 0.1, 1.0, 10.0, 100.0]
NUMERIC = ["cycle_days", "interaction_count", "response_hours", "amount"]
CATEGORICAL = ["sector", "contact_role", "region"]

started = time.perf_counter()
phases = {}
mark = started


def phase(name):
    global mark
    now = time.perf_counter()
    phases[name] = round(now - mark, 3)
    mark = now


db = sqlite3.connect(sys.argv[1])
frame = pd.read_sql_query(
    "SELECT created_at, closed_at, interaction_count, response_hours, amount, sector, contact_role, "
    "region, status FROM opportunities WHERE status IN ('won', 'lost') ORDER BY closed_at, external_id",
    db,
)
db.close()
phase("load")

n = len(frame)
X = pd.DataFrame(
    {
        "cycle_days": np.maximum((frame["closed_at"] - frame["created_at"]) / 86_400_000.0, 0.0),
        "interaction_count": frame["interaction_count"].astype("float64"),
        "response_hours": frame["response_hours"].astype("float64"),
        "amount": frame["amount"].astype("float64"),
        **{c: frame[c].fillna("(missing)") for c in CATEGORICAL},
    }
)
y = (frame["status"] == "won").to_numpy(dtype=np.int8)
del frame
phase("encode")

holdout = int(round(n * 0.2))
cut = n - holdout
X_train, y_train, X_hold, y_hold = X.iloc[:cut], y[:cut], X.iloc[cut:], y[cut:]


def encoder():
    """Median imputation with a missing indicator, 8 quantile bins one-hot per numeric column;
    one-hot categoricals with levels seen fewer than 20 times merged."""
    return ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True),
                    ColumnTransformer(
                        [
                            (
                                "bins",
                                KBinsDiscretizer(
                                    n_bins=8, encode="onehot", strategy="quantile", subsample=200_000, random_state=0
                                ),
                                [0, 1, 2, 3],
                            )
                        ],
                        remainder="passthrough",
                        sparse_threshold=1.0,
                    ),
                ),
                NUMERIC,
            ),
            (
                "categorical",
                OneHotEncoder(min_frequency=20, handle_unknown="infrequent_if_exist"),
                CATEGORICAL,
            ),
        ],
        sparse_threshold=1.0,
    )


# The encoding is learnt once on the training part (as dealscore learns its bins and levels once)
# and every fit works on the encoded sparse matrix: re-learning the bins inside each of the 25
# cross-validation fits measured the encoder, not the solver.
encode = encoder().fit(X_train)
E_train, E_hold = encode.transform(X_train), encode.transform(X_hold)
phase("encode_fit")

search = GridSearchCV(
    LogisticRegression(solver="lbfgs", max_iter=200),
    {"C": [1.0 / a for a in ALPHAS]},
    cv=StratifiedKFold(5, shuffle=True, random_state=42),
    scoring="roc_auc",
    n_jobs=2,
    refit=True,
)
search.fit(E_train, y_train)
C = search.best_params_["C"]
phase("cross_validation")

auc = roc_auc_score(y_hold, search.best_estimator_.predict_proba(E_hold)[:, 1])
phase("holdout")

final_encode = encoder().fit(X)
final = LogisticRegression(solver="lbfgs", max_iter=200, C=C).fit(final_encode.transform(X), y)
phase("refit")

print(
    json.dumps(
        {
            "rows": n,
            "holdout_rows": holdout,
            "chosen_alpha": 1.0 / C,
            "holdout_auc": auc,
            "cv_mean_auc": {str(1.0 / c): m for c, m in zip(search.cv_results_["param_C"], search.cv_results_["mean_test_score"])},
            "phases": phases,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )
)
