#!/usr/bin/env python3
"""Regenerates the engine-derived seeds of fuzz/corpus/ (live state nonces and
request ids for handle_bytes, snapshots for restore_bytes) through the C ABI
of the built shared library. Run it after a change of the snapshot format or
of the fuzz configuration (which must stay the same as `config()` and
`prelude()` in fuzz/src/lib.rs):

    cargo build && python3 fuzz/gen_seeds.py target/debug/libshopauth.so fuzz/corpus

The other seeds (hand-written inputs, random bytes for `sequence`) are
committed as they are.
"""
import ctypes, json, os, re, sys

lib = ctypes.CDLL(sys.argv[1])
out = sys.argv[2]
lib.shopauth_engine_new.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
lib.shopauth_engine_handle.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int64, ctypes.POINTER(ctypes.c_void_p)]
lib.shopauth_engine_handle_timeout.argtypes = [ctypes.c_void_p, ctypes.c_int64]
lib.shopauth_engine_poll_outputs.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
lib.shopauth_engine_snapshot.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
lib.shopauth_engine_poll_timeout.argtypes = [ctypes.c_void_p]
lib.shopauth_engine_poll_timeout.restype = ctypes.c_int64
lib.shopauth_string_free.argtypes = [ctypes.c_void_p]
lib.shopauth_engine_free.argtypes = [ctypes.c_void_p]

def s(p):
    v = ctypes.cast(p, ctypes.c_char_p).value.decode()
    lib.shopauth_string_free(p)
    return v

SECRET = "5ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5"
config = {
 "secret": SECRET,
 "apps": {
  "taobao_tw": {"app_key": "123456", "app_secret": "CFGSECRET-iop", "redirect_uri": "https://host.example/cb/taobao_tw"},
  "lazada": {"app_key": "654321", "app_secret": "CFGSECRET-lz", "redirect_uri": "https://host.example/cb/lazada", "uuid": "u-1"},
  "shopline": {"app_key": "slkey", "app_secret": "CFGSECRET-sl", "redirect_uri": "https://host.example/cb/shopline", "scope": "read_orders"},
  "taobao": {"checker": "vvtool", "access_token": "CFGSECRET-vv", "auth_page_url": "https://vv.example/auth?shop={seller_id}", "edition": 1},
  "myshop": {"app_key": "cid", "app_secret": "CFGSECRET-oauth", "redirect_uri": "https://host.example/cb/myshop"},
  "basicshop": {"app_key": "bid", "app_secret": "CFGSECRET-basic", "redirect_uri": "https://host.example/cb/basicshop"}},
 "platforms": {
  "myshop": {"kind": "oauth2", "authorize_url": "https://as.example/authorize", "token_url": "https://as.example/token", "scope": "read"},
  "basicshop": {"kind": "oauth2", "authorize_url": "https://basic.example/auth?x=1", "token_url": "https://basic.example/token",
                "client_auth": "client_secret_basic", "pkce": False, "seller_id_required": True,
                "rate_limit_per_s": 2, "code_ttl_s": 120, "extra_authorize_params": {"prompt": "consent"}},
  "mykey": {"kind": "key", "credential": "token"},
  "apikey": {"kind": "key", "credential": "api_key_secret",
             "verify": {"method": "POST", "url": "https://verify.example/check?key={api_key}",
                        "headers": [["X-Api-Secret", "{api_secret}"]], "body": "{\"k\":\"{api_key}\"}", "valid_statuses": [200, 204]}}},
 "timing": {"request_ttl_s": 600, "refresh_lead_s": 60, "request_timeout_s": 30}}
T0 = 1700000000000

class E:
    def __init__(self):
        c = json.dumps(config).encode()
        e = ctypes.c_void_p(); err = ctypes.c_void_p()
        st = lib.shopauth_engine_new(c, len(c), ctypes.byref(e), ctypes.byref(err))
        assert st == 0, (st, err.value and s(err))
        self.e = e
    def h(self, inp, now):
        b = json.dumps(inp).encode() if not isinstance(inp, (bytes, str)) else (inp.encode() if isinstance(inp, str) else inp)
        r = ctypes.c_void_p()
        st = lib.shopauth_engine_handle(self.e, b, len(b), now, ctypes.byref(r))
        return st, json.loads(s(r))
    def outs(self):
        r = ctypes.c_void_p(); lib.shopauth_engine_poll_outputs(self.e, ctypes.byref(r)); return json.loads(s(r))
    def snap(self):
        r = ctypes.c_void_p(); assert lib.shopauth_engine_snapshot(self.e, ctypes.byref(r)) == 0; return s(r)
    def timeout(self, now):
        lib.shopauth_engine_handle_timeout(self.e, now)

