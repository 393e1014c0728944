"""Tests of the tables stage: summary statistics by hand, concatenation and file formats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vae_novelty import elbo as E
from vae_novelty import table_checks, tables
from vae_novelty import theorem1 as t1
from vae_novelty import theorem1_table as t1t

INFO = {
    "model_id": "h64.no9.s0",
    "arch": "h64",
    "hidden": "64",
    "n_hidden_layers": 1,
    "z_dim": 8,
    "split": "no9",
    "heldout_digit": 9,
    "seed": 0,
    "decoder_params": 51_472,
}


def test_summary_row_by_hand():
    frame = pd.DataFrame(
        {
            "bce_x_xhat": [10.0, 20.0, 30.0, 40.0],
            "bce_mu_xhat": [15.0, 5.0, 35.0, 25.0],
            "perplexity": [1.0, 1.2, 1.4999, 3.0],
            "xhat_nn_bce": [9.0, 20.0, 31.0, 12.5],
            "nn_ratio": [0.9, 0.1, np.nan, 0.5],
        }
    )
    # epochs out of order: the final values are those of epoch 3
    history = pd.DataFrame(
        {
            "epoch": [2, 3, 1],
            "train_neg_elbo": [100.0, 90.0, 120.0],
            "test_neg_elbo": [110.0, 105.0, 130.0],
        }
    )
    elbo = pd.DataFrame(
        {
            "elbo_decoder": [-100.0, -120.0, -80.0, -90.0],
            "elbo_optimal": [-60.0, -130.0, -80.0, -50.0],
        }
    )
    row = tables.summary_row(INFO, frame, history, elbo)
    assert list(row) == list(tables.SUMMARY_COLUMNS)
    assert {k: row[k] for k in INFO} == INFO
    assert row["n_test"] == 4
    # linear-interpolation quantiles of 4 sorted values v0..v3: q at position 3q
    # bce_x (10, 20, 30, 40): median = (20 + 30) / 2 = 25; q25 at 0.75 = 10 + 0.75 * 10 = 17.5;
    #   q75 at 2.25 = 30 + 0.25 * 10 = 32.5
    assert (
        row["bce_x_xhat_median"],
        row["bce_x_xhat_q25"],
        row["bce_x_xhat_q75"],
    ) == pytest.approx((25.0, 17.5, 32.5))
    # bce_mu sorted (5, 15, 25, 35): median 20, q25 = 5 + 7.5 = 12.5, q75 = 25 + 2.5 = 27.5
    assert (
        row["bce_mu_xhat_median"],
        row["bce_mu_xhat_q25"],
        row["bce_mu_xhat_q75"],
    ) == pytest.approx((20.0, 12.5, 27.5))
    # perplexity sorted (1.0, 1.2, 1.4999, 3.0): median (1.2 + 1.4999) / 2 = 1.34995;
    #   q25 = 1.0 + 0.75 * 0.2 = 1.15; q75 = 1.4999 + 0.25 * 1.5001 = 1.874925
    assert (
        row["perplexity_median"],
        row["perplexity_q25"],
        row["perplexity_q75"],
    ) == pytest.approx((1.34995, 1.15, 1.874925))
    # bce_mu < bce_x: 15<10 no, 5<20 yes, 35<30 no, 25<40 yes -> 2/4
    assert row["frac_closer_to_mu"] == 0.5
    # perplexity < 1.5: 1.0, 1.2, 1.4999 -> 3/4
    assert row["frac_perplexity_lt_1_5"] == 0.75
    assert (row["final_train_neg_elbo"], row["final_test_neg_elbo"]) == (90.0, 105.0)
    # xhat_nn_bce < bce_x: 9<10 yes, 20<20 no (a training image exactly as close as the input
    # does not count), 31<30 no, 12.5<40 yes -> 2/4
    assert row["frac_xhat_closer_to_train"] == 0.5
    # nn_ratio without the NaN: (0.1, 0.5, 0.9) -> median 0.5
    assert row["nn_ratio_median"] == 0.5
    # means: decoder (-100 - 120 - 80 - 90) / 4 = -97.5; optimal (-60 - 130 - 80 - 50) / 4 = -80;
    # gaps (40, -10, 0, 40) -> 70 / 4 = 17.5 = -80 - (-97.5)
    assert row["elbo_decoder_mean"] == -97.5 and row["elbo_optimal_mean"] == -80.0
    assert row["elbo_gap_mean"] == 17.5


def _count_closer(bce_mu, bce_x):
    """The reference: a plain loop, strictly closer to mu (a tie is not closer)."""
    closer = 0
    for m, x in zip(bce_mu, bce_x):
        if m < x:
            closer += 1
    return closer / len(bce_x)


def test_frac_closer_to_mu_uneven_case_and_ties():
    """3 of 4 closer (so a flipped comparison gives 1/4, not the same 1/2), then a tie."""
    bce_x = [10.0, 20.0, 30.0, 40.0]
    bce_mu = [5.0, 15.0, 25.0, 45.0]
    assert _count_closer(bce_mu, bce_x) == 0.75
    assert tables.frac_closer_to_mu(bce_mu, bce_x) == 0.75
    assert tables.frac_closer_to_mu(bce_x, bce_mu) == 0.25
    # row 1 a tie (20 vs 20): not closer, 2 of 4; counted as closer it would be 3 of 4
    tied = [5.0, 20.0, 25.0, 45.0]
    assert tables.frac_closer_to_mu(tied, bce_x) == _count_closer(tied, bce_x) == 0.5
    # every row a tie: nothing is closer
    assert tables.frac_closer_to_mu(bce_x, bce_x) == 0.0
    assert np.isnan(tables.frac_closer_to_mu([], []))
    with pytest.raises(ValueError, match="3 BCE\\(mu, x_hat\\) values and 4 BCE\\(x, x_hat\\)"):
        tables.frac_closer_to_mu(bce_mu[:3], bce_x)


def test_summary_row_frac_closer_to_mu_on_random_rows():
    """summary_row's fraction against the loop, on rows with ties and an uneven split."""
    rng = np.random.default_rng(3)
    for n in (1, 5, 12):
        bce_x = rng.integers(0, 4, n).astype(float)  # small integers: many ties
        bce_mu = rng.integers(0, 4, n).astype(float)
        frame = pd.DataFrame({"bce_x_xhat": bce_x, "bce_mu_xhat": bce_mu, "perplexity": np.ones(n)})
        row = tables.summary_row(INFO, frame, None)
        assert row["frac_closer_to_mu"] == _count_closer(bce_mu, bce_x)


