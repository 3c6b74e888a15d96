"""Python binding of shopauth, an IO-free store-authorization engine.

The engine decides; the host supplies time and transport::

    import shopauth

    with shopauth.Engine(config) as engine:
        reply = engine.handle({"type": "query", ...}, now_ms)
        for output in engine.poll_outputs():
            ...  # send http_request outputs, persist transitions, ...
        next_ms = engine.poll_timeout()  # call handle_timeout(next_ms) then

Every reply of ``handle`` is the seed envelope as a dict
(``{"code": 200, "message": "SUCCESS", "data": ...}``), errors included.
:class:`Error` and its subclasses are raised only for what is not a reply.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Optional, Tuple, Union

import orjson

from . import _shopauth

__all__ = [
    "ClosedError",
    "ConfigError",
    "Engine",
    "Error",
    "JSONInput",
    "PanicError",
    "PoisonedError",
    "SerializationError",
    "SnapshotError",
    "__version__",
    "version",
]

# The cffi module maturin generates next to the compiled library (ABI mode:
# no C compiler at install time); typed by the stubs in _shopauth/.
_ffi: Any = _shopauth.ffi
_lib: Any = _shopauth.lib

_NULL: Any = _ffi.NULL

# shopauth_status (SPEC section 6)
_OK = 0
_REJECTED = 1
_EMPTY = 2
_INVALID_ARGUMENT = 3
_PANIC = 4
_POISONED = 5

# The out-parameter type of shopauth_engine_new, read from the declarations
# rather than spelled out, so it follows the header's own type names.
_ENGINE_OUT: Any = _ffi.typeof(_lib.shopauth_engine_new).args[2]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

#: What ``Engine(config)`` and ``restore`` accept: a JSON object as a dict,
#: or its JSON text (str or UTF-8 bytes).
JSONInput = Union[Dict[str, Any], str, bytes]


class Error(Exception):
    """Base class of every exception raised by shopauth."""


class ConfigError(Error, ValueError):
    """The configuration was refused by ``Engine(config)``."""


class SnapshotError(Error, ValueError):
    """``restore`` refused the snapshot (does not parse, other version or
    configuration), or ``load`` / ``unload`` refused their text; the engine
    is unchanged."""


class SerializationError(Error, ValueError):
    """An argument cannot be turned into JSON (or ``now_ms`` is not an int64)."""


class PanicError(Error):
    """An internal bug was caught at the C boundary; the engine is now poisoned."""


class PoisonedError(Error):
    """The engine panicked earlier and refuses further use; close it."""


class ClosedError(Error):
    """The engine was closed."""


_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# The library hands out exactly one well-formed JSON value per string, so the
# decoder's raw_decode (no trailing-whitespace check) is enough; decoding the
# bytes first avoids json.loads' encoding detection.
_raw_decode = json.JSONDecoder().raw_decode


# Texts from the library are decoded by orjson: for the well-formed JSON
# the library writes (UTF-8, no NaN, no duplicate keys, integers within
# 64 bits) it builds the same objects as the json module, several times
# faster.
_loads = orjson.loads

_orjson_dumps = orjson.dumps
# What orjson would serialize but the json module refuses or writes
# otherwise (dataclasses, datetimes, subclasses of str/int/dict/list) is
# left to the json module, which then decides as it always has.
_ORJSON_OPTIONS = (orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
                   | orjson.OPT_PASSTHROUGH_SUBCLASS)


def _decode(raw: bytes) -> Any:
    return _loads(raw)


def _encode_input(input: Any) -> bytes:
    """An input as JSON for :meth:`Engine.handle_drain`: orjson, falling back
    to the json module (and its refusals) for anything orjson refuses (keys
    that are not str, integers beyond 64 bits, lone surrogates, the types
    passed through above) and for any text with a ``null`` in it — orjson
    writes NaN and infinities as null where the json module refuses them."""
    try:
        data: bytes = _orjson_dumps(input, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError
        pass
    else:
        if data.find(b"null") < 0:  # (find is faster than `in` here)
            return data
    try:
        # ensure_ascii (the default) yields pure ASCII: encoding never fails.
        return _encode(input).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        raise SerializationError(f"input cannot be serialized to JSON: {exc}") from exc


def version() -> str:
    """The version of the compiled shopauth library."""
    raw: bytes = _ffi.string(_lib.shopauth_version())
    return raw.decode("utf-8")


__version__ = version()


def _to_bytes(value: Any, what: str) -> bytes:
    # A configuration or snapshot holds secrets: the messages say what is
    # wrong and where, never a piece of the value (the codec's and the
    # encoder's own messages quote it, so they are not chained either).
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:
            reason, start = exc.reason, exc.start
        raise SerializationError(
            f"{what} is not valid UTF-8: {reason} at position {start}"
        ) from None
    try:
        # ensure_ascii (the default) yields pure ASCII, so encoding never fails.
        return _encode(value).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        kind = type(exc).__name__
    raise SerializationError(
        f"{what} cannot be serialized to JSON ({kind}: a value of a type JSON "
        "cannot hold, a NaN or infinite float, a circular reference, or too deep)"
    ) from None


def _check_now(now_ms: int) -> int:
    if now_ms.__class__ is int and _INT64_MIN <= now_ms <= _INT64_MAX:
        return now_ms
    if isinstance(now_ms, int) and _INT64_MIN <= now_ms <= _INT64_MAX:
        return int(now_ms)
    raise SerializationError(f"now_ms must be an int in the int64 range, got {now_ms!r}")


def _take_string(ptr: Any) -> bytes:
    """Copy a string handed out by the library and free it."""
    try:
        raw: bytes = _ffi.string(ptr)
    finally:
        _lib.shopauth_string_free(ptr)
    return raw


def _take_error(holder: Any, default: str) -> str:
    ptr = holder[0]
    if ptr == _ffi.NULL:
        return default
    return _take_string(ptr).decode("utf-8", "replace")


class Engine:
    """One shopauth engine: every store, request, timer and notification.

    Thread-safe: one engine may be shared by several threads (the library
    serializes calls; ``close`` waits for a call in progress).
    """

    __slots__ = ("__weakref__", "_lock", "_ptr", "_poisoned", "_out")

    def __init__(self, config: JSONInput) -> None:
        self._lock = threading.Lock()
        self._ptr: Any = None
        self._poisoned = False
        # One out-parameter per engine, only touched while holding _lock.
        self._out: Any = _ffi.new("char **")
        data = _to_bytes(config, "config")
        engine_out = _ffi.new(_ENGINE_OUT)
        error_out = _ffi.new("char **")
        status = _lib.shopauth_engine_new(data, len(data), engine_out, error_out)
        if status == _OK and engine_out[0] != _ffi.NULL:
            if error_out[0] != _ffi.NULL:
                _lib.shopauth_string_free(error_out[0])
            self._ptr = engine_out[0]
            return
        message = _take_error(error_out, "configuration refused")
        if status == _PANIC:
            raise PanicError(message)
        raise ConfigError(message)

    # -- lifecycle -------------------------------------------------------

    def close(self) -> None:
        """Free the engine. Idempotent; later calls raise :class:`ClosedError`."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
            if ptr is not None:
                _lib.shopauth_engine_free(ptr)

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        ptr = getattr(self, "_ptr", None)
        if ptr is not None:
            self._ptr = None
            try:
                _lib.shopauth_engine_free(ptr)
            except Exception:  # interpreter shutdown  # pragma: no cover
                pass

    def __repr__(self) -> str:
        state = "closed" if self._ptr is None else "poisoned" if self._poisoned else "open"
        return f"<shopauth.Engine {state}>"

    # -- calls -----------------------------------------------------------

    def _failure(self, status: int) -> Error:
        if status == _PANIC:
            self._poisoned = True
            return PanicError("shopauth: internal error caught at the boundary; the engine is poisoned")
        if status == _POISONED:
            self._poisoned = True
            return PoisonedError("shopauth: the engine panicked earlier and refuses further use")
        return Error(f"shopauth: unexpected status {status}")

    def _closed(self) -> ClosedError:
        return ClosedError("shopauth: the engine is closed")

    def handle_json(self, input: Union[str, bytes], now_ms: int) -> str:
        """Like :meth:`handle`, with the input and reply as JSON texts."""
        data = _to_bytes(input, "input")
        now = _check_now(now_ms)
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            out = self._out
            out[0] = _NULL
            status = _lib.shopauth_engine_handle(ptr, data, len(data), now, out)
            reply = out[0]
        if reply != _NULL:
            text = _take_string(reply)
            if status <= _REJECTED or status == _INVALID_ARGUMENT:
                return text.decode("utf-8")
        raise self._failure(status)

    def handle(self, input: Dict[str, Any], now_ms: int) -> Dict[str, Any]:
        """Apply one input at ``now_ms`` (Unix epoch milliseconds).

        Fires everything due first (as :meth:`handle_timeout`). Returns the
        reply envelope ``{"code", "message", "data"[, "kind"]}``, also for
        refused and invalid inputs (code 900002). ``input`` is always
        serialized: any JSON value may be passed, and one that is not an
        object is answered 900002 (use :meth:`handle_json` for JSON texts).
        """
        try:
            # ensure_ascii (the default) yields pure ASCII: encoding never fails.
            data = _encode(input).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(f"input cannot be serialized to JSON: {exc}") from exc
        if now_ms.__class__ is not int or not _INT64_MIN <= now_ms <= _INT64_MAX:
            now_ms = _check_now(now_ms)
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            out = self._out
            out[0] = _NULL
            status = _lib.shopauth_engine_handle(ptr, data, len(data), now_ms, out)
            reply = out[0]
        if reply != _NULL:
            try:
                raw: bytes = _ffi.string(reply)
            finally:
                _lib.shopauth_string_free(reply)
            if status <= _REJECTED or status == _INVALID_ARGUMENT:
                result: Dict[str, Any] = _loads(raw)
                return result
        raise self._failure(status)

    def handle_drain(self, input: Dict[str, Any], now_ms: int) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
        """:meth:`handle` followed by :meth:`poll_outputs`, in one call into
        the library: returns the reply envelope and every queued output,
        oldest first — exactly what the two calls return.

        The fast path for hosts that drain after every input: the input is
        serialized by orjson (falling back to the json module wherever orjson
        refuses a value or writes ``null``), so ``enum.Enum`` members and
        ``uuid.UUID`` values are written as their values where :meth:`handle`
        raises :class:`SerializationError` for them; everything else is
        refused or accepted alike.
        """
        data = _encode_input(input)
        if now_ms.__class__ is not int or not _INT64_MIN <= now_ms <= _INT64_MAX:
            now_ms = _check_now(now_ms)
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            out = self._out
            out[0] = _NULL
            status = _lib.shopauth_engine_handle_drain(ptr, data, len(data), now_ms, out, _NULL)
            text = out[0]
        if text != _NULL:
            try:
                # (Copying the text out is measurably cheaper than handing
                # orjson a memoryview of the library's buffer.)
                raw: bytes = _ffi.string(text)
            finally:
                _lib.shopauth_string_free(text)
            if status <= _REJECTED or status == _INVALID_ARGUMENT:
                both: Dict[str, Any] = _loads(raw)
                return both["reply"], both["outputs"]
        raise self._failure(status)

    def handle_timeout(self, now_ms: int) -> None:
        """Time has passed: fire everything due at ``now_ms``."""
        now = _check_now(now_ms)
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            status = _lib.shopauth_engine_handle_timeout(ptr, now)
        if status != _OK:
            raise self._failure(status)

    def poll_outputs(self) -> List[Dict[str, Any]]:
        """Drain every queued output, oldest first (one call into the library)."""
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            out = self._out
            out[0] = _NULL
            status = _lib.shopauth_engine_poll_outputs(ptr, out)
            text = out[0]
        raw = _take_string(text) if text != _NULL else None
        if status == _OK and raw is not None:
            if raw == b"[]":
                return []
            result: List[Dict[str, Any]] = _decode(raw)
            return result
        if status == _EMPTY:
            return []
        raise self._failure(status)

    def poll_timeout(self) -> Optional[int]:
        """When :meth:`handle_timeout` must next be called (epoch ms), or None."""
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            value: int = _lib.shopauth_engine_poll_timeout(ptr)
        if value == -1:  # none (times before 1970 are other negative values)
            if self._poisoned:
                raise self._failure(_POISONED)
            return None
        return value

    def _text_out(self, call: Any, accept: Tuple[int, ...] = (_OK,)) -> str:
        """Runs ``call(engine, char **out)`` under the lock and returns the
        text it handed out (freed here) when its status is in ``accept``."""
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            out = self._out
            out[0] = _NULL
            status = call(ptr, out)
            text = out[0]
        raw = _take_string(text) if text != _NULL else None
        if status in accept and raw is not None:
            return raw.decode("utf-8")
        raise self._failure(status)

    def snapshot_json(self) -> str:
        """The whole state as a JSON text (see :meth:`snapshot`)."""
        return self._text_out(_lib.shopauth_engine_snapshot)

    def snapshot(self) -> Dict[str, Any]:
        """The whole state as a JSON object (store credentials included)."""
        result: Dict[str, Any] = _raw_decode(self.snapshot_json())[0]
        return result

    def take_changes_json(self) -> str:
        """Every change since the previous take, as a JSON text (see
        :meth:`take_changes`)."""
        return self._text_out(_lib.shopauth_engine_take_changes)

    def take_changes(self) -> Dict[str, Any]:
        """Every store whose record changed since the previous take (or since
        the engine was made, restored or loaded), sorted by ``store_id``, with the
        engine header: ``{"version", "engine", "stores": [{"store_id",
        "ref", "client_id", "platform", "claims", "due_at", "record"}, …]}``;
        a removed store has ``"record": None`` (spec §10). Persist both the
        drained outputs and these changes in one transaction before acting
        on the outputs."""
        result: Dict[str, Any] = _raw_decode(self.take_changes_json())[0]
        return result

    def _text_in(self, call: Any, value: JSONInput, what: str) -> None:
        """Runs ``call(engine, text, len, char **error_out)`` with ``value``
        as JSON; a refusal (REJECTED or INVALID_ARGUMENT) raises
        :class:`SnapshotError` with the library's message."""
        data = _to_bytes(value, what)
        error_out = _ffi.new("char **")
        with self._lock:
            ptr = self._ptr
            if ptr is None:
                raise self._closed()
            status = call(ptr, data, len(data), error_out)
        if status == _OK:
            if error_out[0] != _ffi.NULL:
                _lib.shopauth_string_free(error_out[0])
            return
        message = _take_error(error_out, f"{what} refused")
        if status == _REJECTED or status == _INVALID_ARGUMENT:
            raise SnapshotError(message)
        raise self._failure(status)

    def restore(self, snapshot: JSONInput) -> None:
        """Replace the state with ``snapshot`` (a dict or its JSON text).

        Raises :class:`SnapshotError` when it does not parse or comes from
        another major version or configuration; the engine is then unchanged.
        """
        self._text_in(_lib.shopauth_engine_restore, snapshot, "snapshot")

    # -- fleets (spec section 11) ----------------------------------------

    def load(self, stores: JSONInput) -> None:
        """Add stores and foreign claims to the running engine:
        ``{"stores": [record, ...], "foreign_claims": [claim, ...]}``.

        Each record is the ``record`` of a :meth:`take_changes` entry; each
        claim ``{"kind": "seller", "platform", "seller_id", "store_id"}`` or
        ``{"kind": "credential", "fingerprint", "store_id"}`` (a claim of a
        store this engine does not hold). Loaded stores keep their open
        requests open under their ids, their timers and nonces, and are not
        listed by the next :meth:`take_changes` unless they change.

        All or nothing: raises :class:`SnapshotError` (the message names the
        rule, e.g. ``load refused (claim_conflict): ...``) when a store is
        already here, two records share a store id, a record breaks an
        invariant or is on a platform not configured, a claim conflicts with
        one held here, or a foreign claim names a store that is here; the
        engine is then unchanged. Foreign claims are never persisted (not in
        snapshots or changes): supply them with every load.
        """
        self._text_in(_lib.shopauth_engine_load, stores, "load")

    def unload(self, stores: JSONInput) -> None:
        """Forget stores and foreign claims:
        ``{"store_ids": [...], "foreign_claims": [claim, ...]}``.

        No transition, no output, no change entry (take the changes first).
        Store ids and claims this engine does not hold are ignored. Raises
        :class:`SnapshotError` only for a text not of that shape or a
        malformed claim.
        """
        self._text_in(_lib.shopauth_engine_unload, stores, "unload")

    def route_json(self, input: Union[str, bytes]) -> str:
        """Like :meth:`route`, with the input and the route as JSON texts (a
        text that is not JSON routes nowhere)."""
        data = _to_bytes(input, "input")
        return self._text_out(lambda ptr, out: _lib.shopauth_engine_route(ptr, data, len(data), out),
                              (_OK, _INVALID_ARGUMENT))

    def route(self, input: Dict[str, Any]) -> Dict[str, Optional[str]]:
        """The store ``input`` is for, without changing anything and without
        that store being loaded: ``{"ref": ..., "store_id": ...}``.

        ``ref`` (the store's fixed-length keyed digest, spec section 9) is
        computed from the input's ``store_id``, or read from the state nonce
        of an ``oauth_redirect`` or the request id of an ``http_response`` /
        ``http_failure`` (forged ids tell nothing); ``store_id`` only when
        the input names it. Both are None when the input does not tell.
        """
        try:
            data = _encode(input).encode("ascii")
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(f"input cannot be serialized to JSON: {exc}") from exc
        result: Dict[str, Optional[str]] = _raw_decode(self.route_json(data))[0]
        return result
