"""requirements.txt as pip reads it: the same lines, the same continuations
and comments (pip's own parser is the reference), and only what names
packages reaches the file pip is given."""

from __future__ import annotations

import pytest
from pip._internal.req import req_file

from ignite_server.domain import requirements
from ignite_server.domain.errors import InvalidArgument

#: pip's own edge cases (its tests of join_lines and ignore_comments), and
#: the continuation that a comment line never makes.
PIP_CASES = [
    "line 1\nline 2:1 \\\nline 2:2\nline 3:1 \\\nline 3:2 \\\nline 3:3\nline 4\n",
    "line 1\nline 2 \\\n",
    "six==1.16.0\n# comment \\\n--index-url http://evil.example/simple\n",
    "six # comment \\\n--index-url http://evil.example/simple\nrequests\n",
    "  # indented comment \\\nsix\n",
    "six\\\n==1.16.0\n",
    "six \\\n  # c\nattrs\n",
    "req1 # comment\nreq2 #comment\n#comment\n   # comment\n",
    "a#b\n",
]


@pytest.mark.parametrize("text", PIP_CASES)
def test_lines_are_joined_and_comments_dropped_exactly_as_pip_does(text: str) -> None:
    theirs = list(req_file.preprocess(text))
    ours = [
        (number, stripped)
        for number, line in requirements._logical_lines(text)
        if (stripped := requirements.COMMENT.sub("", line).strip())
    ]
    assert ours == theirs


def test_an_option_after_a_comment_line_is_refused_as_pip_would_read_it() -> None:
    with pytest.raises(InvalidArgument) as refused:
        requirements.check("six==1.16.0\n# comment \\\n--index-url http://evil.example/simple\n")
    assert refused.value.reason == "REQUIREMENT_NOT_ALLOWED"
    assert refused.value.metadata["line"] == "3"


def test_what_pip_is_given_is_each_requirement_written_anew() -> None:
    accepted = requirements.check(
        "six == 1.16.0 --hash sha256:abc  # pinned\n"
        "requests[socks]>=2.31 ; python_version >= '3.8' \\\n"
        "  --hash=sha256:def\n"
    )
    assert requirements.render(accepted) == (
        "six==1.16.0 --hash=sha256:abc\n"
        'requests[socks]>=2.31; python_version >= "3.8" --hash=sha256:def\n'
    )


@pytest.mark.parametrize(
    "line",
    [
        "--no-binary :all:",
        "-i http://evil.example/simple",
        "--extra-index-url=http://evil.example",
        "-e .",
        "./local",
        "pkg @ https://evil.example/pkg.whl",
        "dist/pkg-1.0.tar.gz",
        "-r other.txt",
    ],
)
def test_options_urls_and_paths_are_refused(line: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        requirements.check(f"six\n{line}\n")
    assert refused.value.reason == "REQUIREMENT_NOT_ALLOWED"