def test_summary_row_without_test_images():
    frame = pd.DataFrame(
        {c: pd.Series([], dtype=float) for c in (*tables.STAT_COLUMNS, "xhat_nn_bce", "nn_ratio")}
    )
    row = tables.summary_row(INFO, frame, None, frame.assign(elbo_decoder=[], elbo_optimal=[]))
    assert row["n_test"] == 0
    assert np.isnan(row["bce_x_xhat_median"]) and np.isnan(row["frac_closer_to_mu"])
    assert np.isnan(row["final_test_neg_elbo"])
    for col in (
        "frac_xhat_closer_to_train",
        "nn_ratio_median",
        "elbo_decoder_mean",
        "elbo_optimal_mean",
        "elbo_gap_mean",
    ):
        assert np.isnan(row[col]), col


def test_summary_row_without_memorisation_or_elbo_values():
    # a table without the memorisation columns (or with them null) and no ELBO table: NaN
    frame = pd.DataFrame(
        {"bce_x_xhat": [1.0, 2.0], "bce_mu_xhat": [1.0, 2.0], "perplexity": [1.0, 1.0]}
    )
    row = tables.summary_row(INFO, frame, None)
    assert np.isnan(row["frac_xhat_closer_to_train"]) and np.isnan(row["nn_ratio_median"])
    assert np.isnan(row["elbo_gap_mean"])
    row = tables.summary_row(
        INFO, frame.assign(xhat_nn_bce=[np.nan, 0.0], nn_ratio=[np.nan, np.nan]), None
    )
    assert np.isnan(row["frac_xhat_closer_to_train"]) and np.isnan(row["nn_ratio_median"])


DATA = "0123456789abcdef"


