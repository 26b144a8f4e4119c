"""``gru4rec recommend``: one session, batch files, outputs and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gru4rec.cli.main import main


@pytest.fixture(scope="module")
def model_path(make_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Int ids 10..15 ranked by their output bias alone: 10 > 11 > ... > 15."""
    model = make_model(6, layers=(4,), ids=list(range(10, 16)))
    wyb = model.net_.params["Wyb"]
    wyb.zero_()
    wyb[:, -1] = torch.arange(6, 0, -1, dtype=torch.float32)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    model.save(path)
    return path


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = main(["recommend", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_session(model_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, model_path, "--session", "10,12", "-k", "3", "--exclude-seen")
    assert code == 0
    assert out.splitlines() == ["Rank\tItemId\tScore", "1\t11\t5.000000", "2\t13\t3.000000",
                                "3\t14\t2.000000"]


def test_candidates_file(model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
                         ) -> None:
    cand = tmp_path / "cand.txt"
    cand.write_text("15\n13\n\n99\n")
    code, out, _ = run(capsys, model_path, "--session", "10", "--candidates", cand)
    assert code == 0 and [line.split("\t")[1] for line in out.splitlines()[1:]] == ["13", "15"]


def test_batch_tsv_input_to_tsv_output(model_path: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.tsv"
    src.write_text("SessionId\tItemId\tTime\nb\t10\t2\na\t11\t5\nb\t12\t1\na\t77\t6\n")
    dst = tmp_path / "out.tsv"
    code, _, err = run(capsys, model_path, "--input", src, "--output", dst, "-k", "2",
                       "--exclude-seen")
    assert code == 0 and "2 session(s)" in err
    assert dst.read_text().splitlines() == [
        "SessionId\tRank\tItemId\tScore", "b\t1\t11\t5.000000", "b\t2\t13\t3.000000",
        "a\t1\t10\t6.000000", "a\t2\t12\t4.000000"]


def test_csv_without_time_and_jsonl_output(model_path: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.csv"
    src.write_text("SessionId,ItemId\n1,10\n1,11\n2,15\n")
    dst = tmp_path / "out.jsonl"
    assert run(capsys, model_path, "--input", src, "--output", dst, "-k", "1",
               "--exclude-seen")[0] == 0
    rows = [json.loads(line) for line in dst.read_text().splitlines()]
    assert rows == [{"session_id": 1, "items": [12], "scores": [4.0]},
                    {"session_id": 2, "items": [10], "scores": [6.0]}]


def test_jsonl_input_json_output(model_path: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('[10, "11"]\n\n["15"]\n')
    dst = tmp_path / "out.json"
    assert run(capsys, model_path, "--input", src, "--output", dst, "-k", "6",
               "--exclude-seen")[0] == 0
    rows = json.loads(dst.read_text())
    assert [r["session_id"] for r in rows] == [1, 3]
    assert rows[0]["items"] == [12, 13, 14, 15]  # -inf entries (seen items) are left out
    assert len(rows[1]["items"]) == 5


def test_json_array_input_to_stdout(model_path: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "in.json"
    src.write_text('[[10], [11, 12]]')
    code, out, _ = run(capsys, model_path, "--input", src, "-k", "1")
    assert code == 0 and out.splitlines() == ["SessionId\tRank\tItemId\tScore",
                                              "1\t1\t10\t6.000000", "2\t1\t10\t6.000000"]


@pytest.mark.parametrize(("name", "content", "extra", "message"), [
    ("in.jsonl", "[10, 11]\n{bad\n", [], "line 2: not valid JSON"),
    ("in.jsonl", '{"a": 1}\n', [], "line 1: expected a JSON list of item ids"),
    ("in.jsonl", "[1.5]\n", [], "expected a JSON list of item ids"),
    ("in.jsonl", "\n\n", [], "holds no session"),
    ("in.json", "[1, 2]", [], "expected a JSON array of item-id lists"),
    ("in.tsv", "Session\tItem\tTime\n1\t2\t3\n", [], "missing column"),
    ("in.csv", "SessionId,Item\n1,2\n", [], "SessionId and ItemId"),
    ("in.tsv", "SessionId\tItemId\n", [], "no events"),
    ("in.xyz", "x", [], "unsupported file extension"),
    ("in.jsonl", "[10]\n", ["--output", "out.csv"], "use .tsv, .jsonl or .json"),
    ("in.jsonl", "[10]\n", ["--candidates", "none.txt"], "cannot read the candidates file"),
    ("in.jsonl", "[10]\n", ["--candidates", "empty.txt"], "holds no item id"),
])
def test_bad_input_is_one_error_line(model_path: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture, name: str, content: str,
                                     extra: list[str], message: str) -> None:
    (tmp_path / name).write_text(content)
    (tmp_path / "empty.txt").write_text("\n")
    extra = [str(tmp_path / e) if e.endswith((".txt", ".csv")) else e for e in extra]
    code, out, err = run(capsys, model_path, "--input", tmp_path / name, *extra)
    assert code == 2 and message in err and err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1 and out == ""


@pytest.mark.parametrize(("argv", "message"), [
    (["--session", ","], "needs at least one item id"),
    (["--session", "10", "-k", "0"], "expected a positive integer"),
    (["--input", "missing.tsv"], "file does not exist"),
    ([], "one of the arguments --session --input is required"),
])
def test_bad_arguments(model_path: Path, capsys: pytest.CaptureFixture, argv: list[str],
                       message: str) -> None:
    code, _, err = run(capsys, model_path, *argv)
    assert code == 2 and message in err


def test_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code, _, err = run(capsys, tmp_path / "nope.pt", "--session", "1")
    assert code == 2 and "does not exist" in err
