"""Settings shared by every environment; deploy values come from the environment."""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("ZP_VAR_DIR", BASE_DIR / "var"))


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "polls",
    "benchmarks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "polls.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "polls.middleware.ContentSecurityPolicyMiddleware",
    "polls.middleware.LanguageParameterMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the answer writer insert while Daphne reads; the timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A host whose network goes away mid-transaction (its writer's batch of answers) leaves
    # PostgreSQL a session that holds its row locks, and the other host's writer waits behind
    # them, for the two hours of the kernel's default keepalive. These make the server drop a
    # silent session after 5 + 3 x 2 s (idle) or 10 s of unacknowledged data, and the client
    # notice a silent server as soon. Per connection, so no server configuration is needed.
    # A DATABASE_URL's own ?options= (a search_path, say) is kept, before these.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _server_side = (
        "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 "
        "-c tcp_user_timeout=10000"
    )
    _options.update(
        {
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": 10_000,
            "options": f"{_options.get('options', '')} {_server_side}".strip(),
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "polls.storage.StaticStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"

LOGIN_URL = "admin:login"

REDIS_URL = os.environ.get("REDIS_URL", f"unix://{VAR_DIR / 'redis' / 'redis.sock'}")
SENTINEL_PORT = 26379


def redis_sentinels(value: str) -> list[tuple[str, int]]:
    """``REDIS_SENTINELS``: ``host:port`` pairs, comma-separated (a bare host is port 26379, an
    IPv6 address goes in brackets: ``[fd00::5]:26379``)."""
    found = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, port = item, str(SENTINEL_PORT)
        if item.startswith("["):
            host, _bracket, rest = item[1:].partition("]")
            if rest:
                port = rest.removeprefix(":")
        elif item.count(":") == 1:
            host, port = item.split(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(
                f"REDIS_SENTINELS: {item!r} is not host:port (e.g. 10.0.0.21:26379)"
            )
        found.append((host, int(port)))
    return found


# Redis Sentinel (docs/reliability.md, "A standby Redis"): the sentinels to ask, the name they
# monitor the primary under, their password, and the data nodes' password (with REDIS_URL that
# one is in the URL). Every client then connects to whichever node the sentinels name primary.
REDIS_SENTINELS = redis_sentinels(os.environ.get("REDIS_SENTINELS", ""))
REDIS_SENTINEL_SERVICE = os.environ.get("REDIS_SENTINEL_SERVICE", "").strip()
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD", "")
if bool(REDIS_SENTINELS) != bool(REDIS_SENTINEL_SERVICE):
    raise ImproperlyConfigured(
        "Set REDIS_SENTINELS and REDIS_SENTINEL_SERVICE together (the sentinels, and the name "
        "they monitor the primary under), or neither."
    )
if REDIS_SENTINELS and os.environ.get("REDIS_URL"):
    raise ImproperlyConfigured(
        "Set REDIS_URL or REDIS_SENTINELS, not both: with sentinels the primary is whichever "
        "node they name."
    )
if REDIS_PASSWORD and not REDIS_SENTINELS:
    raise ImproperlyConfigured(
        "REDIS_PASSWORD is the data nodes' password under Sentinel; with REDIS_URL put the "
        "password in the URL (redis://:<password>@host:6379/0)."
    )
# The connection the channel layer and polls.redis_client make through the sentinels (None
# without them): plain values; the clients add their own timeouts and retry policy.
REDIS_SENTINEL_CONNECTION = (
    {
        "sentinels": REDIS_SENTINELS,
        "master_name": REDIS_SENTINEL_SERVICE,
        "password": REDIS_PASSWORD or None,
        # A sentinel that is down (its host may be the primary's) must cost a connection
        # attempt a second, not the client's default ten retries.
        "sentinel_kwargs": {
            "password": REDIS_SENTINEL_PASSWORD or None,
            "socket_timeout": 1,
            "socket_connect_timeout": 1,
        },
    }
    if REDIS_SENTINELS
    else None
)
if REDIS_SENTINELS:
    # A name for messages and logs, no password in it; not a URL a client can open, so code
    # that would connect to REDIS_URL directly fails loudly instead of reaching another Redis.
    REDIS_URL = "redis+sentinel://{}/{}".format(
        ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in REDIS_SENTINELS),
        REDIS_SENTINEL_SERVICE,
    )

# With a replica: an answer (and a host's change of the tally) is acknowledged only once this
# many replicas have it, WAIT after each batch (polls.tally); at most ZP_REDIS_WAIT_MS
# milliseconds, after which the batch's phones hear "unavailable" and send again. 0 (the
# default): acknowledged on the primary's own fsync (appendfsync always), as without a replica.
ZP_REDIS_WAIT_REPLICAS = int(os.environ.get("ZP_REDIS_WAIT_REPLICAS", "0"))
ZP_REDIS_WAIT_MS = int(os.environ.get("ZP_REDIS_WAIT_MS", "1000"))
if ZP_REDIS_WAIT_REPLICAS < 0:
    raise ImproperlyConfigured("ZP_REDIS_WAIT_REPLICAS must be 0 or more")
if not 1 <= ZP_REDIS_WAIT_MS <= 9000:
    # WAIT's timeout 0 means "for ever": one replica away would hold every answer. Past the
    # clients' 10 s socket timeout (polls.redis_client) the read would give up first.
    raise ImproperlyConfigured("ZP_REDIS_WAIT_MS must be at least 1 and at most 9000 (ms)")


def channel_layer_settings(
    redis_url: str, backend: str = "redis", sentinel: dict | None = None
) -> dict:
    """The channels_redis layer with deliberate connection options.

    redis-py 8 with channels_redis 4.3 at defaults let the layer's 5 s blocking receive race a
    5 s socket timeout (idle consumers died), and a mass disconnect exhausted the 100-connection
    pool. So: a socket timeout well above the blocking receive, and a blocking pool that waits
    for a free connection instead of raising. ``backend="pubsub"`` selects channels_redis'
    RedisPubSubChannelLayer instead (measured against it in docs/performance.md); it holds one
    subscriber connection and publishes without a blocking pop, so it takes no socket timeout.

    ``sentinel`` (``REDIS_SENTINEL_CONNECTION``): the layer follows the primary the sentinels
    name, in channels_redis' own form for it (``sentinels``, ``master_name``,
    ``sentinel_kwargs``: its ``create_pool``), and for ``redis`` on polls.sentinel_layer's
    blocking pool of that kind.
    """
    target = dict(sentinel) if sentinel else {"address": redis_url}
    if backend == "pubsub":
        return {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        **target,
                        "socket_connect_timeout": 5,
                        "health_check_interval": 15,
                    }
                ],
                "prefix": "zp:pubsub",
            },
        }
    if backend != "redis":
        raise ImproperlyConfigured(f"ZP_CHANNEL_LAYER must be 'redis' or 'pubsub', not {backend!r}")
    return {
        "BACKEND": "polls.sentinel_layer.RedisChannelLayer"
        if sentinel
        else "polls.layers.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    **target,
                    "socket_timeout": 30,
                    "socket_connect_timeout": 5,
                    "health_check_interval": 15,
                    "max_connections": int(os.environ.get("ZP_LAYER_MAX_CONNECTIONS", "200")),
                    "pool_timeout": 30,
                }
            ],
            "prefix": "zp:layer",
            "capacity": 500,
            "expiry": 30,
            "group_expiry": 86400,
        },
    }


