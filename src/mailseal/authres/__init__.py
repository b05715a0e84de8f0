"""Authentication-Results (RFC 8601): values, formatting, parsing. Pure, no I/O.

>>> ar = AuthenticationResults("mx.example.com", None, (
...     MethodResult("spf", "pass", properties=(Property("smtp", "mailfrom", "example.net"),)),
... ))
>>> format_value(ar)
'mx.example.com; spf=pass smtp.mailfrom=example.net'
>>> parse_value(format_value(ar)) == ar
True
"""

from mailseal.authres.format import DEFAULT_FOLD, FIELD_NAME, format_field, format_value
from mailseal.authres.lexer import MAX_COMMENT_DEPTH, AuthResParseError
from mailseal.authres.model import AuthenticationResults, MethodResult, Property
from mailseal.authres.parse import (
    MAX_VALUE_LENGTH,
    carries_authserv_id,
    parse_field,
    parse_value,
)

__all__ = [
    "DEFAULT_FOLD",
    "FIELD_NAME",
    "MAX_COMMENT_DEPTH",
    "MAX_VALUE_LENGTH",
    "AuthResParseError",
    "AuthenticationResults",
    "MethodResult",
    "Property",
    "carries_authserv_id",
    "format_field",
    "format_value",
    "parse_field",
    "parse_value",
]