PRELUDE = [
 '{"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey","notify_url":"https://biz.example/n","notify_secret":"SECRET-n1"}',
 '{"type":"authorize","client_id":"c1","store_id":"s1","auth_type":"KEY","auth_info":{"token":"SECRET-tok-1"}}',
 '{"type":"register_store","client_id":"c1","store_id":"s2","platform":"myshop"}',
 '{"type":"authorize","client_id":"c1","store_id":"s2","auth_type":"URL","redirect_url":"https://biz.example/done"}',
 '{"type":"register_store","client_id":"c1","store_id":"s3","platform":"apikey"}',
 '{"type":"authorize","client_id":"c1","store_id":"s3","auth_type":"KEY","auth_info":{"api_key":"k1","api_secret":"SECRET-as-1"}}',
 '{"type":"register_store","client_id":"c2","store_id":"s4","platform":"taobao"}',
 '{"type":"authorize","client_id":"c2","store_id":"s4","auth_type":"URL","seller_id":"1001"}',
 '{"type":"register_store","client_id":"c2","store_id":"s5","platform":"taobao_tw"}',
 '{"type":"authorize","client_id":"c2","store_id":"s5","auth_type":"URL"}',
 '{"type":"register_store","client_id":"c2","store_id":"s6","platform":"shopline"}',
]
e = E()
urls = {}
for i in PRELUDE:
    st, r = e.h(i, T0)
    assert st == 0, r
    if r["data"] and "auth_url" in r["data"]:
        urls[json.loads(i)["store_id"]] = r["data"]["auth_url"]
outs = e.outs()
reqs = [o for o in outs if o["type"] == "http_request"]
def nonce(url, k="state="):
    m = re.search(r"[?&#]" + k + r"([^&#]*)", url); return m.group(1)
hb = os.path.join(out, "handle_bytes")
n2 = nonce(urls["s2"]); n5 = nonce(urls["s5"])
seeds = {
 "redirect_live_myshop": {"type":"oauth_redirect","platform":"myshop","query":f"code=abc&state={n2}"},
 "redirect_live_iop": {"type":"oauth_redirect","platform":"taobao_tw","params":{"code":"0_abc","state":n5}},
 "redirect_denied_myshop": {"type":"oauth_redirect","platform":"myshop","query":f"error=access_denied&state={n2}"},
}
for r in reqs:
    if r["purpose"] == "key_verify":
        seeds["answer_key_verify"] = {"type":"http_response","request_id":r["request_id"],"status":200,"body":""}
        seeds["fail_key_verify"] = {"type":"http_failure","request_id":r["request_id"],"error":"timeout"}
    if r["purpose"] == "status_check":
        seeds["answer_status_check"] = {"type":"http_response","request_id":r["request_id"],"status":200,"body":json.dumps({"code":0,"data":{"status":"subAuthorize","withholding_money":2}})}
        seeds["answer_status_check_302"] = {"type":"http_response","request_id":r["request_id"],"status":200,"body":json.dumps({"code":302,"msg":"not yet","data":{"url":"https://vv.example/x"}})}
for k, v in seeds.items():
    open(os.path.join(hb, k), "wb").write(json.dumps(v, separators=(",",":")).encode())
# A full oauth2 flow: redirect, then answer the token request (id predicted from the engine below).
st, r = e.h(seeds["redirect_live_myshop"], T0 + 1000)
tok = [o for o in e.outs() if o["type"] == "http_request" and o["purpose"] == "token_create"][0]
flow = [json.dumps(seeds["redirect_live_myshop"], separators=(",",":")).encode(),
        json.dumps({"type":"http_response","request_id":tok["request_id"],"status":200,"body":json.dumps({"access_token":"SECRET-AT","refresh_token":"SECRET-RT","expires_in":3600})}, separators=(",",":")).encode(),
        b'{"type":"credentials","client_id":"c1","store_id":"s2"}',
        b'{"type":"token_rejected","client_id":"c1","store_id":"s2"}']
open(os.path.join(hb, "multi_oauth2_flow"), "wb").write(b"\xff".join(flow))
# restore_bytes seeds: snapshots at several points.
rb = os.path.join(out, "restore_bytes")
e2 = E()
open(os.path.join(rb, "empty_engine"), "w").write(e2.snap())
e3 = E()
for i in PRELUDE: e3.h(i, T0)
open(os.path.join(rb, "prelude_undrained"), "w").write(e3.snap())
e3.outs()
open(os.path.join(rb, "prelude"), "w").write(e3.snap())
st, r = e3.h(seeds["redirect_live_myshop"], T0 + 1000)
open(os.path.join(rb, "token_in_flight"), "w").write(e3.snap())
tok = [o for o in e3.outs() if o["type"] == "http_request" and o["purpose"] == "token_create"][0]
e3.h({"type":"http_response","request_id":tok["request_id"],"status":200,"body":json.dumps({"access_token":"SECRET-AT","refresh_token":"SECRET-RT","expires_in":3600})}, T0 + 2000)
open(os.path.join(rb, "authorized_undrained"), "w").write(e3.snap())
e3.outs()
e3.timeout(T0 + 3500 * 1000)
open(os.path.join(rb, "refresh_due"), "w").write(e3.snap())
e3.outs()
e3.timeout(T0 + 2 * 86400 * 1000)
e3.outs()
open(os.path.join(rb, "two_days_later"), "w").write(e3.snap())
# Check: an engine built from the same configuration (keys in another order)
# accepts every snapshot seed.
c = json.dumps(config, sort_keys=True, separators=(",",":")).encode()
e = ctypes.c_void_p(); err = ctypes.c_void_p()
assert lib.shopauth_engine_new(c, len(c), ctypes.byref(e), ctypes.byref(err)) == 0
lib.shopauth_engine_restore.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
for f in sorted(os.listdir(rb)):
    b = open(os.path.join(rb, f), "rb").read()
    st = lib.shopauth_engine_restore(e, b, len(b), ctypes.byref(err))
    assert st == 0, (f, st, err.value and s(err))
print("seeds written to", out)