# Which channels_redis layer carries messages between server processes: redis | pubsub.
ZP_CHANNEL_LAYER = os.environ.get("ZP_CHANNEL_LAYER", "redis")
# How a host's change reaches the sockets. "local": each server process is one member of the
# event's group and hands the state to its own sockets, encoded once (the default, see
# docs/performance.md). "group": every socket is a group member of its own (stock Channels).
ZP_FANOUT = os.environ.get("ZP_FANOUT", "local")
if ZP_FANOUT not in ("local", "group"):
    raise ImproperlyConfigured(f"ZP_FANOUT must be 'local' or 'group', not {ZP_FANOUT!r}")
# Seconds between a process's checks that its copy of each event's state is current: heals a
# broadcast lost between processes, and closes sockets of a deleted event.
ZP_STATE_RESYNC_SECONDS = float(os.environ.get("ZP_STATE_RESYNC_SECONDS", "2"))

CHANNEL_LAYERS = {
    "default": channel_layer_settings(REDIS_URL, ZP_CHANNEL_LAYER, REDIS_SENTINEL_CONNECTION)
}

# How many proxies in front of the servers append to X-Forwarded-For (nginx, HAProxy: 1 each).
# 0 (the default) ignores the header: the address is the connection's peer. The older
# ZP_TRUST_X_FORWARDED_FOR=1 means one hop.
ZP_TRUSTED_PROXY_HOPS = int(
    os.environ.get("ZP_TRUSTED_PROXY_HOPS")
    or ("1" if os.environ.get("ZP_TRUST_X_FORWARDED_FOR") == "1" else "0")
)
# The join guard (polls.joinguard, docs/reliability.md): tokens an address gets per sliding
# minute (and hour) without work; past that each join carries a proof of work of
# ZP_JOIN_WORK_BITS + log2(rate / free) leading zero bits, at most ZP_JOIN_WORK_MAX_BITS. Joins
# are never refused for their rate. The free budget is a hall's: a congress hall of 10,000
# behind one NAT address arrives within seconds and must not wait for work; a script minting
# more than a hall pays for every token past it, in series.
ZP_JOIN_FREE_PER_MINUTE = int(os.environ.get("ZP_JOIN_FREE_PER_MINUTE", "12000"))
ZP_JOIN_FREE_PER_HOUR = int(os.environ.get("ZP_JOIN_FREE_PER_HOUR", "30000"))
ZP_JOIN_WORK_BITS = int(os.environ.get("ZP_JOIN_WORK_BITS", "12"))
ZP_JOIN_WORK_MAX_BITS = int(os.environ.get("ZP_JOIN_WORK_MAX_BITS", "20"))
# Seconds a new token waits before its first answer counts (the answer is held, not refused):
# a person reads the question first; a loop of join + answer is slowed to one every few seconds.
ZP_ANSWER_WARMUP_SECONDS = float(os.environ.get("ZP_ANSWER_WARMUP_SECONDS", "3"))
# Open sockets and event streams per server process: per participant (a phone, a second tab,
# a reconnect overlapping the old socket) and per client address (a hall behind one NAT).
ZP_MAX_CONNECTIONS_PER_PARTICIPANT = int(os.environ.get("ZP_MAX_CONNECTIONS_PER_PARTICIPANT", "4"))
ZP_MAX_CONNECTIONS_PER_ADDRESS = int(os.environ.get("ZP_MAX_CONNECTIONS_PER_ADDRESS", "15000"))
# Seconds an answer read by a writer may stay unwritten before another writer takes it over
# (polls.writer): the writer of a host that went away mid-batch. Until then the Answer table
# lags Redis by those answers (the stage and the tally do not).
ZP_WRITER_CLAIM_SECONDS = float(os.environ.get("ZP_WRITER_CLAIM_SECONDS", "10"))
# Seconds between result snapshots pushed per question (coalescing).
ZP_SNAPSHOT_INTERVAL = float(os.environ.get("ZP_SNAPSHOT_INTERVAL", "0.1"))
# Seconds between the Q&A's changes pushed to the phones' lists (the stage's board follows
# ZP_SNAPSHOT_INTERVAL): each push is a frame to every phone (docs/performance.md, "Audience Q&A").
ZP_QA_LIST_INTERVAL = float(os.environ.get("ZP_QA_LIST_INTERVAL", "0.5"))
ZP_MAX_MESSAGE_BYTES = 4096
# Distinct words one word cloud counts: the stage shows the top 60, and a snapshot (read ten
# times a second per process) costs in proportion to this; later new words are not counted.
ZP_MAX_WORDS_PER_QUESTION = int(os.environ.get("ZP_MAX_WORDS_PER_QUESTION", "2000"))
if ZP_MAX_WORDS_PER_QUESTION < 1:
    raise ImproperlyConfigured("ZP_MAX_WORDS_PER_QUESTION must be at least 1")
