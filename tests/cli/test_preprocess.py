"""``gru4rec preprocess``: a successful run, Parquet output, and every bad input giving one
``error:`` line, exit code 2 and no output folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pl = pytest.importorskip("polars")

from gru4rec.cli.main import main  # noqa: E402

RETAILROCKET = """\
timestamp,visitorid,event,itemid,transactionid
1433221332117,257597,view,355908,
1433224214164,992329,view,248676,
"""
REES46 = """\
event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-11-01 00:00:00 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,a
2019-11-01 00:00:01 UTC,view,3900821,2053013552326770905,,aqua,33.20,554748717,b
"""


def _raw(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_run_prints_statistics_and_writes_four_files(tmp_path, capsys, rsc15_clicks) -> None:
    raw = _raw(tmp_path, "yoochoose-clicks.dat", rsc15_clicks)
    out = tmp_path / "rsc15"
    assert main(["preprocess", "rsc15", raw, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["test.tsv", "train_full.tsv",
                                                      "train_tr.tsv", "train_valid.tsv"]
    assert "test: 8 events, 3 sessions, 4 items; session length min/mean/max 2/2.67/3" \
        in captured.out
    assert "2014-04-08 12:00:30 UTC" in captured.out
    assert "train_valid: 2 events, 1 sessions, 2 items" in captured.out
    assert "] items >= 5: 28 events, 12 sessions, 5 items" in captured.err  # progress
    lines = (out / "test.tsv").read_text().splitlines()
    assert lines[0] == "SessionId\tItemId\tTime"
    assert lines[1] == "10\t1001\t1396868400.0"
    assert lines[-1] == "14\t1005\t1396958430.123"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rsc15")]  # no temp left


def test_parquet_output_and_replacing_existing_files(tmp_path, capsys, rsc15_clicks) -> None:
    raw = _raw(tmp_path, "yoochoose-clicks.dat", rsc15_clicks)
    out = tmp_path / "out"
    out.mkdir()
    (out / "test.parquet").write_text("old")
    (out / "notes.txt").write_text("kept")
    assert main(["preprocess", "rsc15", raw, "-o", str(out), "--format", "parquet"]) == 0
    frame = pl.read_parquet(out / "test.parquet")
    assert frame.columns == ["SessionId", "ItemId", "Time"]
    assert frame.height == 8 and frame.schema["Time"] == pl.Float64
    assert (out / "notes.txt").read_text() == "kept"
    assert len(list(out.glob("*.parquet"))) == 4


def test_generic_from_the_command_line(tmp_path, capsys) -> None:
    raw = _raw(tmp_path, "log.tsv", "s\ti\tt\n" + "".join(
        f"{s}\t{i}\t{t}\n" for s, i, t in [(1, 5, 0), (1, 6, 1), (2, 5, 100_000),
                                          (2, 6, 100_001), (3, 5, 200_000), (3, 6, 200_001)]))
    out = tmp_path / "mine"
    code = main(["preprocess", "generic", raw, "-o", str(out), "--session-col", "s",
                 "--item-col", "i", "--time-col", "t", "--min-item-support", "1"])
    assert code == 0, capsys.readouterr().err
    assert (out / "test.tsv").read_text() == "SessionId\tItemId\tTime\n3\t5\t200000\n3\t6\t200001\n"


def test_keep_user_from_the_command_line(tmp_path, capsys, rsc15_clicks) -> None:
    raw = _raw(tmp_path, "log.tsv", "u\ti\tt\n" + "".join(
        f"{u}\t{i}\t{t}\n" for u, i, t in [(7, 5, 0), (7, 6, 1), (8, 5, 100_000),
                                          (8, 6, 100_001), (7, 5, 200_000), (7, 6, 200_001)]))
    out = tmp_path / "mine"
    code = main(["preprocess", "generic", raw, "-o", str(out), "--user-col", "u",
                 "--item-col", "i", "--time-col", "t", "--min-item-support", "1",
                 "--keep-user"])
    assert code == 0, capsys.readouterr().err
    assert (out / "test.tsv").read_text() == \
        "SessionId\tItemId\tTime\tUserId\n2\t5\t200000\t7\n2\t6\t200001\t7\n"
    clicks = _raw(tmp_path, "clicks.dat", rsc15_clicks)
    assert main(["preprocess", "rsc15", clicks, "-o", str(tmp_path / "o"), "--keep-user"]) == 2
    err = capsys.readouterr().err
    assert "does not take the option(s) keep_user" in err and not (tmp_path / "o").exists()


# (dataset, [(file name, text, or a function of the hand-made rsc15 file's text)], problem)
BAD_INPUTS = {
    "wrong separator": ("rsc15", [("clicks.dat", lambda clicks: clicks.replace(",", "\t"))],
                        "wrong separator: the fields are tab-separated, expected comma"),
    "missing column": ("rees46", [("2019-Nov.csv", REES46.replace(",user_id,", ",uid,"))],
                       "missing column user_id"),
    "unparsable timestamp": ("rsc15", [("clicks.dat", lambda clicks: clicks.replace(
        "2014-04-08T11:31:00.000Z", "2014-04-08 11:31"))], "line 33: timestamp"),
    "unparsable timestamp later on": ("rsc15", [("clicks.dat", lambda clicks: clicks * 2 +
        clicks.replace("2014-04-08T11:31:00.000Z", "yesterday"))],
        "line 107: timestamp 'yesterday' is not a timestamp like 2014-04-07T10:51:09.277Z"),
    "empty file": ("rsc15", [("clicks.dat", "")], "the file is empty"),
    "retailrocket given to rsc15": ("rsc15", [("events.csv", RETAILROCKET)],
                                    "line 1 has 5 fields, expected 4"),
    "yoochoose given to rees46": ("rees46", [("yoochoose-clicks.dat", lambda clicks: clicks)],
                                  "missing columns event_time, event_type, product_id, user_id"),
    "header only": ("retailrocket", [("events.csv", RETAILROCKET.splitlines()[0] + "\n")],
                    "has a header line but no data lines"),
    "unparsable item deep in the file": ("diginetica", [("views.csv", "sessionId;userId;"
                                         "itemId;timeframe;eventdate\n" + "1;;5;0;2016-05-01\n"
                                         * 30 + "2;;x;0;2016-05-01\n")], "cannot be parsed"),
}
FORMATS = {"rsc15": "expected yoochoose-clicks.dat format: no header line, 4 comma-separated "
                    "fields session_id,timestamp,item_id,category, e.g. "
                    "'1,2014-04-07T10:51:09.277Z,214536502,0'",
           "rees46": "expected REES46 2019-Oct.csv / 2019-Nov.csv format: a header line, 9",
           "retailrocket": "expected Retailrocket events.csv format: a header line",
           "diginetica": "expected DIGINETICA train-item-views.csv format: a header line, 5 "
                         "semicolon-separated"}


def _assert_one_error_line(capsys, *parts: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_no_output(tmp_path, capsys, rsc15_clicks: str,
                                                   case: str) -> None:
    dataset, files, problem = BAD_INPUTS[case]
    raws = [_raw(tmp_path, name, text(rsc15_clicks) if callable(text) else text)
            for name, text in files]
    out = tmp_path / "out"
    assert main(["preprocess", dataset, *raws, "-o", str(out)]) == 2
    _assert_one_error_line(capsys, problem, FORMATS[dataset])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, _ in files)


def test_failure_leaves_an_existing_folder_untouched(tmp_path, capsys, rsc15_clicks) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "test.tsv").write_text("previous run")
    raw = _raw(tmp_path, "clicks.dat", rsc15_clicks.replace("T11:00:00.000Z,1008",
                                                            "T11:00:00.000Z,x"))
    assert main(["preprocess", "rsc15", raw, "-o", str(out)]) == 2
    _assert_one_error_line(capsys, "cannot be parsed")  # line 30: past the checked head
    assert [p.name for p in out.iterdir()] == ["test.tsv"]
    assert (out / "test.tsv").read_text() == "previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clicks.dat", "out"]


def test_too_little_data_ends_with_an_error_line(tmp_path, capsys) -> None:
    raw = _raw(tmp_path, "events.csv", RETAILROCKET)
    assert main(["preprocess", "retailrocket", raw, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("error: retailrocket: the train_full split is empty")
    assert err[0].startswith("[") and "view events: 2 events" in err[0]  # progress before
    assert not (tmp_path / "o").exists()


def test_missing_raw_path(tmp_path, capsys) -> None:
    assert main(["preprocess", "rsc15", str(tmp_path / "nope.dat"), "-o",
                 str(tmp_path / "o")]) == 2
    _assert_one_error_line(capsys, "nope.dat does not exist", "recsys.acm.org")
    assert not (tmp_path / "o").exists()


def test_wrong_number_of_raw_files(tmp_path, capsys, rsc15_clicks) -> None:
    raw = _raw(tmp_path, "clicks.dat", rsc15_clicks)
    assert main(["preprocess", "yoochoose", raw, "-o", str(tmp_path / "o")]) == 2
    _assert_one_error_line(capsys, "takes 2 raw files, got 1")


def test_unknown_dataset(tmp_path, capsys) -> None:
    assert main(["preprocess", "movielens", "x.csv", "-o", str(tmp_path / "o")]) == 2
    _assert_one_error_line(capsys, "invalid choice: 'movielens'", "rsc15")


def test_generic_options_are_refused_for_paper_recipes(tmp_path, capsys, rsc15_clicks) -> None:
    raw = _raw(tmp_path, "clicks.dat", rsc15_clicks)
    assert main(["preprocess", "rsc15", raw, "-o", str(tmp_path / "o"), "--test-days",
                 "2"]) == 2
    _assert_one_error_line(capsys, "--test-days only applies to the generic recipe")


def test_missing_polars_names_the_install_line(tmp_path, capsys, rsc15_clicks, monkeypatch) -> None:
    raw = _raw(tmp_path, "clicks.dat", rsc15_clicks)
    monkeypatch.setitem(sys.modules, "polars", None)  # makes `import polars` fail
    assert main(["preprocess", "rsc15", raw, "-o", str(tmp_path / "o")]) == 2
    _assert_one_error_line(capsys, 'pip install "gru4rec[polars]"')
    assert not (tmp_path / "o").exists()
