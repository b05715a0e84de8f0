"""The closed set of DKIM verification outcomes and their RFC 8601 result words.

The human text (for logs and the CLI) and the Authentication-Results word are two
renderings of one ``Reason``; code decides on the enum, never on text.
"""

from __future__ import annotations

import enum

from mailseal.results import Result


class Reason(enum.Enum):
    # (result word, human text)
    PASS = (Result.PASS, "good signature")
    BODY_HASH_MISMATCH = (Result.FAIL, "body hash did not verify")
    SIGNATURE_MISMATCH = (Result.FAIL, "signature did not verify")
    PARTIAL_BODY = (Result.POLICY, "l= leaves part of the body unsigned")
    # RFC 6376 §6.1.1: the signature itself is unusable (PERMFAIL).
    SYNTAX = (Result.PERMERROR, "signature syntax error")
    MISSING_TAG = (Result.PERMERROR, "signature missing required tag")
    BAD_VERSION = (Result.PERMERROR, "incompatible signature version")
    BAD_ALGORITHM = (Result.PERMERROR, "unsupported signature algorithm")
    WEAK_ALGORITHM = (Result.PERMERROR, "rsa-sha1 is not accepted (RFC 8301)")
    BAD_CANONICALIZATION = (Result.PERMERROR, "unsupported canonicalization")
    BAD_QUERY_METHOD = (Result.PERMERROR, "no supported query method")
    DOMAIN_MISMATCH = (Result.PERMERROR, "i= is not within d=")
    FROM_NOT_SIGNED = (Result.PERMERROR, "From field not signed")
    EXPIRED = (Result.PERMERROR, "signature expired")
    FUTURE_TIMESTAMP = (Result.PERMERROR, "signature timestamp in the future")
    BODY_LENGTH = (Result.PERMERROR, "l= is larger than the body")
    # RFC 6376 §6.1.2: the key.
    KEY_NOT_FOUND = (Result.PERMERROR, "no key for signature")
    KEY_DNS_ERROR = (Result.TEMPERROR, "key query failed")
    KEY_SYNTAX = (Result.PERMERROR, "key record syntax error")
    KEY_REVOKED = (Result.PERMERROR, "key revoked")
    KEY_TYPE_MISMATCH = (Result.PERMERROR, "key type does not match the algorithm")
    KEY_HASH_NOT_ALLOWED = (Result.PERMERROR, "key record does not allow this hash")
    KEY_SERVICE = (Result.PERMERROR, "key record not for e-mail (s=)")
    KEY_STRICT_IDENTITY = (Result.PERMERROR, "key has t=s but i= is a subdomain of d=")
    KEY_TOO_SMALL = (Result.PERMERROR, "key too small")
    # The message as a whole.
    MESSAGE_LIMITS = (Result.PERMERROR, "message exceeds verification limits")

    @property
    def result(self) -> Result:
        return self.value[0]

    @property
    def text(self) -> str:
        return self.value[1]