# Audience Q&A: what one participant may add. A question to the speaker a minute is plenty for
# a person; a script asking more only buries the room's questions. Votes are a tap each.
ZP_QA_ITEMS_PER_MINUTE = int(os.environ.get("ZP_QA_ITEMS_PER_MINUTE", "3"))
ZP_QA_VOTES_PER_SECOND = int(os.environ.get("ZP_QA_VOTES_PER_SECOND", "5"))
# And what a whole room may: every phone gets the list when it connects, so its length is what
# a join costs; a hall of scripts within their per-minute limits stops here.
ZP_QA_ITEMS_PER_EVENT = int(os.environ.get("ZP_QA_ITEMS_PER_EVENT", "500"))
if min(ZP_QA_ITEMS_PER_MINUTE, ZP_QA_VOTES_PER_SECOND, ZP_QA_ITEMS_PER_EVENT) < 1:
    raise ImproperlyConfigured(
        "ZP_QA_ITEMS_PER_MINUTE, ZP_QA_VOTES_PER_SECOND and ZP_QA_ITEMS_PER_EVENT must be >= 1"
    )
# A participant token is refused after this many seconds (default two days: a congress and its
# evening); the phone then joins again and, on an open event, answers as a new participant.
ZP_TOKEN_MAX_AGE = int(os.environ.get("ZP_TOKEN_MAX_AGE", str(2 * 24 * 3600)))
ZP_PARTICIPANT_COOKIE_AGE = ZP_TOKEN_MAX_AGE

