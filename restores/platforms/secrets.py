"""Which pgBackRest settings carry a credential, and how to keep them out of what the console
stores, shows or logs. Pure: the forms, the manifest builder and the audit log all ask here.

A credential (an S3 key and secret, a GCS key, an Azure key or SAS token, a cipher passphrase)
belongs in the Secret or file the repo's configuration names, never in a form, a draft, an
operation, an audit entry or a manifest the console renders.
"""

from __future__ import annotations

import re
from typing import Any

# pgBackRest's credential options end in or contain these words: repo1-s3-key,
# repo1-s3-key-secret, repo1-s3-token, repo1-gcs-key, repo1-azure-key, repo1-cipher-pass,
# repo1-host-cert-file's key-file, and any *-password / *-credentials a newer release adds.
CREDENTIAL_RE = re.compile(r"(^|[-_])(key|secret|pass|passphrase|password|token|credentials?)"
                           r"([-_]|$)", re.IGNORECASE)
# Named like one, but only say how to authenticate: repo1-s3-key-type=auto (an IAM role),
# repo1-azure-key-type=sas, repo1-s3-kms-key-id (which KMS key, not the key itself).
NOT_CREDENTIAL_RE = re.compile(r"-(key-type|kms-key-id)$", re.IGNORECASE)
REDACTED = "[redacted]"


def is_credential(option: str) -> bool:
    """Whether a setting's name says it holds a credential: `repo1-s3-key` yes,
    `repo1-s3-uri-style` no."""
    name = option.strip()
    return bool(CREDENTIAL_RE.search(name)) and not NOT_CREDENTIAL_RE.search(name)


def scrub(value: Any) -> Any:
    """`value` with every credential replaced by REDACTED: dict entries whose key names one,
    and [key, value] pairs (how the wizard keeps repo settings) whose key does."""
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and is_credential(k) else scrub(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        if (len(value) == 2 and isinstance(value[0], str) and is_credential(value[0])
                and not isinstance(value[1], dict | list | tuple)):
            return [value[0], REDACTED]
        return [scrub(v) for v in value]
    return value
