"""E-mail headers Baton writes itself, so no user text can add one, whatever the Python.

CPython's header folder (``email.policy``, before 3.11.10 / 3.12.5) decodes an RFC 2047
encoded-word it finds in a value and writes the decoded CR/LF out raw: a problem summary
``=?utf-8?q?Printer_down=0D=0ABcc:_y@attacker.test?=`` became a real ``Bcc`` header of
every senior's e-mail (and ``Content-Type`` plus a blank line, an HTML body). Baton
accepts those Pythons, so the stdlib never folds a header holding user text here:

1. ``header_text`` makes user text one line of printable characters (every character
   ``str.splitlines`` breaks on, and every other control, format or separator
   character, becomes a space) and breaks the opener of every encoded-word (``=?`` →
   ``= ?``), so no reader, nor a system that re-sends the subject, ever decodes one.
2. ``header_lines`` writes the header lines: printable ASCII as it is, folded at spaces;
   anything else as RFC 2047 ``B`` encoded-words of UTF-8, whose base64 carries no
   character of the user's through.
3. ``check_message`` parses the flattened message back, with a strict line check of
   its own and with the stdlib parser a receiving Python would use, and refuses it
   unless its header names are exactly those Baton wrote, in order; every copy sent
   (the template addressed to one recipient) passes the strict check again.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import re
from collections.abc import Sequence

LINE_MAX_CHARS = 78  # RFC 5322 §2.1.1: SHOULD
HARD_LINE_MAX_CHARS = 998  # RFC 5322 §2.1.1: MUST
ENCODED_WORD_MAX_CHARS = 75  # RFC 2047 §2
_ENCODED_WORD_PREFIX = "=?utf-8?b?"
_ENCODED_WORD_SUFFIX = "?="
_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_CRLF = "\r\n"


class MalformedMessage(ValueError):
    """A message whose headers are not exactly the ones Baton wrote: never sent."""


def header_text(text: str) -> str:
    """``text`` as one line of printable characters with no encoded-word in it."""
    # isprintable() is False for every Unicode "Other" and "Separator" character except
    # the ASCII space: CR, LF, \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029, NUL, tabs,
    # bidi and zero-width controls, lone surrogates.
    printable = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(printable.split()).replace("=?", "= ?")


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def _fold_words(name: str, value: str) -> list[str]:
    """Printable ASCII, folded at its spaces so lines stay within 78 characters where
    a word allows (unfolding gives the value back: the fold keeps the space)."""
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if len(line) > len(name) + 1 and len(line) + 1 + len(word) > LINE_MAX_CHARS:
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    return lines


def _encoded_words(name: str, value: str) -> list[str]:
    """``value`` as UTF-8 ``B`` encoded-words, one per line, split between characters."""
    lines: list[str] = []
    prefix = f"{name}: "
    chunk = ""
    for ch in value:
        candidate = chunk + ch
        if len(_encoded(candidate)) > min(ENCODED_WORD_MAX_CHARS, LINE_MAX_CHARS - len(prefix)) and chunk:
            lines.append(prefix + _encoded(chunk))
            prefix, chunk = " ", ch
        else:
            chunk = candidate
    lines.append(prefix + _encoded(chunk))
    return lines


def _encoded(text: str) -> str:
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return f"{_ENCODED_WORD_PREFIX}{payload}{_ENCODED_WORD_SUFFIX}"


def header_lines(fields: Sequence[tuple[str, str]]) -> bytes:
    """The header lines of ``fields`` (CRLF after each). A value must already be one line
    (``header_text`` for user text); anything else is refused, never passed on."""
    lines: list[str] = []
    for name, value in fields:
        if not _HEADER_NAME.fullmatch(name):
            raise MalformedMessage(f"not a header name: {name!r}")
        if not value.isprintable():
            raise MalformedMessage(f"{name}: a header value must be one line of printable text")
        if _printable_ascii(value) and "=?" not in value:
            lines += _fold_words(name, value)
        else:
            lines += _encoded_words(name, value)
    if any(len(line) > HARD_LINE_MAX_CHARS for line in lines):
        raise MalformedMessage("a header line is longer than 998 characters")
    return "".join(line + _CRLF for line in lines).encode("ascii")


_PARSER = email.parser.BytesParser(policy=email.policy.default)


# One header block: lines of printable ASCII (tabs allowed), each ended by CRLF.
_HEADER_BLOCK = re.compile(rb"(?:[\x20-\x7e\t]*\r\n)+")


def check_header_lines(raw: bytes, expected_names: Sequence[str]) -> None:
    """The strict half of ``check_message``, cheap enough for every copy sent: the header
    block is lines of printable ASCII, and its header names are ``expected_names`` in
    order (continuation lines aside)."""
    head, separator, _ = raw.partition(b"\r\n\r\n")
    if not separator:
        raise MalformedMessage("no blank line between the headers and the body")
    if not _HEADER_BLOCK.fullmatch(head + b"\r\n"):
        raise MalformedMessage(
            "a header line holds a control character, a bare CR or LF, or a non-ASCII byte"
        )
    names: list[str] = []
    for number, line in enumerate(head.decode("ascii").split("\r\n")):
        if line[:1] in (" ", "\t"):
            if number == 0:
                raise MalformedMessage("the message starts with a continuation line")
            continue
        name, colon, _ = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise MalformedMessage(f"header line {number + 1} is not 'Name: value'")
        names.append(name.lower())
    if names != [n.lower() for n in expected_names]:
        raise MalformedMessage(f"headers {names} are not the ones written {list(expected_names)}")


def check_message(raw: bytes, expected_names: Sequence[str], *, content_type: str = "text/plain") -> None:
    """Raise ``MalformedMessage`` unless ``raw``'s header names are ``expected_names``,
    in that order, each once, by our strict reading and by the stdlib parser a receiving
    Python would use, and its one part is ``content_type``."""
    check_header_lines(raw, expected_names)
    parsed = _PARSER.parsebytes(raw)
    parsed_names = [name.lower() for name in parsed.keys()]  # noqa: SIM118 (a list, repeats included)
    if parsed_names != [n.lower() for n in expected_names]:
        raise MalformedMessage(f"parsed back, the headers are {parsed.keys()}")
    if parsed.is_multipart() or parsed.get_content_type() != content_type:
        raise MalformedMessage(f"parsed back, the message is {parsed.get_content_type()}")
    for name, value in parsed.items():
        if not str(value).isprintable():
            raise MalformedMessage(f"parsed back, {name} holds a control character")