def _write_model(
    tmp_path, arch, split, seed, n, rng, k=3, with_neighbours=True, data=DATA, elbo_data=None
):
    from vae_novelty.config import ModelSpec

    spec = ModelSpec(arch, (64,), 8, split, seed)
    info = t1t.model_info(spec)
    w = np.sort(rng.dirichlet(np.ones(5), n), axis=1)[:, ::-1][:, :k]
    stats = t1.WeightStats(
        log_norm=rng.normal(size=n),
        entropy=rng.random(n),
        w_max=w[:, 0],
        topk_pos=np.zeros((n, k), np.int64),
        topk_weight=w,
        mu=None,
    )
    neighbours = {
        "nn_index": rng.integers(0, 60000, n),
        "nn_dist": rng.random(n),
        "nn_ratio": rng.random(n),
        "xhat_nn_index": rng.integers(0, 60000, n),
        "xhat_nn_bce": rng.uniform(50, 150, n),
    }
    mnist_index, label = np.arange(n) * 3, rng.integers(0, 10, n)
    table = t1t.build_table(
        info,
        mnist_index,
        label,
        rng.uniform(50, 150, n),
        rng.uniform(50, 150, n),
        stats,
        rng.integers(0, 60000, (n, k)),
        {**info, "schema": "x", "data": data},
        neighbours if with_neighbours else None,
    )
    path = tmp_path / arch / f"{split}_s{seed}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    hist = tmp_path / arch / f"{split}_s{seed}.history.csv"
    pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_neg_elbo": rng.uniform(90, 120, 2),
            "test_neg_elbo": rng.uniform(90, 120, 2),
        }
    ).to_csv(hist, index=False)
    terms = {
        "elbo_decoder": rng.uniform(-150, -90, n),
        "elbo_optimal": rng.uniform(-150, -90, n),
        "kl": rng.uniform(10, 20, n),
        "clamped_fraction": rng.random(n),
    }
    elbo = tmp_path / "elbo" / arch / f"{split}_s{seed}.parquet"
    elbo.parent.mkdir(parents=True, exist_ok=True)
    E.write_table(
        E.build_table(
            info["model_id"],
            mnist_index,
            label,
            terms,
            {"model_id": info["model_id"], "data": elbo_data or data},
        ),
        elbo,
    )
    return path, hist, table, elbo


def test_write_tables(tmp_path):
    rng = np.random.default_rng(0)
    models = [("h64", "full", 0), ("h64", "no9", 0), ("mini", "mini", 0)]
    written = [_write_model(tmp_path, a, s, k, n, rng) for (a, s, k), n in zip(models, (4, 3, 0))]
    out = tmp_path / "tables"
    summary = tables.write_tables(
        [w[0] for w in written],
        [w[1] for w in written],
        models,
        table_path=out / "theorem1.parquet",
        summary_path=out / "summary.csv",
        training_path=out / "training.csv",
        elbo_paths=[w[3] for w in written],
        expect_data=DATA,
    )
    combined = pq.read_table(out / "theorem1.parquet")
    assert combined.schema.equals(t1t.table_schema(), check_metadata=False)
    assert b"vae_novelty" in combined.schema.metadata
    assert combined.num_rows == 7
    assert combined.column("model_id").to_pylist() == ["h64.full.s0"] * 4 + ["h64.no9.s0"] * 3
    assert combined.column("bce_x_xhat").to_pylist() == (
        written[0][2].column("bce_x_xhat").to_pylist()
        + written[1][2].column("bce_x_xhat").to_pylist()
    )
    csv = pd.read_csv(out / "summary.csv", dtype={"hidden": str})  # "64" would read as int
    assert list(csv.columns) == list(tables.SUMMARY_COLUMNS)
    assert csv.model_id.tolist() == ["h64.full.s0", "h64.no9.s0", "mini.mini.s0"]
    assert csv.n_test.tolist() == [4, 3, 0]
    assert csv.heldout_digit.tolist() == [-1, 9, -1]
    df0 = written[0][2].to_pandas()
    assert csv.bce_mu_xhat_q75[0] == pytest.approx(np.quantile(df0.bce_mu_xhat, 0.75))
    assert csv.frac_closer_to_mu[0] == pytest.approx((df0.bce_mu_xhat < df0.bce_x_xhat).mean())
    assert csv.frac_xhat_closer_to_train[0] == pytest.approx(
        (df0.xhat_nn_bce < df0.bce_x_xhat).mean()
    )
    assert csv.nn_ratio_median[0] == pytest.approx(df0.nn_ratio.median())
    e1 = pq.read_table(written[1][3]).to_pandas()
    assert csv.elbo_decoder_mean[1] == pytest.approx(e1.elbo_decoder.mean())
    assert csv.elbo_optimal_mean[1] == pytest.approx(e1.elbo_optimal.mean())
    assert csv.elbo_gap_mean[1] == pytest.approx((e1.elbo_optimal - e1.elbo_decoder).mean())
    assert np.isnan(csv.elbo_gap_mean[2]) and np.isnan(csv.nn_ratio_median[2])  # no test images
    pd.testing.assert_frame_equal(summary.reset_index(drop=True), csv, check_dtype=False)
    training = pd.read_csv(out / "training.csv")
    assert list(training.columns) == [
        "model_id",
        "arch",
        "split",
        "seed",
        "epoch",
        "train_neg_elbo",
        "test_neg_elbo",
    ]
    assert len(training) == 6
    hist1 = pd.read_csv(written[1][1])
    assert csv.final_test_neg_elbo[1] == pytest.approx(hist1.test_neg_elbo.iloc[-1])
    np.testing.assert_allclose(
        training[training.model_id == "h64.no9.s0"].train_neg_elbo, hist1.train_neg_elbo
    )


