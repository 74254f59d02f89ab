"""The accounts file: IMAP accounts and inspector identities (see mailbox_accounts.example.toml).

Secrets are never stored here in clear: `password_env` names the environment variable that
holds an IMAP password, and `Secret` keeps it out of reprs, logs and reports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.config import describe_validation_error, read_toml
from bot.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Identity(_Strict):
    name: str
    real_name: str = ""
    phone: str = Field("", pattern=r"^(1[3-9]\d{9})?$")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    reply_address: Literal["plus", "catchall", "plain"] = "plus"
    catchall_domain: str = ""
    imap_account: str = ""
    # The citizen account at unified identity platforms (统一身份认证), for `mailbox-bot login`;
    # the password only through an environment variable, like the IMAP passwords.
    login_account: str = ""
    login_password_env: str = ""

    def login_password(self) -> str:
        if not self.login_password_env:
            return ""
        value = os.environ.get(self.login_password_env)
        if value is None:
            raise ConfigError(f"identity '{self.name}': environment variable {self.login_password_env} "
                              "(login_password_env) is not set")
        return value

    def address_for(self, token: str, forbidden: str = "") -> str:
        """The per-letter reply address for `token`: ``local+token@domain`` (plus),
        ``token@catchall_domain`` (catchall) or the address itself (plain). A site whose form
        refuses some characters (`forbidden`, e.g. "+") gets the catch-all form when this
        identity has a catch-all domain, else the plain address (matching then relies on the
        mail's content)."""
        local, domain = self.email.split("@", 1)
        candidates = []
        if self.reply_address == "plus":
            candidates.append(f"{local}+{token}@{domain}")
        if self.reply_address in ("plus", "catchall") and self.catchall_domain:
            candidates.append(f"{token}@{self.catchall_domain}")
        for address in candidates:
            if not any(c in address for c in forbidden):
                return address
        return self.email

    @model_validator(mode="after")
    def _catchall_needs_domain(self):
        if self.reply_address == "catchall" and not self.catchall_domain:
            self.catchall_domain = self.email.split("@", 1)[1]
        return self


class ImapAccount(_Strict):
    name: str
    host: str
    port: int = Field(993, ge=1, le=65535)
    user: str
    password_env: str = ""
    tls: bool = True
    folders: list[str] = ["INBOX"]

    def password(self) -> str:
        """Read at the moment of login; never kept on the object."""
        if not self.password_env:
            raise ConfigError(f"IMAP account '{self.name}' has no password_env")
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"environment variable {self.password_env} (password of IMAP account '{self.name}') is not set")
        return value


class Accounts(_Strict):
    identity: list[Identity] = []
    imap: list[ImapAccount] = []

    @model_validator(mode="after")
    def _links(self):
        names = {a.name for a in self.imap}
        for i, ident in enumerate(self.identity):
            if ident.imap_account and ident.imap_account not in names:
                known = ", ".join(sorted(names)) or "none"
                raise ValueError(f"key 'identity.{i}.imap_account': '{ident.imap_account}' names no "
                                 f"[[imap]] account (defined: {known})")
        return self


def load_accounts(path: str | Path) -> Accounts:
    path = Path(path)
    data = read_toml(path)
    try:
        return Accounts.model_validate(data)
    except ValidationError as e:
        raise describe_validation_error(e, str(path)) from None