# Log lines: "text" (the message alone) or "json" (one object per line, polls.logs), on stderr;
# Daphne's access log goes to stdout in the same format. Secrets never reach a line in either.
ZP_LOG_FORMAT = os.environ.get("ZP_LOG_FORMAT", "text")
if ZP_LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"ZP_LOG_FORMAT must be 'text' or 'json', not {ZP_LOG_FORMAT!r}")
# Seconds one sender's refusals of one code get one log line (the rest are counted, then logged
# as a number): a phone flooding bad messages must not flood the log.
ZP_REFUSAL_LOG_SECONDS = float(os.environ.get("ZP_REFUSAL_LOG_SECONDS", "60"))

# Operations (polls.health, polls.metrics): /metrics answers only "Authorization: Bearer
# <ZP_METRICS_TOKEN>"; unset, it does not exist. /readyz waits at most ZP_READY_TIMEOUT seconds
# for Redis and the database together.
ZP_METRICS_TOKEN = os.environ.get("ZP_METRICS_TOKEN", "").strip()
if ZP_METRICS_TOKEN and len(ZP_METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("ZP_METRICS_TOKEN must be at least 24 characters (or unset)")
ZP_READY_TIMEOUT = float(os.environ.get("ZP_READY_TIMEOUT", "1"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "secrets": {"()": "polls.logs.ScrubSecrets"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {"json": {"()": "polls.logs.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["secrets"],
            **({"formatter": "json"} if ZP_LOG_FORMAT == "json" else {}),
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"polls": {"level": os.environ.get("ZP_LOG_LEVEL", "INFO")}},
}
if ZP_LOG_FORMAT == "json":
    # Django's default logging adds a plain console handler of its own (DEBUG only): its lines
    # would come twice, once not JSON. Its mail to ADMINS stays.
    LOGGING["handlers"]["mail_admins"] = {
        "level": "ERROR",
        "filters": ["require_debug_false"],
        "class": "django.utils.log.AdminEmailHandler",
    }
    LOGGING["loggers"]["django"] = {"handlers": ["mail_admins"], "level": "INFO"}