def test_write_tables_rejects_inputs_out_of_order(tmp_path):
    rng = np.random.default_rng(1)
    a = _write_model(tmp_path, "h64", "full", 0, 2, rng)
    b = _write_model(tmp_path, "h64", "no9", 0, 2, rng)
    with pytest.raises(ValueError, match="expected 'h64.full.s0'"):
        tables.write_tables(
            [b[0], a[0]],
            [b[1], a[1]],
            [("h64", "full", 0), ("h64", "no9", 0)],
            table_path=tmp_path / "t.parquet",
            summary_path=tmp_path / "s.csv",
            training_path=tmp_path / "tr.csv",
        )
    assert not (tmp_path / "t.parquet").exists()
    with pytest.raises(ValueError, match="expected 'h64.full.s0'"):
        tables.write_tables(
            [a[0], b[0]],
            [a[1], b[1]],
            [("h64", "full", 0), ("h64", "no9", 0)],
            table_path=tmp_path / "t.parquet",
            summary_path=tmp_path / "s.csv",
            training_path=tmp_path / "tr.csv",
            elbo_paths=[b[3], a[3]],
        )
    assert not (tmp_path / "t.parquet").exists()


def test_write_tables_rejects_elbo_of_other_test_images(tmp_path):
    rng = np.random.default_rng(2)
    a = _write_model(tmp_path, "h64", "no9", 0, 3, rng)
    table = pq.read_table(a[3])  # mnist_index 0, 3, 6
    E.write_table(table.set_column(1, "mnist_index", pa.array([0, 3, 7])), a[3])
    with pytest.raises(ValueError, match="test images differ"):
        tables.write_tables(
            [a[0]],
            [a[1]],
            [("h64", "no9", 0)],
            table_path=tmp_path / "t.parquet",
            summary_path=tmp_path / "s.csv",
            training_path=tmp_path / "tr.csv",
            elbo_paths=[a[3]],
        )


# --------------------------------------------------------------------------- non-finite values


def _set_column(path, name, values, writer=pq.write_table):
    """Replace one column of a Parquet file, keeping its schema and metadata."""
    table = pq.read_table(path)
    i = table.schema.get_field_index(name)
    writer(
        table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type)),
        path,
    )


def _tables(tmp_path, written, models, elbo=True):
    out = tmp_path / "tables"
    return tables.write_tables(
        [w[0] for w in written],
        [w[1] for w in written],
        models,
        table_path=out / "theorem1.parquet",
        summary_path=out / "summary.csv",
        training_path=out / "training.csv",
        elbo_paths=[w[3] for w in written] if elbo else None,
    )


@pytest.mark.parametrize(
    "column",
    [
        "bce_x_xhat",
        "bce_mu_xhat",
        "perplexity",
        "entropy",
        "w_max",
        "log_norm",
        "nn_dist",
        "nn_ratio",
        "xhat_nn_bce",
    ],
)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_theorem1_value_is_refused_naming_file_and_column(tmp_path, column, bad):
    """NaN compares False: a NaN bce_mu_xhat would silently count as 'not closer to mu'."""
    rng = np.random.default_rng(3)
    written = [_write_model(tmp_path, "h64", "no9", 0, 4, rng)]
    values = pq.read_table(written[0][0]).column(column).to_numpy().copy()
    values[2] = bad
    _set_column(written[0][0], column, values)
    with pytest.raises(
        ValueError,
        match=rf"{written[0][0]}: column {column} has 1 "
        rf"(NaN|infinite) value",
    ):
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert not (tmp_path / "tables" / "summary.csv").exists()


