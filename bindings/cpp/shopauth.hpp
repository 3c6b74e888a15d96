// shopauth.hpp — header-only C++17 wrapper over the shopauth C ABI
// (include/shopauth.h, spec §6).
//
// Build: add both `include/` and `bindings/cpp/` to the include path and link
// the static or shared library, e.g.
//
//   c++ -std=c++17 -Iinclude -Ibindings/cpp host.cpp
//       target/release/libshopauth.a -lpthread -ldl -lm
//
// What it gives:
//   * shopauth::Engine — owns one `shopauth_engine*`; move-only; freed by the
//     destructor. All calls are forwarded to the C functions; the engine
//     serializes concurrent calls itself, so one Engine may be shared between
//     threads (by reference) like the C handle.
//   * std::string in and out: every string the library hands out is copied
//     into a std::string and released with shopauth_string_free at once, even
//     when an exception is thrown.
//   * Exceptions only for what is not a reply:
//       shopauth::InvalidArgument — SHOPAUTH_INVALID_ARGUMENT (input that is
//         not UTF-8, not a JSON object, no/unknown `type`, over 16 MiB; a
//         snapshot that does not parse; a moved-from Engine). For handle() the
//         900002 envelope the library wrote is available as reply().
//       shopauth::Rejected — a configuration (constructor), a snapshot
//         (restore) or a load the library refused (SHOPAUTH_REJECTED there).
//       shopauth::Panic — SHOPAUTH_PANIC: an internal bug was caught; the
//         engine is poisoned from now on.
//       shopauth::Poisoned — SHOPAUTH_POISONED: the engine panicked earlier.
//     A reply with SHOPAUTH_REJECTED from handle() is an ordinary envelope
//     (`{"code": 900002, ..., "kind": ...}`) and is returned, not thrown.
#ifndef SHOPAUTH_HPP
#define SHOPAUTH_HPP

