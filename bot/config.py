"""Settings: the only place that reads the environment (and an optional ``.env``)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.ops.logs import parse_level
from bot.texts import Language, parse_language
from bot.tg.incoming import Scope

#: The Yuanqi API accepts at most this many messages per request.
API_MAX_MESSAGES = 40


def _web_address(value: str) -> str:
    """An http(s) URL with a host, without its trailing slash (paths are appended to it)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https"):
        msg = "must start with http:// or https://"
        raise ValueError(msg)
    if not parts.hostname:
        msg = "must name a host after http:// or https://"
        raise ValueError(msg)
    return value.rstrip("/")


class Settings(BaseSettings):
    """Everything the bot can be told, validated once at start-up."""

    # "inf" passes every lower bound, then breaks conversions (a TTL in seconds): finite numbers only.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", allow_inf_nan=False
    )

    telegram_bot_token: SecretStr
    telegram_api_base_url: str = "https://api.telegram.org"
    yuanqi_token: SecretStr
    yuanqi_assistant_id: str = Field(min_length=1)
    yuanqi_api_url: str = "https://yuanqi.tencent.com/openapi/v1/agent/chat/completions"
    redis_url: str = "redis://localhost:6379/0"

    #: Messages sent to the agent per request, the new question included (odd, <= 40).
    history_max_messages: int = Field(default=API_MAX_MESSAGES, ge=1, le=API_MAX_MESSAGES)
    #: Characters of past turns sent with a question; older turns roll off first.
    history_max_chars: int = Field(default=24_000, ge=0)
    #: A conversation idle this long is forgotten (Redis TTL, refreshed on use).
    history_ttl_days: float = Field(default=30, gt=0)
    #: Minimum seconds between two message operations in one private chat.
    edit_interval_private: float = Field(default=1.0, ge=0)
    #: Minimum seconds between two message operations in one group (Telegram allows ~20/min).
    edit_interval_group: float = Field(default=3.0, ge=0)
    #: How answers grow: "auto"/"draft" stream a native draft in private chats (edits in groups),
    #: "edit" always edits a message in place.
    stream_mode: Literal["auto", "edit", "draft"] = "auto"
    #: Minimum seconds between two draft updates in one private chat (drafts spend no edit budget).
    draft_interval: float = Field(default=0.5, ge=0.05, le=10)
    #: A draft unchanged this long is sent again: Telegram drops a draft after about 30 s.
    draft_keepalive: float = Field(default=20, gt=0, le=28)
    #: The bot's language for users whose Telegram sends none: "en", "zh-Hans" or "zh-Hant".
    default_language: Language = "en"
    #: Groups: an answer shorter than this (characters) is sent once, when final, not edited.
    group_hold_chars: int = Field(default=300, ge=0)
    #: Message operations per second for the whole bot, across chats (Telegram allows ~30).
    telegram_max_ops_per_second: float = Field(default=28.0, gt=0, le=1000)
    yuanqi_connect_timeout: float = Field(default=10, gt=0)
    #: Seconds to wait for the agent's first event (tools may run before it).
    yuanqi_first_byte_timeout: float = Field(default=120, gt=0)
    #: Ceiling for one whole answer; the agent may think for minutes.
    yuanqi_total_timeout: float = Field(default=300, gt=0)
    #: An answer whose stream stays silent this long after its first event is given up.
    yuanqi_idle_timeout: float = Field(default=60, gt=0)
    yuanqi_max_retries: int = Field(default=2, ge=0, le=10)
    #: Concurrent agent calls across every replica (the API allows 10 per agent).
    yuanqi_max_concurrency: int = Field(default=10, ge=1, le=100)
    #: Secret for hashing chat ids into Yuanqi user ids; generated once and kept in Redis if unset.
    user_id_secret: SecretStr | None = None
    #: Longest user text forwarded to the agent, in characters.
    max_input_chars: int = Field(default=8_000, ge=1)
    log_level: str = "INFO"
    #: "text" for people, "json" (one object per line) for log shippers.
    log_format: Literal["text", "json"] = "text"

    #: How updates arrive: long polling (one process) or a webhook (any number of replicas).
    telegram_mode: Literal["polling", "webhook"] = "polling"
    #: Webhook mode: where the bot serves Telegram's POSTs (and /healthz, /readyz, /metrics).
    webhook_listen: str = "0.0.0.0:8080"
    webhook_path: str = "/telegram"
    #: The public HTTPS address Telegram posts to (used by ``yuanqi-bot set-webhook``).
    webhook_url: str | None = None
    #: Telegram sends it with every POST; 1-256 characters of A-Z, a-z, 0-9, _ and -.
    webhook_secret: SecretStr | None = None
    #: Polling mode: where /healthz, /readyz and /metrics are served (unset: not served).
    health_listen: str | None = None
    #: Tokens one Telegram user may spend per UTC day (unset: unlimited).
    daily_token_limit_per_user: int | None = Field(default=None, ge=1)
    #: Messages one Telegram user may send the agent per minute (unset: unlimited).
    messages_per_minute_per_user: int | None = Field(default=None, ge=1)
    #: On SIGTERM, answers in flight get this long to finish before they are marked interrupted.
    shutdown_grace_seconds: float = Field(default=20, ge=0, le=25)
    #: A replica that stops renewing its hold on a chat, an agent slot or its place in the slots'
    #: queue (it crashed) loses it after this long.
    chat_lease_seconds: float = Field(default=15, ge=1, le=300)

    #: Groups: one conversation per chat (and forum topic), or one per member.
    group_session_scope: Scope = Scope.CHAT
    #: Groups: only administrators may /reset the shared conversation.
    group_reset_admins_only: bool = False
    #: Comma-separated ids; both empty means anyone may use the bot.
    allowed_user_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    allowed_chat_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    #: Public address of the bot's media endpoint; set it to send signed links instead of inline data.
    media_base_url: str | None = None
    #: Where the media endpoint listens (host:port).
    media_listen: str = "0.0.0.0:8080"
    media_link_ttl: int = Field(default=900, ge=30)
    #: Content-part shape: "image_url" (current API) or "file_url" (older API; also documents, audio, video).
    media_part_style: Literal["image_url", "file_url"] = "image_url"
    #: Largest file forwarded to the agent (Telegram lets bots download up to 20 MB).
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=20 * 1024 * 1024)
    #: All attachments of one turn together (an album of up to 10 files), in bytes.
    max_turn_media_bytes: int = Field(default=20 * 1024 * 1024, ge=1)
    #: Earlier images re-sent (as fresh signed links) with a question; 0 to send none.
    history_max_images: int = Field(default=4, ge=0)
    #: Seconds to wait for the rest of an album after its first photo.
    album_wait: float = Field(default=1.0, ge=0)

    @field_validator("allowed_user_ids", "allowed_chat_ids", mode="before")
    @classmethod
    def _id_list(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
            if not all(part.removeprefix("-").isdigit() for part in parts):
                msg = "must be numeric ids separated by commas"
                raise ValueError(msg)
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("default_language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_language(value)
            except ValueError:
                msg = "must be en, zh-Hans or zh-Hant"
                raise ValueError(msg) from None
        return value

    @field_validator("media_base_url")
    @classmethod
    def _media_url(cls, value: str | None) -> str | None:
        return _web_address(value) if value else None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith("https://"):
            msg = "must start with https:// (Telegram posts updates only over HTTPS)"
            raise ValueError(msg)
        return _web_address(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            msg = "must start with redis://, rediss:// or unix://"
            raise ValueError(msg)
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        try:
            parse_level(value)
        except ValueError:
            msg = "must be DEBUG, INFO, WARNING, ERROR or CRITICAL"
            raise ValueError(msg) from None
        return value.strip().upper()

    @field_validator("telegram_api_base_url", "yuanqi_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _web_address(value)

    @field_validator("telegram_bot_token", "yuanqi_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            msg = "must not be empty"
            raise ValueError(msg)
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", value.get_secret_value()):
            msg = "must look like <bot id>:<secret> as @BotFather gives it"
            raise ValueError(msg)
        return value

    @field_validator("webhook_listen", "media_listen", "health_listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            msg = "must be host:port, e.g. 0.0.0.0:8080"
            raise ValueError(msg)
        return value

    @field_validator("webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            msg = "must start with /"
            raise ValueError(msg)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            msg = "must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.telegram_mode == "webhook" and self.webhook_secret is None:
            msg = "WEBHOOK_SECRET must be set in webhook mode"
            raise ValueError(msg)
        return self

    @property
    def bot_id(self) -> int:
        return int(self.telegram_bot_token.get_secret_value().partition(":")[0])

    @property
    def history_max_turns(self) -> int:
        """Past question/answer pairs that fit beside the new question."""
        return (self.history_max_messages - 1) // 2

    @property
    def history_ttl_seconds(self) -> int:
        return int(self.history_ttl_days * 86_400)