def test_non_finite_topk_weight_and_partly_null_neighbours_are_refused(tmp_path):
    rng = np.random.default_rng(4)
    written = [_write_model(tmp_path, "h64", "no9", 0, 3, rng)]
    path = written[0][0]
    good = pq.read_table(path).column("topk_weight").to_pylist()
    _set_column(path, "topk_weight", [good[0], [0.5, float("nan"), 0.1], good[2]])
    with pytest.raises(ValueError, match=rf"{path}: column topk_weight has 1 NaN value"):
        _tables(tmp_path, written, [("h64", "no9", 0)])
    _set_column(path, "topk_weight", good)
    _set_column(path, "xhat_nn_bce", [None, 60.0, 70.0])
    with pytest.raises(ValueError, match=rf"{path}: column xhat_nn_bce has 1 missing \(null\)"):
        _tables(tmp_path, written, [("h64", "no9", 0)])


def test_legitimate_nan_values_are_kept(tmp_path):
    """The documented NaNs pass: nn_ratio of a model with a single training row (its top-k
    lists have one entry; theorem1.py), memorisation columns left null (not computed), and the
    history's test -ELBO of a model without test images (train.mean_neg_elbo)."""
    rng = np.random.default_rng(5)
    one_row = _write_model(tmp_path, "mini", "mini", 0, 3, rng, k=1)
    _set_column(one_row[0], "nn_ratio", [np.nan] * 3)
    no_neighbours = _write_model(tmp_path, "h64", "no9", 0, 3, rng, with_neighbours=False)
    no_test = _write_model(tmp_path, "h64", "full", 0, 0, rng)
    pd.DataFrame(
        {"epoch": [1, 2], "train_neg_elbo": [100.0, 90.0], "test_neg_elbo": [np.nan, np.nan]}
    ).to_csv(no_test[1], index=False)
    models = [("mini", "mini", 0), ("h64", "no9", 0), ("h64", "full", 0)]
    summary = _tables(tmp_path, [one_row, no_neighbours, no_test], models)
    assert np.isnan(summary.nn_ratio_median[0]) and summary.frac_closer_to_mu.notna()[0]
    assert np.isnan(summary.frac_xhat_closer_to_train[1]) and np.isnan(summary.nn_ratio_median[1])
    assert np.isnan(summary.final_test_neg_elbo[2])
    # ... but a NaN nn_ratio is refused when the model has more than one training row
    three_rows = _write_model(tmp_path, "h64", "no3", 0, 3, rng)
    _set_column(three_rows[0], "nn_ratio", [np.nan] * 3)
    with pytest.raises(ValueError, match=rf"{three_rows[0]}: column nn_ratio has 3 NaN value"):
        _tables(tmp_path, [three_rows], [("h64", "no3", 0)])


@pytest.mark.parametrize(
    "column, bad",
    [("train_neg_elbo", "nan"), ("test_neg_elbo", "inf"), ("test_neg_elbo", ""), ("epoch", "")],
)
def test_non_finite_history_value_is_refused_naming_file_and_column(tmp_path, column, bad):
    rng = np.random.default_rng(6)
    written = [_write_model(tmp_path, "h64", "no9", 0, 3, rng)]
    hist = written[0][1]
    frame = pd.read_csv(hist).astype(object)
    frame.loc[1, column] = bad  # the final epoch's row
    frame.to_csv(hist, index=False)
    with pytest.raises(ValueError, match=rf"{hist}: column {column} has 1 (NaN|infinite) "):
        _tables(tmp_path, written, [("h64", "no9", 0)])


def test_empty_history_or_missing_column_is_refused(tmp_path):
    rng = np.random.default_rng(7)
    written = [_write_model(tmp_path, "h64", "no9", 0, 3, rng)]
    hist = written[0][1]
    pd.DataFrame({"epoch": [], "train_neg_elbo": [], "test_neg_elbo": []}).to_csv(hist, index=False)
    with pytest.raises(ValueError, match=rf"{hist}: no epochs"):
        _tables(tmp_path, written, [("h64", "no9", 0)])
    pd.DataFrame({"epoch": [1], "train_neg_elbo": [1.0]}).to_csv(hist, index=False)
    with pytest.raises(ValueError, match=rf"{hist}: missing column\(s\) \['test_neg_elbo'\]"):
        _tables(tmp_path, written, [("h64", "no9", 0)])


