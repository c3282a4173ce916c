"""Detection-quality report: the Fraud Detection Handbook's protocol on simulated or handbook data.

Protocol (chapter 3): features over the whole history (the same Spark definitions the pipeline
uses), train on 7 days, skip a 7-day feedback delay, test on the next 7 days without the cards
known compromised; AUC ROC, Average Precision and Card Precision@100 for each of the three models,
the ensemble's confidence (mean probability), and a plain random forest as the handbook trains it
(100 trees, scikit-learn defaults) on the same data; printed next to the published baseline.

Targets: the ensemble's AUC and AP at least those of its best member; on handbook-sized simulated
data (10,000 transactions a day) within 0.02 of the published random forest.

Usage:
  python bench/quality.py                        # 4 simulated handbook-sized data sets
  python bench/quality.py --from-csv FILE.csv    # any handbook-format CSV with TX_FRAUD
  python bench/quality.py --tx-per-day 3000 --seeds 1 --train-start 2018-07-25

A single data set's test week holds ~400 frauds: metrics move by ~0.01 from one seed to the next,
more than the differences being compared, hence the mean over several seeds.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
from sklearn.ensemble import RandomForestClassifier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.handbook_protocol import PUBLISHED_BASELINE, Protocol, scores_table, split  # noqa: E402
from fraudstream.features.contract import FEATURE_COLUMNS, lookback_days  # noqa: E402
from fraudstream.features.offline import labelled_features  # noqa: E402
from fraudstream.ml.models import MODEL_NAMES, FraudModels, TrainingParams  # noqa: E402
from fraudstream.tooling.simulator.delivery import read_handbook_csv  # noqa: E402
from fraudstream.tooling.simulator.generator import SimulationConfig, TransactionSimulator  # noqa: E402
from fraudstream.windows import TimeRange, parse_utc  # noqa: E402


def load(args: argparse.Namespace, protocol: Protocol, seed: int | None) -> pd.DataFrame:
    if args.from_csv:
        frame = pd.concat(read_handbook_csv(Path(args.from_csv)), ignore_index=True)
        if "tx_fraud" not in frame:
            raise SystemExit(f"{args.from_csv} has no TX_FRAUD column: the report needs labels")
        return frame
    first = protocol.train_start - timedelta(days=lookback_days() + 3)
    simulator = TransactionSimulator(SimulationConfig(seed=seed or 0, tx_per_day=args.tx_per_day))
    return simulator.transactions(TimeRange(first, protocol.test_end))


ENSEMBLE = "ensemble (confidence)"
PLAIN_RF = "plain RF, handbook settings"


def evaluate(frame: pd.DataFrame, protocol: Protocol) -> tuple[pd.DataFrame, str]:
    """The protocol's table for one data set, and a line describing the run."""
    started = time.monotonic()
    features = labelled_features(frame, protocol.train_start, protocol.test_end)
    train, test = split(features, protocol)
    x_train, y_train = train[FEATURE_COLUMNS].to_numpy(float), train["tx_fraud"].to_numpy()
    x_test = test[FEATURE_COLUMNS].to_numpy(float)
    fit_started = time.monotonic()
    models = FraudModels(FEATURE_COLUMNS, TrainingParams()).fit(x_train, y_train)
    fit_seconds = time.monotonic() - fit_started
    probabilities = models.predict_proba(x_test)
    plain_forest = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=0)
    plain_forest.fit(x_train, y_train)
    scores = {name.replace("_", " "): probabilities[:, i] for i, name in enumerate(MODEL_NAMES)}
    scores[ENSEMBLE] = probabilities.mean(axis=1)
    scores[PLAIN_RF] = plain_forest.predict_proba(x_test)[:, 1]
    line = (
        f"{len(frame):,} transactions ({frame['tx_fraud'].mean():.2%} fraud); train "
        f"{len(train):,} ({int(train['tx_fraud'].sum())} frauds), test {len(test):,} "
        f"({int(test['tx_fraud'].sum())} frauds); ensemble fit {fit_seconds:.1f} s; "
        f"{time.monotonic() - started:.0f} s"
    )
    return scores_table(test, scores), line


def verdicts(table: pd.DataFrame) -> dict[str, bool]:
    members = table.loc[[n.replace("_", " ") for n in MODEL_NAMES]]
    ensemble, plain = table.loc[ENSEMBLE], table.loc[PLAIN_RF]
    rf_auc, rf_ap, _ = PUBLISHED_BASELINE["random forest"]
    return {
        "ensemble AUC >= best member": ensemble["auc_roc"] >= members["auc_roc"].max(),
        "ensemble AP >= best member": ensemble["average_precision"]
        >= members["average_precision"].max(),
        "ensemble AUC within 0.02 of published RF": ensemble["auc_roc"] >= rf_auc - 0.02,
        "ensemble AP within 0.02 of published RF": ensemble["average_precision"] >= rf_ap - 0.02,
        "ensemble AUC >= plain RF": ensemble["auc_roc"] >= plain["auc_roc"],
        "ensemble AP >= plain RF": ensemble["average_precision"] >= plain["average_precision"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-csv")
    parser.add_argument("--tx-per-day", type=int, default=10_000)
    parser.add_argument("--seeds", default="0,1,2,3", help="simulated data sets to average")
    parser.add_argument("--train-start", default="2018-07-25")
    args = parser.parse_args()
    protocol = Protocol(parse_utc(args.train_start))
    seeds = [None] if args.from_csv else [int(s) for s in args.seeds.split(",")]

    tables, runs = [], []
    for seed in seeds:
        table, line = evaluate(load(args, protocol, seed), protocol)
        tables.append(table)
        runs.append(verdicts(table))
        print(f"{'csv' if seed is None else f'seed {seed}'}: {line}", flush=True)
    mean = sum(tables) / len(tables)
    print(f"\nprotocol: train 7 days from {protocol.train_start:%Y-%m-%d}, delay 7, test 7 "
          f"({protocol.test_start:%Y-%m-%d}..{protocol.test_end:%Y-%m-%d}); "
          f"mean over {len(tables)} data set(s)\n")  # fmt: skip
    print(f"{'model':32} {'AUC ROC':>8} {'AP':>8} {'CP@100':>8}")
    for name, row in mean.iterrows():
        print(f"{name:32} {row['auc_roc']:8.3f} {row['average_precision']:8.3f} "
              f"{row['card_precision@100']:8.3f}")  # fmt: skip
    print("published baseline (handbook 3.4)")
    for name, (auc, ap, cp) in PUBLISHED_BASELINE.items():
        print(f"  {name:30} {auc:8.3f} {ap:8.3f} {cp:8.3f}")
    print()
    for name, passed in verdicts(mean).items():
        held = sum(run[name] for run in runs)
        print(f"{'PASS' if passed else 'MISS'}  {name} (mean; held in {held} of {len(runs)})")


if __name__ == "__main__":
    main()