// The C standard headers the C header may include are included first, outside
// the extern "C" block below, so that their C++ wrappers are never given C
// linkage. The extern "C" block makes the wrapper work whether or not the
// generated header carries its own `#ifdef __cplusplus` guard.
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "shopauth.h"
}

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace shopauth {

/// Base of every exception thrown by this wrapper.
class Error : public std::runtime_error {
public:
    Error(shopauth_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    /// The C status that caused it.
    shopauth_status status() const noexcept { return status_; }

private:
    shopauth_status status_;
};

/// SHOPAUTH_INVALID_ARGUMENT.
class InvalidArgument : public Error {
public:
    explicit InvalidArgument(const std::string& message, std::optional<std::string> reply = std::nullopt)
        : Error(SHOPAUTH_INVALID_ARGUMENT, message), reply_(std::move(reply)) {}
    /// For handle(): the 900002 envelope the library wrote, if any.
    const std::optional<std::string>& reply() const noexcept { return reply_; }

private:
    std::optional<std::string> reply_;
};

/// SHOPAUTH_REJECTED from the constructor (configuration) or restore (snapshot).
class Rejected : public Error {
public:
    explicit Rejected(const std::string& message) : Error(SHOPAUTH_REJECTED, message) {}
};

/// SHOPAUTH_PANIC: an internal bug was caught; the engine is now poisoned.
class Panic : public Error {
public:
    explicit Panic(const std::string& message) : Error(SHOPAUTH_PANIC, message) {}
};

/// SHOPAUTH_POISONED: the engine panicked earlier and refuses further use.
class Poisoned : public Error {
public:
    explicit Poisoned(const std::string& message) : Error(SHOPAUTH_POISONED, message) {}
};

/// The library's version string.
inline std::string version() {
    const char* v = shopauth_version();
    return v ? std::string(v) : std::string();
}

namespace detail {

/// Owns a string handed out by the library.
class CString {
public:
    CString() noexcept = default;
    CString(const CString&) = delete;
    CString& operator=(const CString&) = delete;
    ~CString() { shopauth_string_free(p_); }
    char** out() noexcept { return &p_; }
    bool empty() const noexcept { return p_ == nullptr; }
    std::string str() const { return p_ ? std::string(p_) : std::string(); }
    std::optional<std::string> opt() const {
        return p_ ? std::optional<std::string>(std::string(p_)) : std::nullopt;
    }

private:
    char* p_ = nullptr;
};

/// A non-NULL pointer for a (possibly empty) view: an empty std::string_view
/// may carry a NULL data(), which the C ABI would take for a missing pointer.
inline const char* ptr(std::string_view s) noexcept { return s.data() ? s.data() : ""; }

inline std::string describe(const char* what, shopauth_status status, const std::string& detail) {
    std::string m = "shopauth: ";
    m += what;
    switch (status) {
        case SHOPAUTH_OK: m += ": ok"; break;
        case SHOPAUTH_REJECTED: m += ": rejected"; break;
        case SHOPAUTH_EMPTY: m += ": empty"; break;
        case SHOPAUTH_INVALID_ARGUMENT: m += ": invalid argument"; break;
        case SHOPAUTH_PANIC: m += ": internal error (engine poisoned)"; break;
        case SHOPAUTH_POISONED: m += ": engine poisoned by an earlier internal error"; break;
        default: m += ": unknown status " + std::to_string(static_cast<long>(status)); break;
    }
    if (!detail.empty()) {
        m += ": ";
        m += detail;
    }
    return m;
}

[[noreturn]] inline void raise(const char* what, shopauth_status status, const std::string& detail = std::string(),
                               std::optional<std::string> reply = std::nullopt) {
    const std::string message = describe(what, status, detail);
    switch (status) {
        case SHOPAUTH_INVALID_ARGUMENT: throw InvalidArgument(message, std::move(reply));
        case SHOPAUTH_REJECTED: throw Rejected(message);
        case SHOPAUTH_PANIC: throw Panic(message);
        case SHOPAUTH_POISONED: throw Poisoned(message);
        default: throw Error(status, message);
    }
}

}  // namespace detail

/// One engine (spec §1): every store, request, timer and queued output.
class Engine {
public:
    /// Builds an engine from a configuration JSON text. Throws Rejected for a
    /// configuration the library refuses (the message names the bad field),
    /// InvalidArgument for text it cannot read at all.
    explicit Engine(std::string_view config) {
        shopauth_engine* engine = nullptr;
        detail::CString error;
        const shopauth_status s = shopauth_engine_new(detail::ptr(config), config.size(), &engine, error.out());
        if (s != SHOPAUTH_OK || engine == nullptr) {
            if (engine != nullptr) shopauth_engine_free(engine);
            detail::raise("configuration", s == SHOPAUTH_OK ? SHOPAUTH_INVALID_ARGUMENT : s, error.str());
        }
        engine_ = engine;
    }

    /// Takes ownership of a handle from shopauth_engine_new (may be NULL).
    static Engine adopt(shopauth_engine* engine) noexcept { return Engine(engine, Adopt{}); }

    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;
    Engine(Engine&& other) noexcept : engine_(std::exchange(other.engine_, nullptr)) {}
    Engine& operator=(Engine&& other) noexcept {
        if (this != &other) {
            reset();
            engine_ = std::exchange(other.engine_, nullptr);
        }
        return *this;
    }
    ~Engine() { reset(); }

    /// False for a moved-from (or released) engine.
    bool valid() const noexcept { return engine_ != nullptr; }
    explicit operator bool() const noexcept { return valid(); }
    /// The C handle, still owned by this object.
    shopauth_engine* get() const noexcept { return engine_; }
    /// Gives up ownership of the C handle (free it with shopauth_engine_free).
    shopauth_engine* release() noexcept { return std::exchange(engine_, nullptr); }

    /// One input (a JSON object text). Returns the reply envelope for accepted
    /// inputs (code 200) and for inputs refused by a rule (SHOPAUTH_REJECTED:
    /// the error envelope). Throws InvalidArgument (with reply()) for input
    /// that is not a JSON object with a known type, Panic / Poisoned.
    std::string handle(std::string_view input, std::int64_t now_ms) {
        require("handle");
        detail::CString reply;
        const shopauth_status s =
            shopauth_engine_handle(engine_, detail::ptr(input), input.size(), now_ms, reply.out());
        if (s == SHOPAUTH_OK || s == SHOPAUTH_REJECTED) {
            if (reply.empty()) detail::raise("handle (no reply written)", SHOPAUTH_PANIC);
            return reply.str();
        }
        detail::raise("handle", s, reply.str(), reply.opt());
    }

    /// Time has passed: fire what is due at now_ms.
    void handle_timeout(std::int64_t now_ms) {
        require("handle_timeout");
        const shopauth_status s = shopauth_engine_handle_timeout(engine_, now_ms);
        if (s != SHOPAUTH_OK) detail::raise("handle_timeout", s);
    }

    /// The next queued output (a JSON object text), or nullopt when none.
    std::optional<std::string> poll_output() {
        require("poll_output");
        detail::CString out;
        const shopauth_status s = shopauth_engine_poll_output(engine_, out.out());
        if (s == SHOPAUTH_OK) return out.str();
        if (s == SHOPAUTH_EMPTY) return std::nullopt;
        detail::raise("poll_output", s);
    }

    /// Every queued output as one JSON array text ("[]" when none).
    std::string poll_outputs() {
        require("poll_outputs");
        detail::CString out;
        const shopauth_status s = shopauth_engine_poll_outputs(engine_, out.out());
        if (s == SHOPAUTH_OK) return out.empty() ? std::string("[]") : out.str();
        detail::raise("poll_outputs", s);
    }

    /// When handle_timeout must next be called (Unix epoch ms), or nullopt.
    /// A poisoned engine reports nullopt.
    std::optional<std::int64_t> poll_timeout() const {
        require("poll_timeout");
        const std::int64_t t = shopauth_engine_poll_timeout(engine_);
        if (t < 0) return std::nullopt;
        return t;
    }

    /// The whole state as a JSON object text.
    std::string snapshot() const {
        require("snapshot");
        detail::CString out;
        const shopauth_status s = shopauth_engine_snapshot(engine_, out.out());
        if (s != SHOPAUTH_OK) detail::raise("snapshot", s);
        return out.str();
    }

    /// Replaces the state with a snapshot. Throws InvalidArgument for a
    /// snapshot that does not parse, Rejected for one of another major
    /// version or another configuration; the engine is unchanged then.
    void restore(std::string_view snapshot) {
        require("restore");
        detail::CString error;
        const shopauth_status s =
            shopauth_engine_restore(engine_, detail::ptr(snapshot), snapshot.size(), error.out());
        if (s != SHOPAUTH_OK) detail::raise("restore", s, error.str());
    }

    /// Every store changed since the previous take, with the engine header,
    /// as one JSON text (spec §10).
    std::string take_changes() {
        require("take_changes");
        detail::CString out;
        const shopauth_status s = shopauth_engine_take_changes(engine_, out.out());
        if (s != SHOPAUTH_OK) detail::raise("take_changes", s);
        return out.str();
    }

    /// Adds store records and foreign claims (spec §11), all or nothing.
    /// Throws Rejected (the rule in what()) when a store is already loaded,
    /// a claim conflicts, a record is refused; InvalidArgument for a text
    /// that is not JSON of that shape. The engine is unchanged then.
    void load(std::string_view text) {
        require("load");
        detail::CString error;
        const shopauth_status s =
            shopauth_engine_load(engine_, detail::ptr(text), text.size(), error.out());
        if (s != SHOPAUTH_OK) detail::raise("load", s, error.str());
    }

    /// Forgets stores and foreign claims (spec §11); unknown ones are ignored.
    void unload(std::string_view text) {
        require("unload");
        detail::CString error;
        const shopauth_status s =
            shopauth_engine_unload(engine_, detail::ptr(text), text.size(), error.out());
        if (s != SHOPAUTH_OK) detail::raise("unload", s, error.str());
    }

    /// The store an input is for: `{"ref": ..., "store_id": ...}` (spec §11).
    /// Throws InvalidArgument for a text that is not JSON.
    std::string route(std::string_view input) const {
        require("route");
        detail::CString out;
        const shopauth_status s =
            shopauth_engine_route(engine_, detail::ptr(input), input.size(), out.out());
        if (s != SHOPAUTH_OK) detail::raise("route", s, out.str());
        return out.str();
    }

private:
    struct Adopt {};
    Engine(shopauth_engine* engine, Adopt) noexcept : engine_(engine) {}

    void require(const char* what) const {
        if (engine_ == nullptr) throw InvalidArgument(std::string("shopauth: ") + what + ": engine is empty (moved from or released)");
    }
    void reset() noexcept {
        if (engine_ != nullptr) shopauth_engine_free(std::exchange(engine_, nullptr));
    }

    shopauth_engine* engine_ = nullptr;
};

}  // namespace shopauth

#endif  // SHOPAUTH_HPP