@pytest.mark.parametrize("column", ["elbo_decoder", "elbo_optimal", "kl", "clamped_fraction"])
def test_non_finite_elbo_value_is_refused_naming_file_and_column(tmp_path, column):
    rng = np.random.default_rng(8)
    written = [_write_model(tmp_path, "h64", "no9", 0, 3, rng)]
    elbo = written[0][3]
    values = pq.read_table(elbo).column(column).to_numpy().copy()
    values[0] = -np.inf if column == "elbo_optimal" else np.nan
    _set_column(elbo, column, values, writer=E.write_table)
    with pytest.raises(ValueError, match=rf"{elbo}: column {column} has 1 (NaN|infinite)"):
        _tables(tmp_path, written, [("h64", "no9", 0)])


def test_summary_row_refuses_nan_rather_than_counting_it():
    frame = pd.DataFrame(
        {"bce_x_xhat": [10.0, 20.0], "bce_mu_xhat": [np.nan, 5.0], "perplexity": [1.0, 1.2]}
    )
    with pytest.raises(ValueError, match=r"h64.no9.s0: column bce_mu_xhat has 1 NaN"):
        tables.summary_row(INFO, frame, None)


def test_tables_refuse_a_model_table_made_from_other_data(tmp_path):
    from vae_novelty.data import DataError

    rng = np.random.default_rng(0)
    models = [("h64", "full", 0), ("h64", "no9", 0)]
    out = tmp_path / "tables"
    kw = dict(
        table_path=out / "theorem1.parquet",
        summary_path=out / "summary.csv",
        training_path=out / "training.csv",
        expect_data=DATA,
    )
    for theorem1_data, elbo_data, culprit in [
        ("fedcba9876543210", None, "no9_s0.parquet"),
        (DATA, "fedcba9876543210", "elbo"),
    ]:
        written = [
            _write_model(tmp_path, *models[0], 3, rng),
            _write_model(tmp_path, *models[1], 3, rng, data=theorem1_data, elbo_data=elbo_data),
        ]
        with pytest.raises(
            DataError,
            match=rf"{culprit}.*made from data fedcba9876543210, but "
            rf"this run's data is {DATA}",
        ):
            tables.write_tables(
                [w[0] for w in written],
                [w[1] for w in written],
                models,
                elbo_paths=[w[3] for w in written],
                **kw,
            )
        assert not out.exists()


# ---------------------------------------------------------------- found by mutation testing
# (bench/mutation.sh tables; docs/benchmarks/mutation.md): the checks' exact messages, the
# thresholds at their boundaries, and the empty and nested-folder cases.


def test_perplexity_threshold_is_strictly_below_1_5():
    frame = pd.DataFrame(
        {"bce_x_xhat": [1.0] * 4, "bce_mu_xhat": [2.0] * 4, "perplexity": [1.0, 1.5, 2.0, 2.4]}
    )
    # 1.0 < 1.5 only: 1.5 itself and values between 1.5 and 2.5 are not below it
    assert tables.summary_row(INFO, frame, None)["frac_perplexity_lt_1_5"] == 0.25


def test_refuse_non_finite_message_in_full():
    with pytest.raises(ValueError) as err:
        table_checks.refuse_non_finite([1.0, np.nan, 2.0, np.nan], "f.parquet", "c", why=" (w)")
    assert str(err.value) == (
        "f.parquet: column c has 2 NaN value(s) (rows 1, 3) (w); refusing "
        "to summarise it (rerun the job that wrote it)"
    )
    with pytest.raises(ValueError) as err:  # more than five: the first five and "..."
        table_checks.refuse_non_finite([np.inf] * 6 + [0.0], "f", "c")
    assert str(err.value) == (
        "f: column c has 6 infinite value(s) (rows 0, 1, 2, 3, 4, ...); "
        "refusing to summarise it (rerun the job that wrote it)"
    )
    with pytest.raises(ValueError) as err:  # exactly five: no "..."
        table_checks.refuse_non_finite([np.nan] * 5, "f", "c")
    assert "(rows 0, 1, 2, 3, 4);" in str(err.value)
    # a 2-D array counts its rows flattened; an object array (None, NaN) is read as floats
    with pytest.raises(ValueError, match=r"f: column c has 1 infinite value\(s\) \(rows 2\)"):
        table_checks.refuse_non_finite(np.array([[1.0, 2.0], [np.inf, 3.0]]), "f", "c")
    with pytest.raises(ValueError, match=r"has 2 NaN value\(s\) \(rows 0, 2\)"):
        table_checks.refuse_non_finite(np.array([None, 1.0, np.nan], dtype=object), "f", "c")
    table_checks.refuse_non_finite([np.nan, 1.0], "f", "c", allow_nan=True)  # NaN allowed, no inf
    with pytest.raises(ValueError, match="infinite"):
        table_checks.refuse_non_finite([np.nan, np.inf], "f", "c", allow_nan=True)


