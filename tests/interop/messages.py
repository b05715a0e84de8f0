"""Message shapes for the interop matrix (CRLF line ends; From in the test domain)."""

from __future__ import annotations

from dataclasses import dataclass

FROM = b"From: Alice Example <alice@interop.test>\r\n"
COMMON = (b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
          b"Message-ID: <interop-1@interop.test>\r\n")


@dataclass(frozen=True)
class Shape:
    name: str
    message: bytes
    #: the body does not end in CRLF (some peers mishandle that; see PEERS.md)
    no_final_crlf: bool = False

    def __str__(self) -> str:
        return self.name


PLAIN = Shape("plain", FROM + b"To: Bob <bob@example.org>\r\n"
              b"Subject: Plain text\r\n" + COMMON + b"\r\n"
              b"Hello Bob,\r\n\r\nthis is a plain message.\r\n\r\n-- \r\nAlice\r\n")

FOLDED = Shape("folded-headers", FROM
               + b"To: Bob <bob@example.org>,\r\n\tCarol <carol@example.org>,\r\n"
               b"  Dave  <dave@example.org>\r\n"
               b"Subject: A subject that is folded\r\n over two lines\r\n"
               b"X-Folded: one\r\n\t two  \t three \r\n"
               + COMMON + b"\r\nFolded headers above.\r\n")

TRAILING = Shape("trailing-space", FROM + b"To: bob@example.org\r\n"
                 b"Subject: Trailing whitespace \r\n" + COMMON + b"\r\n"
                 b"line with trailing spaces   \r\n"
                 b"  \t indented line with tabs\t\t\r\n"
                 b"inner  spaces \t and tabs\r\n"
                 b" \r\n\r\n\t\r\n\r\n\r\n")

NO_FINAL_CRLF = Shape("no-final-crlf", FROM + b"To: bob@example.org\r\n"
                      b"Subject: No line break at the end\r\n" + COMMON + b"\r\n"
                      b"first line\r\nlast line, no CRLF", no_final_crlf=True)

EIGHT_BIT = Shape("8bit", FROM + b"To: J\xc3\xbcrgen <juergen@example.org>\r\n"
                  b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n" + COMMON
                  + b"MIME-Version: 1.0\r\n"
                  b"Content-Type: text/plain; charset=utf-8\r\n"
                  b"Content-Transfer-Encoding: 8bit\r\n\r\n"
                  + "Grüße aus Köln — 東京 ✓\r\nLatin-1 byte: ".encode() + b"\xe9\xff\r\n")

MULTI_TO = Shape("multiple-to", FROM + b"To: bob@example.org\r\n"
                 b"Subject: Two To fields\r\n"
                 b"To: carol@example.org\r\n" + COMMON + b"\r\nTwo To fields.\r\n")

LONG_SUBJECT = Shape("long-subject", FROM + b"To: bob@example.org\r\n"
                     b"Subject: " + b" ".join(b"word%03d" % i for i in range(120)) + b"\r\n"
                     + COMMON + b"\r\n" + b"x" * 900 + b"\r\n" + b"body line\r\n" * 50)

EMPTY_BODY = Shape("empty-body", FROM + b"To: bob@example.org\r\n"
                   b"Subject: Nothing to say\r\n" + COMMON + b"\r\n")

HEADERS_ONLY = Shape("headers-only", FROM + b"To: bob@example.org\r\n"
                     b"Subject: No blank line, no body\r\n" + COMMON)

#: every field mailseal signs by default present, so h= is long and folds
MANY_HEADERS = Shape("many-headers", FROM + b"Reply-To: reply@interop.test\r\n"
                     b"To: bob@example.org\r\nCc: carol@example.org\r\n"
                     b"Subject: Many fields\r\n" + COMMON
                     + b"In-Reply-To: <earlier@example.org>\r\n"
                     b"References: <first@example.org> <earlier@example.org>\r\n"
                     b"List-Id: Interop list <list.interop.test>\r\n"
                     b"List-Help: <mailto:list-help@interop.test>\r\n"
                     b"List-Unsubscribe: <mailto:list-leave@interop.test>\r\n"
                     b"List-Subscribe: <mailto:list-join@interop.test>\r\n"
                     b"List-Post: <mailto:list@interop.test>\r\n"
                     b"List-Owner: <mailto:list-owner@interop.test>\r\n"
                     b"List-Archive: <https://interop.test/archive>\r\n"
                     b"Resent-Date: Sun, 22 Nov 2026 11:00:00 +0000\r\n"
                     b"Resent-From: resender@interop.test\r\n"
                     b"Resent-Sender: resender@interop.test\r\n"
                     b"Resent-To: dave@example.org\r\nResent-Cc: erin@example.org\r\n"
                     b"Sender: list-bounces@interop.test\r\nMIME-Version: 1.0\r\n"
                     b"Content-Type: text/plain; charset=us-ascii\r\n"
                     b"Content-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n"
                     b"\r\nA message with many signed fields.\r\n")

SHAPES = (PLAIN, FOLDED, TRAILING, NO_FINAL_CRLF, EIGHT_BIT, MULTI_TO, LONG_SUBJECT,
          EMPTY_BODY, HEADERS_ONLY, MANY_HEADERS)
