"""The bearer token a client sends, found as the `ablate` CLI finds it
(common/auth/client_token.cc): a token file's first line, the file given or named by
$ABLATE_TOKEN_FILE, else $ABLATE_TOKEN; surrounding whitespace dropped either way."""

from __future__ import annotations

import os
import pathlib

import grpc

from ablate import errors

TOKEN_ENV = "ABLATE_TOKEN"
TOKEN_FILE_ENV = "ABLATE_TOKEN_FILE"


def _refused(message: str) -> errors.Unauthenticated:
    return errors.Unauthenticated(grpc.StatusCode.UNAUTHENTICATED, message)


def _checked(token: str, where: str) -> str:
    """`token` when it can go as gRPC metadata and looks like one token; `where` names its
    source in the error, which never shows the token."""
    for position, character in enumerate(token, 1):
        # gRPC sends only printable ASCII in a text header, and refuses the call otherwise
        # with no word of the token.
        if not " " <= character <= "~" and character != "\t":
            raise _refused(f"{where} holds {character!r} at character {position}, which gRPC "
                          "metadata cannot carry: a token is printable ASCII on one line")
    # The likely mistake: a line of the coordinator's token file (ROLE TOKEN [WORKER_ID]).
    if token.startswith("#") or " " in token or "\t" in token:
        raise _refused(f"{where} is a comment or holds several words; a client's token is the "
                      "token alone (the coordinator's ROLE TOKEN lines are not one)")
    return token


def client_token(token: str | None = None,
                 token_file: str | os.PathLike | None = None) -> str:
    """The token to send: `token`, else the first line of `token_file` or of the file
    $ABLATE_TOKEN_FILE names, else $ABLATE_TOKEN; "" when none is set (the coordinator then
    answers Unauthenticated).

    Raises:
        ablate.Unauthenticated: the file holds no token on its first line, or the token holds a
            character gRPC metadata cannot carry (a line break inside it), or is a comment or
            several words.
        OSError: the token file cannot be read.
    """
    if token:
        return _checked(token.strip(), "the token given")
    token_file = token_file or os.environ.get(TOKEN_FILE_ENV)
    if token_file:
        where = f"token file {os.fspath(token_file)}"
        with pathlib.Path(token_file).open(encoding="utf-8", errors="replace") as file:
            first = file.readline().strip()
        if not first:
            raise _refused(f"{where} holds no token on its first line")
        return _checked(first, f"{where}: its first line")
    return _checked(os.environ.get(TOKEN_ENV, "").strip(), f"${TOKEN_ENV}")