def test_missing_values_are_counted_and_named(tmp_path):
    rng = np.random.default_rng(11)
    written = [_write_model(tmp_path, "h64", "no9", 0, 3, rng)]
    path = written[0][0]
    good = pq.read_table(path).column("topk_weight").to_pylist()
    # a missing list and a missing entry of another list: two missing values
    _set_column(path, "topk_weight", [None, [0.5, None, 0.1], good[2]])
    with pytest.raises(ValueError) as err:
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert str(err.value) == (
        f"{path}: column topk_weight has 2 missing (null) value(s); "
        f"refusing to summarise it (rerun the job that wrote it)"
    )
    _set_column(path, "topk_weight", good)
    _set_column(path, "bce_x_xhat", [None, 60.0, 70.0])
    with pytest.raises(ValueError, match=rf"^{path}: column bce_x_xhat has 1 missing \(null\)"):
        _tables(tmp_path, written, [("h64", "no9", 0)])
    _set_column(path, "bce_x_xhat", [50.0, 60.0, 70.0])
    _set_column(path, "nn_dist", [None, 1.0, 2.0])
    with pytest.raises(ValueError) as err:
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert str(err.value) == (
        f"{path}: column nn_dist has 1 missing (null) value(s) (the "
        f"memorisation columns are null in every row or in none); "
        f"refusing to summarise it (rerun the job that wrote it)"
    )
    _set_column(path, "nn_dist", [0.5, 1.0, 2.0])
    elbo = written[0][3]
    values = pq.read_table(elbo).column("kl").to_pylist()
    _set_column(elbo, "kl", [values[0], None, values[2]], writer=E.write_table)
    with pytest.raises(ValueError, match=rf"^{elbo}: column kl has 1 missing \(null\)"):
        _tables(tmp_path, written, [("h64", "no9", 0)])


def test_nan_reasons_name_only_their_own_column(tmp_path):
    rng = np.random.default_rng(12)
    written = [_write_model(tmp_path, "h64", "no9", 0, 3, rng)]
    path = written[0][0]
    _set_column(path, "nn_ratio", [0.5, np.nan, 0.2])
    with pytest.raises(ValueError) as err:
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert str(err.value) == (
        f"{path}: column nn_ratio has 1 NaN value(s) (rows 1) (NaN only "
        f"for a model with a single training row); refusing to summarise "
        f"it (rerun the job that wrote it)"
    )
    _set_column(path, "nn_ratio", [0.5, 0.1, 0.2])
    _set_column(path, "nn_dist", [0.5, np.nan, 0.2])
    with pytest.raises(ValueError) as err:
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert str(err.value) == (
        f"{path}: column nn_dist has 1 NaN value(s) (rows 1); refusing "
        f"to summarise it (rerun the job that wrote it)"
    )
    _set_column(path, "nn_dist", [0.5, 0.1, 0.2])
    hist = written[0][1]
    pd.DataFrame(
        {"epoch": [1, 2], "train_neg_elbo": [1.0, 2.0], "test_neg_elbo": [1.0, np.nan]}
    ).to_csv(hist, index=False)
    with pytest.raises(ValueError) as err:
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert str(err.value) == (
        f"{hist}: column test_neg_elbo has 1 NaN value(s) (rows 1) (NaN "
        f"only for a model without test images); refusing to summarise "
        f"it (rerun the job that wrote it)"
    )
    pd.DataFrame(
        {"epoch": [1, 2], "train_neg_elbo": [1.0, np.nan], "test_neg_elbo": [1.0, 2.0]}
    ).to_csv(hist, index=False)
    with pytest.raises(ValueError) as err:
        _tables(tmp_path, written, [("h64", "no9", 0)])
    assert str(err.value) == (
        f"{hist}: column train_neg_elbo has 1 NaN value(s) (rows 1); "
        f"refusing to summarise it (rerun the job that wrote it)"
    )
    pd.DataFrame(
        {"epoch": [1, 2], "train_neg_elbo": [1.0, "abc"], "test_neg_elbo": [1.0, 2.0]}
    ).to_csv(hist, index=False)
    with pytest.raises(
        ValueError,
        match=rf"^{hist}: column train_neg_elbo holds non-numbers "
        rf"\(could not convert",
    ):
        _tables(tmp_path, written, [("h64", "no9", 0)])


