"""The lexical layer of the Authentication-Results parser (RFC 5322 §3.2).

A cursor over the decoded field value that reads CFWS (white space, folding,
nested comments), tokens, keywords, quoted-strings and numbers. Everything is
iterative — no recursion, so nesting depth costs no stack — and every error is
an :class:`AuthResParseError` carrying the offset where reading stopped.
"""

from __future__ import annotations

from mailseal.authres import syntax

#: Comments nested deeper than this are refused (RFC 5322 sets no limit; we do).
MAX_COMMENT_DEPTH = 50


class AuthResParseError(ValueError):
    """An Authentication-Results value that does not follow RFC 8601 §2.2."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"{reason} at offset {offset}")
        self.offset = offset  # in the input's units: octets for bytes, characters for str
        self.reason = reason


class Cursor:
    """Reads ``text`` from ``pos``.

    ``lenient=True`` (used only to find a leading authserv-id) lifts the
    comment-nesting cap and accepts any character inside comments and
    quoted-strings.
    """

    __slots__ = ("lenient", "pos", "text")

    def __init__(self, text: str, *, lenient: bool = False) -> None:
        self.text = text
        self.pos = 0
        self.lenient = lenient

    def _accepts(self, char: str) -> bool:
        return self.lenient or syntax.is_text_char(char)

    def error(self, reason: str, at: int | None = None) -> AuthResParseError:
        return AuthResParseError(self.pos if at is None else at, reason)

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        """The next character, or "" at the end."""
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            found = repr(self.peek()) if self.peek() else "end of value"
            raise self.error(f"expected {char!r}, found {found}")
        self.pos += 1

    def _line_break(self) -> None:
        """RFC 5322 §3.2.2 FWS: a line break must be followed by WSP (unfolding
        drops the CRLF, keeps the WSP). A final CRLF ends the field. Bare LF is
        read as CRLF, for values whose line ends were converted."""
        text, pos = self.text, self.pos
        if text.startswith("\r\n", pos):
            after = pos + 2
        elif text[pos] == "\n":
            after = pos + 1
        else:
            raise self.error("CR not followed by LF")
        if after < len(text) and text[after] not in " \t":
            raise self.error("line break not followed by white space")
        self.pos = after

    def cfws(self) -> list[str]:
        """Skip [CFWS]; return the contents of the top-level comments read."""
        comments: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t":
                self.pos += 1
            elif char in "\r\n":
                self._line_break()
            elif char == "(":
                comments.append(self._comment())
            else:
                break
        return comments

    def _quoted_pair(self, buf: list[str]) -> None:
        # RFC 5322 §3.2.1: quoted-pair = "\" (VCHAR / WSP)
        self.pos += 1
        char = self.peek()
        if not char or not self._accepts(char):
            raise self.error("backslash not followed by a visible character or WSP")
        buf.append(char)
        self.pos += 1

    def _comment(self) -> str:
        """RFC 5322 §3.2.2 comment; nested comments are kept as text, quoted-pairs
        decoded, folding removed."""
        start = self.pos
        self.pos += 1
        depth = 1
        buf: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated comment", start)
            char = text[self.pos]
            if char == "\\":
                self._quoted_pair(buf)
                continue
            if char in "\r\n":
                self._line_break()
                continue
            if not self._accepts(char):
                raise self.error("invalid character in comment")
            self.pos += 1
            if char == "(":
                depth += 1
                if depth > MAX_COMMENT_DEPTH and not self.lenient:
                    raise self.error(f"comments nested deeper than {MAX_COMMENT_DEPTH}")
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return "".join(buf)
            buf.append(char)

    def quoted_string(self) -> str:
        """RFC 5322 §3.2.4 quoted-string (the opening DQUOTE is at ``pos``)."""
        start = self.pos
        self.pos += 1
        buf: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated quoted-string", start)
            char = text[self.pos]
            if char == "\\":
                self._quoted_pair(buf)
            elif char == '"':
                self.pos += 1
                return "".join(buf)
            elif char in "\r\n":
                self._line_break()
            elif self._accepts(char):
                buf.append(char)
                self.pos += 1
            else:
                raise self.error("invalid character in quoted-string")

    def token(self) -> str:
        """RFC 2045 token (possibly empty)."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and syntax.is_token_char(text[self.pos]):
            self.pos += 1
        return text[start : self.pos]

    def value(self) -> str:
        """RFC 2045 value = token / quoted-string."""
        if self.peek() == '"':
            return self.quoted_string()
        word = self.token()
        if not word:
            raise self.error("expected a token or quoted-string")
        return word

    def keyword(self) -> str:
        """RFC 5321 §4.1.2 Keyword (Ldh-str), lower-cased."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] in syntax.KEYWORD_CHARS:
            self.pos += 1
        word = text[start : self.pos]
        if not word:
            raise self.error("expected a keyword")
        if word.endswith("-"):
            raise self.error("keyword ends with '-'", start)
        return syntax.ascii_lower(word)

    def number(self, max_digits: int = 9) -> int:
        """1*DIGIT, at most ``max_digits`` of them."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] in syntax.DIGITS:
            self.pos += 1
        digits = text[start : self.pos]
        if not digits:
            raise self.error("expected a number")
        if len(digits) > max_digits:
            raise self.error("version number too long", start)
        return int(digits)

    def bare(self) -> str:
        """An unquoted property value: a run of :func:`syntax.is_bare_char`."""
        start = self.pos
        text = self.text
        while self.pos < len(text) and syntax.is_bare_char(text[self.pos]):
            self.pos += 1
        return text[start : self.pos]
