"""The requirements parser (domain/requirements.py): what a server-side
pip install may be told, read exactly as pip reads it (pip's own parser is
the reference). Package names with versions, extras, markers and hashes
pass, each written anew for the file pip is given; whatever would make pip
fetch or run something else (paths, URLs, options, other files) is refused,
naming the line."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from pip._internal.req import req_file

from ignite_server.domain import requirements
from ignite_server.domain.errors import InvalidArgument


@pytest.mark.parametrize(
    "line",
    [
        "requests",
        "requests==2.31.0",
        "requests>=2.31,<3",
        "requests[socks]>=2.31",
        'requests>=2.31; python_version >= "3.8"',
        'pywin32; sys_platform == "win32"',
        "Django~=4.2",
        "numpy !=1.25.0",
        "zope.interface",
        "my_package-name==1.0",
        "requests==2.31.0 --hash=sha256:" + "a" * 64,
        "requests==2.31.0 --hash sha256:" + "b" * 64,
    ],
)
def test_a_package_from_the_index_is_accepted(line: str) -> None:
    # What pip is given is the requirement written anew from its parsed form.
    [rendered] = requirements.check(line + "\n")
    given, _, hashes = rendered.partition(" --hash=")
    assert Requirement(given) == Requirement(requirements.HASH_OPTION.sub("", line).strip())
    assert ("--hash" in line) == bool(hashes)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("-e .", "pip option -e is not allowed"),
        ("--editable=git+https://example.com/x.git", "pip option --editable"),
        ("-r other.txt", "pip option -r is not allowed"),
        ("-c constraints.txt", "pip option -c is not allowed"),
        ("--index-url https://evil.example/simple", "pip option --index-url"),
        ("--extra-index-url=https://evil.example/simple", "pip option --extra-index-url"),
        ("-i https://evil.example/simple", "pip option -i is not allowed"),
        ("--find-links /tmp", "pip option --find-links"),
        ("--no-binary :all:", "pip option --no-binary"),
        ("--trusted-host evil.example", "pip option --trusted-host"),
        ("./local_package", "only package names"),
        ("/abs/path/pkg", "only package names"),
        ("pkg @ https://evil.example/pkg-1.0.tar.gz", "requirements with a URL"),
        ("pkg @ file:///etc/passwd", "requirements with a URL"),
        ("git+https://github.com/org/repo.git", "only package names"),
        ("https://evil.example/pkg-1.0.tar.gz", "only package names"),
        ("pkg-1.0.tar.gz", "local archives are not allowed"),
        ("pkg-1.0-py3-none-any.whl", "local archives are not allowed"),
    ],
)
def test_anything_that_is_not_a_package_from_the_index_is_refused(line: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        requirements.check(f"requests\n{line}\n")
    assert refused.value.reason == "REQUIREMENT_NOT_ALLOWED"
    assert why in refused.value.message
    assert refused.value.metadata == {"field": "requirements.txt", "line": "2"}


def test_comments_blank_lines_and_continuations_are_read_as_pip_reads_them() -> None:
    text = "# the app's dependencies\n\nrequests==2.31.0  # pinned\nattrs \\\n  >=23.1\n   \n"
    assert requirements.check(text) == ["requests==2.31.0", "attrs>=23.1"]


def test_a_refused_continued_line_is_named_by_its_first_line() -> None:
    with pytest.raises(InvalidArgument) as refused:
        requirements.check("requests\n# note\n--index-url \\\n  https://evil.example\n")
    assert refused.value.metadata["line"] == "3"


def test_a_line_longer_than_the_limit_is_refused_and_shown_shortened() -> None:
    line = "a" * (requirements.MAX_LINE_CHARS + 1)
    with pytest.raises(InvalidArgument) as refused:
        requirements.check(line)
    assert "the line is too long" in refused.value.message
    assert "..." in refused.value.message and line not in refused.value.message


def test_an_empty_file_has_no_requirements() -> None:
    assert requirements.check("") == []
    assert requirements.check("# nothing\n\n") == []


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