def test_single_training_row_with_one_test_image_keeps_its_nan_ratio(tmp_path):
    rng = np.random.default_rng(13)
    one = _write_model(tmp_path, "mini", "mini", 0, 1, rng, k=1)
    _set_column(one[0], "nn_ratio", [np.nan])
    summary = _tables(tmp_path, [one], [("mini", "mini", 0)])
    assert np.isnan(summary.nn_ratio_median[0]) and summary.n_test[0] == 1


def test_read_theorem1_checks_the_data_fingerprint(tmp_path):
    from vae_novelty.data import DataError

    written = _write_model(tmp_path, "h64", "no9", 0, 2, np.random.default_rng(14))
    table, meta = tables.read_theorem1(written[0], "h64.no9.s0", DATA)
    assert table.num_rows == 2 and meta["model_id"] == "h64.no9.s0"
    with pytest.raises(DataError, match="made from data 0123456789abcdef"):
        tables.read_theorem1(written[0], "h64.no9.s0", "fedcba9876543210")
    with pytest.raises(DataError, match="made from data 0123456789abcdef"):
        tables.write_tables(
            [written[0]],
            [written[1]],
            [("h64", "no9", 0)],
            table_path=tmp_path / "t.parquet",
            summary_path=tmp_path / "s.csv",
            training_path=tmp_path / "h.csv",
            expect_data="fedcba9876543210",
        )


def test_write_tables_without_models_and_into_new_folders(tmp_path):
    out = tmp_path / "a" / "b"
    summary = tables.write_tables(
        [],
        [],
        [],
        table_path=out / "t" / "theorem1.parquet",
        summary_path=out / "s" / "summary.csv",
        training_path=out / "h" / "training.csv",
        expect_data=DATA,
    )
    assert summary.empty and list(summary.columns) == list(tables.SUMMARY_COLUMNS)
    assert pd.read_csv(out / "s" / "summary.csv").columns.tolist() == list(tables.SUMMARY_COLUMNS)
    combined = pq.read_table(out / "t" / "theorem1.parquet")
    assert combined.num_rows == 0
    assert combined.schema.equals(t1t.table_schema(), check_metadata=False)
    assert pd.read_csv(out / "h" / "training.csv").columns.tolist() == list(tables.HISTORY_KEYS)


def test_combined_table_records_its_models_and_data(tmp_path):
    import json

    rng = np.random.default_rng(15)
    models = [("h64", "full", 0), ("h64", "no9", 0)]
    written = [_write_model(tmp_path, *m, 2, rng) for m in models]
    tables.write_tables(
        [w[0] for w in written],
        [w[1] for w in written],
        models,
        table_path=tmp_path / "t.parquet",
        summary_path=tmp_path / "s.csv",
        training_path=tmp_path / "h.csv",
        expect_data=DATA,
    )
    meta = json.loads(pq.read_table(tmp_path / "t.parquet").schema.metadata[b"vae_novelty"])
    assert meta["models"] == ["h64.full.s0", "h64.no9.s0"] and meta["data"] == DATA
    assert "code_version" in meta


def test_list_lengths_must_match(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"^2 Theorem 1 tables, 1 histories and 1 models: the "
        r"lists must match$",
    ):
        tables.write_tables(
            ["a", "b"],
            ["h"],
            [("h64", "no9", 0)],
            table_path=tmp_path / "t",
            summary_path=tmp_path / "s",
            training_path=tmp_path / "h",
        )
    with pytest.raises(ValueError, match=r"^0 ELBO tables and 1 models: the lists must match$"):
        tables.write_tables(
            ["a"],
            ["h"],
            [("h64", "no9", 0)],
            elbo_paths=[],
            table_path=tmp_path / "t",
            summary_path=tmp_path / "s",
            training_path=tmp_path / "h",
        )


def test_stack_histories_numbers_rows_afresh_and_has_keys_when_empty():
    h = pd.DataFrame({"epoch": [1, 2], "train_neg_elbo": [1.0, 2.0], "test_neg_elbo": [3.0, 4.0]})
    keys = [{"model_id": f"m{i}", "arch": "a", "split": "s", "seed": i} for i in range(2)]
    out = tables.stack_histories([(keys[0], h), (keys[1], h)])
    assert out.index.tolist() == [0, 1, 2, 3] and out.model_id.tolist() == ["m0"] * 2 + ["m1"] * 2
    assert tables.stack_histories([]).columns.tolist() == list(tables.HISTORY_KEYS)
