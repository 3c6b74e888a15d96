// Test program for the header-only C++ wrapper (bindings/cpp/shopauth.hpp).
//
//   c++ -std=c++17 -Wall -Wextra -Iinclude -Ibindings/cpp tests/c/cpp_test.cpp
//       target/debug/libshopauth.a -lpthread -ldl -lm -o cpp_test && ./cpp_test
//
// Exits 0 when every check passes, 1 otherwise. Run by tests/c_programs.rs
// and, under valgrind and ASan/UBSan, by scripts/sanitizers.sh.
#include "shopauth.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

int failures = 0;
int checks = 0;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        ++checks;                                                                   \
        if (!(cond)) {                                                              \
            ++failures;                                                             \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

// Runs `f`, expecting it to throw exactly E (or a subclass).
template <typename E, typename F>
bool throws(F&& f, std::string* what = nullptr) {
    try {
        f();
    } catch (const E& e) {
        if (what) *what = e.what();
        return true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "  unexpected exception: %s\n", e.what());
        return false;
    }
    return false;
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Value of the first `"key":"…"` string field (no unescaping: test data is plain).
std::string str_field(const std::string& json, const std::string& key) {
    const std::string pat = "\"" + key + "\":\"";
    const auto at = json.find(pat);
    if (at == std::string::npos) return {};
    const auto start = at + pat.size();
    const auto end = json.find('"', start);
    return end == std::string::npos ? std::string() : json.substr(start, end - start);
}

const std::string kSecret = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

std::string config(const std::string& secret = kSecret) {
    return R"({"secret":")" + secret + R"(",)"
           R"("apps":{"myshop":{"app_key":"cid","app_secret":"sec","redirect_uri":"https://host.example/cb"}},)"
           R"("platforms":{"mykey":{"kind":"key","credential":"token"},)"
           R"("myshop":{"kind":"oauth2","authorize_url":"https://as.example/authorize","token_url":"https://as.example/token"}}})";
}

const std::int64_t T0 = 1700000000000;  // 2023-11-14T22:13:20Z

void test_version() {
    const std::string v = shopauth::version();
    CHECK(!v.empty());
}

void test_type_traits() {
    static_assert(!std::is_copy_constructible_v<shopauth::Engine>, "Engine must not be copyable");
    static_assert(!std::is_copy_assignable_v<shopauth::Engine>, "Engine must not be copyable");
    static_assert(std::is_nothrow_move_constructible_v<shopauth::Engine>, "Engine must be nothrow-movable");
    static_assert(std::is_nothrow_move_assignable_v<shopauth::Engine>, "Engine must be nothrow-movable");
    static_assert(std::is_base_of_v<shopauth::Error, shopauth::InvalidArgument>);
    static_assert(std::is_base_of_v<shopauth::Error, shopauth::Rejected>);
    static_assert(std::is_base_of_v<shopauth::Error, shopauth::Panic>);
    static_assert(std::is_base_of_v<shopauth::Error, shopauth::Poisoned>);
    static_assert(std::is_base_of_v<std::runtime_error, shopauth::Error>);
}

void test_bad_config() {
    std::string what;
    // Well-formed JSON, bad field: refused with the path of the field.
    CHECK(throws<shopauth::Rejected>([] { shopauth::Engine e(config("00")); }, &what));
    CHECK(contains(what, "secret"));
    // Not a configuration at all: refused one way or the other, never a crash.
    CHECK(throws<shopauth::Error>([] { shopauth::Engine e("not json"); }));
    CHECK(throws<shopauth::Error>([] { shopauth::Engine e(""); }));
    CHECK(throws<shopauth::Error>([] { shopauth::Engine e{std::string_view{}}; }));
    CHECK(throws<shopauth::Error>([] { shopauth::Engine e(std::string("{\"secret\":\"\xff\xfe\"}")); }));
}

void test_key_flow() {
    shopauth::Engine e(config());
    CHECK(e.valid());
    CHECK(!e.poll_timeout().has_value());
    CHECK(e.poll_outputs() == "[]");
    CHECK(!e.poll_output().has_value());

    std::string r = e.handle(R"({"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"})", T0);
    CHECK(contains(r, "\"code\":200"));
    // A rule refusal is a reply, not an exception.
    r = e.handle(R"({"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"})", T0);
    CHECK(contains(r, "900009"));
    CHECK(contains(r, "store_exists"));
    r = e.handle(R"({"type":"authorize","client_id":"c1","store_id":"s1","auth_type":"KEY"})", T0);
    CHECK(contains(r, "900002"));
    r = e.handle(R"({"type":"query","client_id":"other","store_id":"s1"})", T0);
    CHECK(contains(r, "940002"));

    r = e.handle(R"({"type":"authorize","client_id":"c1","store_id":"s1","auth_type":"KEY","auth_info":{"token":"tok-123"}})",
                 T0 + 1);
    CHECK(contains(r, "\"code\":200"));
    // The transition(s) come out one by one, then nothing.
    bool authorized = false;
    int n = 0;
    while (auto out = e.poll_output()) {
        ++n;
        CHECK(contains(*out, "\"type\""));
        if (contains(*out, "\"transition\"") && str_field(*out, "to") == "authorized") authorized = true;
        CHECK(!contains(*out, "tok-123"));
    }
    CHECK(n >= 1);
    CHECK(authorized);
    CHECK(!e.poll_output().has_value());

    r = e.handle(R"({"type":"query","client_id":"c1","store_id":"s1"})", T0 + 2);
    CHECK(str_field(r, "state") == "authorized");
    CHECK(!contains(r, "tok-123"));
    r = e.handle(R"({"type":"credentials","client_id":"c1","store_id":"s1"})", T0 + 2);
    CHECK(str_field(r, "token") == "tok-123");

    r = e.handle(R"({"type":"revoke","client_id":"c1","store_id":"s1"})", T0 + 3);
    CHECK(contains(r, "\"code\":200"));
    const std::string all = e.poll_outputs();
    CHECK(all.size() >= 2 && all.front() == '[' && all.back() == ']');
    CHECK(contains(all, "\"revoked\""));
    CHECK(e.poll_outputs() == "[]");
}

void test_invalid_argument() {
    shopauth::Engine e(config());
    const char* bad[] = {"", "not json", "[1,2,3]", "42", "\"str\"", "null", "{}", R"({"type":"no_such_type"})",
                         R"({"type":42})", "{\"type\":\"query\"", "\xff\xfe\xfd"};
    for (const char* input : bad) {
        bool ok = false;
        try {
            (void)e.handle(input, T0);
        } catch (const shopauth::InvalidArgument& ex) {
            ok = true;
            CHECK(ex.status() == SHOPAUTH_INVALID_ARGUMENT);
            CHECK(ex.reply().has_value());
            if (ex.reply()) CHECK(contains(*ex.reply(), "900002"));
        } catch (const std::exception& ex) {
            std::fprintf(stderr, "  input %s: unexpected %s\n", input, ex.what());
        }
        if (!ok) std::fprintf(stderr, "  input not refused as invalid argument: %s\n", input);
        CHECK(ok);
    }
    // Embedded NUL: the length, not a terminator, delimits the input.
    const std::string with_nul("{\"type\":\"query\",\"client_id\":\"c1\",\"store_id\":\"s1\"}\0junk", 54);
    CHECK(throws<shopauth::InvalidArgument>([&] { (void)e.handle(with_nul, T0); }));
    // ... and a prefix of a longer buffer is read as given.
    const std::string longer = R"({"type":"query","client_id":"c1","store_id":"s1"}trailing garbage)";
    const std::string r = e.handle(std::string_view(longer).substr(0, longer.find("trailing")), T0);
    CHECK(contains(r, "940002"));
    // The engine is still fine.
    CHECK(contains(e.handle(R"({"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"})", T0),
                   "\"code\":200"));
}

void test_oauth2_and_timeouts() {
    shopauth::Engine e(config());
    e.handle(R"({"type":"register_store","client_id":"c1","store_id":"s2","platform":"myshop"})", T0);
    std::string r = e.handle(R"({"type":"authorize","client_id":"c1","store_id":"s2","auth_type":"URL"})", T0);
    CHECK(contains(r, "\"code\":200"));
    const std::string url = str_field(r, "auth_url");
    CHECK(url.rfind("https://as.example/authorize?", 0) == 0);
    CHECK(contains(url, "state="));
    // The attempt's deadline (request_ttl_s, 3600 s by default) is pending.
    const auto t = e.poll_timeout();
    CHECK(t.has_value());
    if (t) CHECK(*t > T0 && *t <= T0 + 3600 * 1000);
    // Nothing is due yet.
    e.handle_timeout(T0 + 1000);
    // After the deadline: failed (timeout).
    e.handle_timeout(T0 + 3600 * 1000 + 1);
    r = e.handle(R"({"type":"query","client_id":"c1","store_id":"s2"})", T0 + 3600 * 1000 + 2);
    CHECK(str_field(r, "state") == "failed");
    CHECK(contains(r, "\"timeout\""));
    CHECK(contains(e.poll_outputs(), "\"failed\""));
    // Time never moves backwards: an earlier now is taken as the latest.
    e.handle_timeout(0);
    e.handle_timeout(-1);
    r = e.handle(R"({"type":"query","client_id":"c1","store_id":"s2"})", -5);
    CHECK(contains(r, "\"code\":200"));
}

void test_snapshot_restore() {
    shopauth::Engine a(config());
    a.handle(R"({"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"})", T0);
    a.handle(R"({"type":"authorize","client_id":"c1","store_id":"s1","auth_type":"KEY","auth_info":{"token":"tok-9"}})", T0);
    a.handle(R"({"type":"register_store","client_id":"c1","store_id":"s2","platform":"myshop"})", T0);
    a.handle(R"({"type":"authorize","client_id":"c1","store_id":"s2","auth_type":"URL"})", T0);
    const std::string snap = a.snapshot();
    CHECK(!snap.empty() && snap.front() == '{');
    CHECK(contains(snap, "\"version\""));
    CHECK(!contains(snap, kSecret));

    shopauth::Engine b(config());
    b.restore(snap);
    const std::string q = R"({"type":"query","client_id":"c1","store_id":"s1"})";
    const std::string q2 = R"({"type":"query","client_id":"c1","store_id":"s2"})";
    CHECK(a.handle(q, T0 + 5) == b.handle(q, T0 + 5));
    CHECK(a.handle(q2, T0 + 5) == b.handle(q2, T0 + 5));
    CHECK(a.poll_timeout() == b.poll_timeout());

    // Garbage is an invalid argument; the engine is unchanged.
    const std::string before = b.snapshot();
    std::string what;
    CHECK(throws<shopauth::InvalidArgument>([&] { b.restore("garbage"); }));
    CHECK(throws<shopauth::InvalidArgument>([&] { b.restore(""); }));
    CHECK(throws<shopauth::InvalidArgument>([&] { b.restore("\xc3\x28"); }));
    CHECK(b.snapshot() == before);
    // A snapshot of another configuration is rejected; the engine is unchanged.
    shopauth::Engine other(config("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"));
    CHECK(throws<shopauth::Rejected>([&] { b.restore(other.snapshot()); }, &what));
    CHECK(b.snapshot() == before);
    CHECK(!contains(what, kSecret));
}

void test_fleet() {
    shopauth::Engine a(config());
    a.handle(R"({"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"})", T0);
    const std::string changes = a.take_changes();
    CHECK(contains(changes, "\"store_id\":\"s1\""));
    CHECK(contains(a.take_changes(), "\"stores\":[]"));
    // The record: the object after "record": (no braces inside its strings).
    const auto at = changes.find("\"record\":{");
    CHECK(at != std::string::npos);
    if (at == std::string::npos) return;
    const auto start = at + 9;
    std::size_t end = start;
    for (int depth = 0; end < changes.size(); ++end) {
        if (changes[end] == '{') ++depth;
        if (changes[end] == '}' && --depth == 0) break;
    }
    const std::string load = "{\"stores\":[" + changes.substr(start, end - start + 1) + "]}";
    shopauth::Engine b(config());
    b.load(load);
    const std::string q = R"({"type":"query","client_id":"c1","store_id":"s1"})";
    CHECK(contains(b.handle(q, T0), "\"code\":200"));
    CHECK(contains(b.route(q), "\"store_id\":\"s1\""));
    CHECK(a.route(q) == b.route(q));
    CHECK(b.route("[1]") == R"({"ref":null,"store_id":null})");
    std::string what;
    CHECK(throws<shopauth::Rejected>([&] { b.load(load); }, &what));
    CHECK(contains(what, "already_loaded"));
    CHECK(throws<shopauth::InvalidArgument>([&] { b.load("nope"); }));
    CHECK(throws<shopauth::InvalidArgument>([&] { (void)b.route("{"); }));
    a.unload(R"({"store_ids":["s1"]})");
    CHECK(contains(a.handle(q, T0), "940002"));
}

void test_move() {
    shopauth::Engine a(config());
    a.handle(R"({"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"})", T0);
    shopauth::Engine b(std::move(a));
    CHECK(!a.valid());  // NOLINT(bugprone-use-after-move): documented moved-from state
    CHECK(b.valid());
    CHECK(throws<shopauth::InvalidArgument>([&] { (void)a.handle("{}", T0); }));
    CHECK(throws<shopauth::InvalidArgument>([&] { (void)a.poll_timeout(); }));
    CHECK(throws<shopauth::InvalidArgument>([&] { (void)a.snapshot(); }));
    CHECK(contains(b.handle(R"({"type":"query","client_id":"c1","store_id":"s1"})", T0), "\"code\":200"));

    shopauth::Engine c(config());
    c = std::move(b);  // frees c's own engine
    CHECK(!b.valid());  // NOLINT(bugprone-use-after-move)
    CHECK(contains(c.handle(R"({"type":"query","client_id":"c1","store_id":"s1"})", T0), "\"code\":200"));
    c = std::move(c);  // self-move leaves it usable
    CHECK(c.valid());

    // release / adopt hand the raw handle over.
    shopauth_engine* raw = c.release();
    CHECK(raw != nullptr);
    CHECK(!c.valid());
    shopauth::Engine d = shopauth::Engine::adopt(raw);
    CHECK(d.get() == raw);
    CHECK(contains(d.handle(R"({"type":"query","client_id":"c1","store_id":"s1"})", T0), "\"code\":200"));
}

void test_threads() {
    shopauth::Engine e(config());
    constexpr int kThreads = 4;
    constexpr int kStores = 50;
    std::atomic<int> ok{0};
    std::atomic<int> bad{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kStores; ++i) {
                const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
                const std::string reg =
                    R"({"type":"register_store","client_id":"c1","store_id":")" + id + R"(","platform":"mykey"})";
                const std::string auth = R"({"type":"authorize","client_id":"c1","store_id":")" + id +
                                         R"(","auth_type":"KEY","auth_info":{"token":"tok-)" + id + R"("}})";
                try {
                    if (contains(e.handle(reg, T0 + i), "\"code\":200") &&
                        contains(e.handle(auth, T0 + i), "\"code\":200"))
                        ++ok;
                    else
                        ++bad;
                    (void)e.poll_outputs();
                } catch (const std::exception& ex) {
                    std::fprintf(stderr, "  thread: %s\n", ex.what());
                    ++bad;
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(ok == kThreads * kStores);
    CHECK(bad == 0);
    const std::string snap = e.snapshot();
    CHECK(contains(snap, "t3-49"));
}

}  // namespace

int main() {
    try {
        test_version();
        test_type_traits();
        test_bad_config();
        test_key_flow();
        test_invalid_argument();
        test_oauth2_and_timeouts();
        test_snapshot_restore();
        test_fleet();
        test_move();
        test_threads();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "uncaught exception: %s\n", e.what());
        return 1;
    }
    std::printf("cpp_test: %d checks, %d failed\n", checks, failures);
    std::printf("%d passed, %d failed\n", checks - failures, failures);
    return failures == 0 ? 0 : 1;
}
