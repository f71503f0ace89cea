"""The Redis Functions libraries: the state functions, built from the spec, and the alert
functions. One loader, one recovery path for both.

The state library's source is the generated prelude (constants, bands, the packed state, from
`streams/state/spec.py`) followed by the function bodies in `lua/state.lua`, with each body's
key and argument names bound from the spec and its facts joined in the spec's order. Building
it checks each body against the spec (every fact is computed, every key and argument used), so
a body and the spec cannot drift apart unnoticed.

A library's name and its functions' names carry a hash of its source: processes of two
versions (a rolling upgrade) or of two configurations each call their own functions. A server
that answers "Function not found" (a restart without persistence, a FUNCTION FLUSH, a new
cluster node) gets the library loaded and the call sent again; every call is idempotent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TypeVar

import redis

from models.features import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_MINUTE,
    WINDOW_1H_MS,
    WINDOW_7D_MS,
    WINDOW_24H_MS,
)
from models.taint import TAINT_CAP, TAINT_KEEP_MS
from streams.state import observation, spec
from streams.state.base import ENTITY_KINDS
from streams.state.pipelines import AnyRedis
from streams.state.transport import is_missing_function

T = TypeVar("T")

_VERSION = "__VERSION__"


@dataclass(frozen=True, slots=True)
class StateConstants:
    """What the functions are built with (part of the library's version)."""

    window_cap: int = 1000
    state_ttl_s: int = 35 * 86400
    dedupe_horizon_ms: int = 72 * 3_600_000


def _lua_number(value: int) -> str:
    return str(int(value))


def _state_index(field: str) -> int:
    """A packed-state field's position (1-based, as Lua counts)."""
    return spec.STATE_FIELDS.index(field) + 1


def _band_table() -> str:
    lines = ["local BANDS, BAND_LIST = {}, {}"]
    for band in spec.BANDS:
        identifier = "true" if band in spec.IDENTIFIER_BANDS else "false"
        lines.append(
            f"BANDS['{band.name}'] = {{name = '{band.name}', prefix = '{band.prefix}', "
            f"index = {band.index}, base = {_lua_number(band.base)}, "
            f"earliest = {'true' if band.earliest else 'false'}, identifier = {identifier}, "
            f"size = {_state_index(f'size_{band.name}')}, "
            f"latest = {_state_index(f'latest_{band.name}')}, "
            f"oldest = {_state_index(f'oldest_{band.name}')}}}"
        )
        lines.append(f"BAND_LIST[{band.index + 1}] = BANDS['{band.name}']")
    names = ", ".join(f"BANDS['{b.name}']" for b in spec.IDENTIFIER_BANDS)
    lines.append(f"local IDENTIFIER_BANDS = {{{names}}}")
    for side in (spec.PAYER_SIDE, spec.PAYEE_SIDE):
        bands = ", ".join(f"BANDS['{b.name}']" for b in side.bands)
        expiring = ", ".join(f"BANDS['{b.name}']" for b in side.expiring)
        lines.append(
            f"local {side.name.upper()}_SIDE = {{day = {_state_index(side.day_field)}, "
            f"bands = {{{bands}}}, expiring = {{{expiring}}}, "
            f"entries = BANDS['{side.entries.name}'], facts = '{side.facts_prefix}'}}"
        )
    return "\n".join(lines)


def _state_table() -> str:
    count = len(spec.STATE_FIELDS)
    defaults = ", ".join(
        "0" if name.startswith("size_") or name == "out_sum_minor" else "-1"
        for name in spec.STATE_FIELDS
    )
    # `struct` formats of n doubles, for the hour buckets (two per bucket).
    formats = ", ".join(f"'<{'d' * n}'" for n in range(1, 2 * spec.BUCKET_HOURS + 3))
    return f"""-- The packed state: {count} fields (positions below, from spec.STATE_FIELDS),
-- the numbers of outgoing and incoming hour buckets, then each direction's (hour, amount)
-- pairs, ascending by hour, as flat arrays.
local FIRST_SEEN, OUT_SUM = {_state_index("first_seen_ms")}, {_state_index("out_sum_minor")}
local TTL_WEEK, STATE_COUNT = {_state_index("ttl_week")}, {count}
local STATE_DEFAULTS = {{{defaults}}}
local STATE_HEAD = '<{"d" * (count + 2)}'
local DOUBLES = {{{formats}}}
local HEAD_BYTES = {8 * (count + 2)}
-- The state as stored, or nil when it is not one this version wrote (a damaged value).
local function load_state(raw)
  if not raw then
    return {{unpack(STATE_DEFAULTS)}}, {{}}, {{}}
  end
  if #raw < HEAD_BYTES then return nil end
  local st = {{struct.unpack(STATE_HEAD, raw)}}
  local n_out, n_in, position = st[STATE_COUNT + 1], st[STATE_COUNT + 2], st[STATE_COUNT + 3]
  st[STATE_COUNT + 1], st[STATE_COUNT + 2], st[STATE_COUNT + 3] = nil, nil, nil
  if not (n_out >= 0 and n_in >= 0 and n_out + n_in <= {spec.BUCKET_HOURS * 2}
          and n_out == math.floor(n_out) and n_in == math.floor(n_in)
          and #raw == HEAD_BYTES + 16 * (n_out + n_in)) then
    return nil
  end
  local out_buckets, in_buckets = {{}}, {{}}
  if n_out > 0 then
    out_buckets = {{struct.unpack(DOUBLES[2 * n_out], raw, position)}}
    position = out_buckets[2 * n_out + 1]
    out_buckets[2 * n_out + 1] = nil
  end
  if n_in > 0 then
    in_buckets = {{struct.unpack(DOUBLES[2 * n_in], raw, position)}}
    in_buckets[2 * n_in + 1] = nil
  end
  return st, out_buckets, in_buckets
end
local function save_state(st, out_buckets, in_buckets)
  st[STATE_COUNT + 1], st[STATE_COUNT + 2] = #out_buckets / 2, #in_buckets / 2
  local packed = struct.pack(STATE_HEAD, unpack(st, 1, STATE_COUNT + 2))
  st[STATE_COUNT + 1], st[STATE_COUNT + 2] = nil, nil
  if #out_buckets > 0 then
    packed = packed .. struct.pack(DOUBLES[#out_buckets], unpack(out_buckets))
  end
  if #in_buckets > 0 then
    packed = packed .. struct.pack(DOUBLES[#in_buckets], unpack(in_buckets))
  end
  return packed
end"""


_REGISTER = f"""local function register(name, callback, read_only)
  local flags = {{}}
  if read_only then flags = {{'no-writes'}} end
  redis.register_function{{function_name = name .. '_{_VERSION}', callback = callback,
                           flags = flags}}
end
"""


def _state_prelude(constants: StateConstants) -> str:
    # Only literals at the top level: Redis 7.0 runs a library's loading code without the
    # standard libraries (string, table, struct exist inside the functions only).
    meta = ", ".join(f"{name} = '{field}'" for name, field in spec.META_FIELDS.items())
    kinds = ", ".join(f"'{kind}'" for kind in ENTITY_KINDS)
    return f"""#!lua name=fw_state_{_VERSION}
-- Generated by streams/state/functions.py from streams/state/spec.py: edit those, not this.
local CAP = {constants.window_cap}
local RETENTION, ENTITY_RETENTION = {spec.ACCOUNT_RETENTION_MS}, {spec.ENTITY_RETENTION_MS}
-- Arguments to redis.call go as strings: a Lua number costs a printf in each call.
-- Refreshed once per event week: an idle account keeps its keys for the state TTL at least.
local KEY_TTL = '{constants.state_ttl_s + spec.MS_PER_WEEK // 1000}'
local MINUTE, HOUR, DAY, WEEK = {MS_PER_MINUTE}, {MS_PER_HOUR}, {MS_PER_DAY}, {spec.MS_PER_WEEK}
local W1H, W24H, W7D = {WINDOW_1H_MS}, {WINDOW_24H_MS}, {WINDOW_7D_MS}
local BUCKET_HOURS = {spec.BUCKET_HOURS}
local BAND_SPAN = {_lua_number(spec.BAND_SPAN)}
local ENTITY_ACCOUNT, ENTITY_MARKER = '{spec.ENTITY_ACCOUNT}', '{spec.ENTITY_MARKER}'
local ENTITY_FACTS, ENTITY_CHAIN = '{spec.ENTITY_FACTS}', '{spec.ENTITY_CHAIN}'
local CHAIN_SPAN, CHAIN_REFUSED = {spec.CHAIN_SPAN}, '{spec.CHAIN_REFUSED}'
local ENTITY_COUNT_SPAN, ENTITY_TIME_FLOOR = {spec.ENTITY_COUNT_SPAN}, {spec.ENTITY_TIME_FLOOR}
-- How long (event time) accounts and devices / phones / IPs keep each transfer's facts.
local DEDUPE_HORIZON = {constants.dedupe_horizon_ms}
local NARROW_LIMIT = {spec.NARROW_LIMIT}
-- Alert propagation's marks per account (models.taint).
local TAINT_CAP, TAINT_KEEP = {TAINT_CAP}, {TAINT_KEEP_MS}
-- Observation begins again after a longer silence; the starts kept (streams/state/observation.py).
local OBSERVATION_GAP, OBSERVATION_STARTS = {observation.GAP_MS}, {observation.KEPT_STARTS}
local ENTITY_KINDS = {{{kinds}}}
local META = {{{meta}}}
local IDENTIFIER_FIELD = '{spec.IDENTIFIER_FIELD}'
{_band_table()}
-- A number as the decimal text of an integer: Redis 7.0 turns a Lua number argument into text
-- with a floating-point printf (%.17g), several times dearer than this integer one.
local function int(n) return string.format('%d', n) end
-- A band's score of a time, as text (every score goes to redis.call).
local function band_score(band, ts)
  if band.earliest then return int(band.base + (BAND_SPAN - 1 - ts)) end
  return int(band.base + ts)
end
local function band_ts(band, score)
  if band.earliest then return BAND_SPAN - 1 - (score - band.base) end
  return score - band.base
end
-- The inclusive score range of the times low..high in a band (nil: open end).
local function band_scores(band, low, high)
  low, high = low or 0, high or BAND_SPAN - 1
  if band.earliest then return band_score(band, high), band_score(band, low) end
  return band_score(band, low), band_score(band, high)
end
{_state_table()}
{_REGISTER}"""


def _bindings(script: spec.ScriptSpec) -> str:
    def names(prefix: str, roles: tuple[str, ...], source: str) -> str:
        if not roles:
            return ""
        left = ", ".join(f"{prefix}{role}" for role in roles)
        right = ", ".join(f"{source}[{i}]" for i in range(1, len(roles) + 1))
        return f"local {left} = {right}\n  "

    check = (
        f"if #keys ~= {len(script.keys)} or #args ~= {len(script.args)} then\n"
        f"    return redis.error_reply('{script.name}: called with ' .. #keys .. ' keys and ' "
        f".. #args .. ' arguments, not {len(script.keys)} and {len(script.args)}')\n  end\n  "
    )
    return (check + names("K_", script.keys, "keys") + names("A_", script.args, "args")).rstrip()


def _facts(script: spec.ScriptSpec) -> str:
    if script is spec.ACCOUNT_VIEW:
        return f"local facts = {{{', '.join(script.facts)}}}"
    if len(script.facts) == 1:
        return f"local facts = {script.facts[0]}"
    return f"local facts = struct.pack('{script.wire_format}', {', '.join(script.facts)})"


class LibraryError(RuntimeError):
    """A function body does not match its spec (a programming error, found at build time)."""


def _bind_bodies(source: str) -> str:
    scripts = {script.name: script for script in spec.SCRIPTS}
    for name, script in scripts.items():
        bind, facts = f"--@bind {name}\n", f"--@facts {name}\n"
        start, end = source.find(bind), source.find(facts)
        if start < 0 or end < start:
            raise LibraryError(f"function {name}: no `--@bind {name}` before `--@facts {name}`")
        body = source[start:end]
        for fact in script.facts:
            if not re.search(rf"\blocal\b[^\n]*\b{fact}\b", body):
                raise LibraryError(f"function {name} never sets its fact {fact!r}")
        for role in (*(f"K_{k}" for k in script.keys), *(f"A_{a}" for a in script.args)):
            if role not in source[start : source.find("\nend\n", start)]:
                raise LibraryError(f"function {name} never uses {role}")
        source = source.replace(bind, _bindings(script) + "\n")
        source = source.replace(facts, _facts(script) + "\n")
    return source


def _body(name: str) -> str:
    return resources.files("streams.state").joinpath("lua", f"{name}.lua").read_text()


@dataclass(frozen=True, slots=True)
class Library:
    """A generated library and the versioned names of its functions."""

    source: str
    version: str

    @classmethod
    def versioned(cls, template: str) -> Library:
        """The library whose version (in its and its functions' names) hashes its source."""
        version = hashlib.sha1(template.encode()).hexdigest()[:4]
        return cls(template.replace(_VERSION, version), version)

    def name(self, function: str) -> str:
        """The name a function is called by on the server."""
        return f"{function}_{self.version}"

    def load(self, client: AnyRedis) -> None:
        """Load the library (on every primary of a cluster); idempotent."""
        client.function_load(self.source, replace=True)

    def calling(self, client: AnyRedis, attempt: Callable[[], T]) -> T:
        """`attempt()`, once more after loading the library if a server lacked it."""
        try:
            return attempt()
        except redis.ResponseError as error:
            if not is_missing_function(error):
                raise
            self.load(client)
            return attempt()


def state_library(constants: StateConstants) -> Library:
    """The state functions for these constants (pure: reads the package's Lua, no I/O)."""
    return Library.versioned(_state_prelude(constants) + "\n" + _bind_bodies(_body("state")))


def alert_library() -> Library:
    """The alert functions (every alert key in the `{al}` slot)."""
    prelude = f"#!lua name=fw_alerts_{_VERSION}\n{_REGISTER}"
    return Library.versioned(prelude + "\n" + _body("alerts"))
