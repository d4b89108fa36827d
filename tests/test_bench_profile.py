"""``make bench BENCH_ARGS=--profile DIR`` reads py-spy's folded stacks (bench/run.py)."""
from bench.run import folded_stacks, summarise_profile

PROCESS = 'process 4242:"python -m gunicorn -c python:config.gunicorn --bind 127.0.0.1:40001 service:create_app()"'
HANDLE = "handle_request (gunicorn/workers/gthread.py:271)"


def test_frame_names_with_spaces_keep_their_count():
    text = (f"{PROCESS};{HANDLE};wsgi_app (flask/app.py:1473);bind (sqlalchemy/sql/elements.py:10) 7\n"
            f"{PROCESS};{HANDLE};<lambda> (service/ratings/api.py:40) 3\n")
    stacks = folded_stacks(text)
    assert [n for _, n in stacks] == [7, 3]
    assert stacks[0][0][0] == PROCESS and stacks[0][0][-1] == "bind (sqlalchemy/sql/elements.py:10)"


def test_a_line_without_a_count_continues_on_the_next_one():
    # A command line holding a line break; the first part ends in "bind)", not a count.
    text = ('process 7:"python -c import x (first\nbind)";' + HANDLE + ";wsgi (x.py:1) 5\r\n"
            "\n" + HANDLE + ";wsgi (x.py:1) 2\n")
    stacks = folded_stacks(text)
    assert [n for _, n in stacks] == [5, 2]
    assert stacks[0][0][0] == 'process 7:"python -c import x (first\nbind)"'


def test_the_summary_counts_request_samples(tmp_path):
    path = tmp_path / "intake.folded"
    path.write_text(f"{PROCESS};{HANDLE};bind (socket.py:1) 3\n{PROCESS};idle (selectors.py:1) 9\n"
                    "torn line without a count (bind)")
    summary = summarise_profile(path)
    assert summary.startswith("profile: 3 request-handling samples")
    assert "100.0%  bind (socket.py:1)" in summary
