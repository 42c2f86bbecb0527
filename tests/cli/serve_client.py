#!/usr/bin/env python3
"""dsocr serve from the outside, for tests/cli/test_serve.sh: the official openai client and raw
HTTP (http.client) against a running server on the tiny random checkpoint.

usage: serve_client.py SCENARIO --url URL --model ID --image PNG [--api-key KEY] [--expect JSON]
                       [--pid PID]
  main      (server: --api-key, --max-body-mb 1, --max-image-pixels 1500000) the openai client:
            models, one request (its text equals dsocr ocr's, from --expect), streamed (the
            chunks concatenate to the same text, the same token counts), 8 at once (each the same:
            the server decodes them together, --max-batch 8 by default);
            then every refusal over raw HTTP, /health answering after each
  limits    (server: --max-queue 1 --timeout-s 2 --max-batch 1) a full queue answers 503 with Retry-After; a
            request running past the timeout and one waiting behind it get 504; a stream that
            runs past it ends with an error event and [DONE]
  shutdown  SIGTERM to --pid while a streamed request runs and another runs beside it or waits: both are answered in
            full, and new connections are refused at once
Prints PASS:/FAIL: lines and "N passed, M failed"; exit status 1 on a failure. Without the openai
package (pinned in reference/requirements.txt) its checks are skipped with a message, except
under CI=true, where that is a failure.
"""
import argparse
import base64
import concurrent.futures
import gzip
import http.client
import json
import os
import signal
import struct
import threading
import time
import urllib.parse
import zlib

ARGS = None
RESULTS = {"pass": 0, "fail": 0}


def check(name, ok, detail=""):
    RESULTS["pass" if ok else "fail"] += 1
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok or not detail else f"\n    | {detail}"), flush=True)
    return ok


def request(method, path, body=None, headers=None, auth=True, timeout=120):
    """(status, headers, body bytes) of one request on its own connection."""
    u = urllib.parse.urlparse(ARGS.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Connection": "close"}
    if auth and ARGS.api_key:
        h["Authorization"] = "Bearer " + ARGS.api_key
    h.update(headers or {})
    try:
        conn.request(method, path, body=body, headers=h, encode_chunked="Transfer-Encoding" in h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def health():
    status, _, body = request("GET", "/health", auth=False, timeout=10)
    return status, (json.loads(body) if status == 200 else {})


def wait_for(name, cond, seconds=30):
    end = time.time() + seconds
    while time.time() < end:
        if cond(health()[1]):
            return True
        time.sleep(0.02)
    return check(name, False, f"not within {seconds} s; /health: {health()}")


def data_url(raw, kind="image/png"):
    return f"data:{kind};base64," + base64.b64encode(raw).decode()


def image_bytes():
    with open(ARGS.image, "rb") as f:
        return f.read()


def chat(text="Free OCR.", urls=None, max_tokens=8, **extra):
    urls = [data_url(image_bytes())] if urls is None else urls
    parts = [{"type": "text", "text": text}] + [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return dict({"model": ARGS.model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": parts}]},
                **extra)


def post(payload, headers=None, **kw):
    """POST /v1/chat/completions: a dict as JSON, anything else (bytes, an iterator of chunks) as it is."""
    body = json.dumps(payload) if isinstance(payload, dict) else payload
    return request("POST", "/v1/chat/completions", body, dict({"Content-Type": "application/json"}, **(headers or {})),
                **kw)


def png(width, height):
    """A grey PNG of that size (all zero), a few hundred bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes(width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def expect_error(name, result, status, code, message_part=""):
    got_status, headers, body = result
    try:
        err = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        err = {}
    ok = got_status == status and err.get("code") == code and message_part in err.get("message", "") \
        and "type" in err and headers.get("content-type") == "application/json; charset=utf-8" \
        and "content-encoding" not in headers
    check(f"{name}: {status} {code}", ok, f"got {got_status} {body[:300]!r}")
    hs, hj = health()
    check(f"{name}: /health still answers", hs == 200 and hj.get("status") == "ok", f"{hs} {hj}")
    return headers


# ------------------------------------------------------------------ main: the openai client
def openai_client():
    try:
        import openai  # noqa: F401 (pinned in reference/requirements.txt)
        return openai
    except ImportError as e:
        if os.environ.get("CI") == "true":
            check("the openai client imports (required under CI=true)", False, str(e))
        else:
            print(f"SKIP: the openai client checks: the openai package is not installed ({e}); "
                  "bash reference/setup.sh installs it (needs the network)")
        return None


def with_openai(openai, want_text):
    client = openai.OpenAI(base_url=ARGS.url + "/v1", api_key=ARGS.api_key, max_retries=0, timeout=120)
    ids = [m.id for m in client.models.list().data]
    check("openai: models.list gives the served model", ids == [ARGS.model], str(ids))
    messages = chat()["messages"]
    r = client.chat.completions.create(model=ARGS.model, messages=messages, max_tokens=8)
    text = r.choices[0].message.content
    check("openai: one request", r.object == "chat.completion" and r.choices[0].finish_reason == "length"
          and r.usage.completion_tokens == 8 and r.usage.prompt_tokens == 81 and r.usage.total_tokens == 89,
          str(r))
    check("openai: the text equals dsocr ocr's for the same page and prompt", text == want_text,
          f"{text!r} != {want_text!r}")
    pieces, finish, usage = [], None, None
    for c in client.chat.completions.create(model=ARGS.model, messages=messages, max_tokens=8, stream=True,
                                            stream_options={"include_usage": True}):
        if c.usage:
            usage = c.usage
        if c.choices:
            pieces += [c.choices[0].delta.content] if c.choices[0].delta.content else []
            finish = c.choices[0].finish_reason or finish
    check("openai: streamed, in several chunks that concatenate to the same text",
          "".join(pieces) == text and len(pieces) >= 2, f"{pieces!r}")
    check("openai: streamed: the same token counts, finish_reason length",
          usage is not None and usage.completion_tokens == 8 and usage.prompt_tokens == 81 and finish == "length",
          f"{usage} {finish}")
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.chat.completions.create(
            model=ARGS.model, messages=messages, max_tokens=8).choices[0].message.content, range(8)))
    check(f"openai: 8 requests at once all answered, each the single request's text ({time.time() - t0:.1f} s)",
          answers == [text] * 8, f"{answers!r}")
    try:
        client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=8)
        check("openai: an unknown model raises NotFoundError", False)
    except openai.NotFoundError as e:
        check("openai: an unknown model raises NotFoundError (model_not_found)", e.code == "model_not_found", str(e))
    try:
        openai.OpenAI(base_url=ARGS.url + "/v1", api_key="wrong", max_retries=0).models.list()
        check("openai: a wrong API key raises AuthenticationError", False)
    except openai.AuthenticationError as e:
        check("openai: a wrong API key raises AuthenticationError", e.status_code == 401, str(e))


def refusals():
    good = chat()
    expect_error("malformed JSON", post(b'{"model": "x", "messages": ['), 400, "invalid_json", "malformed JSON")
    expect_error("wrong content type", post(json.dumps(good), {"Content-Type": "text/plain"}), 415,
                 "unsupported_media_type")
    expect_error("no content type", request("POST", "/v1/chat/completions", json.dumps(good), {}), 415,
                 "unsupported_media_type")
    expect_error("multipart form", post(b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nx\r\n--b--\r\n",
                                        {"Content-Type": "multipart/form-data; boundary=b"}), 415,
                 "unsupported_media_type")
    expect_error("no image", post(chat(urls=[])), 400, "invalid_image_count", "no image")
    expect_error("two images", post(chat(urls=[data_url(image_bytes())] * 2)), 400, "invalid_image_count", "2 images")
    expect_error("broken base64", post(chat(urls=["data:image/png;base64,iVBORw0KGgo*AAA"])), 400, "invalid_base64",
                 "'*' at offset")
    expect_error("an http URL", post(chat(urls=["http://127.0.0.1/a.png"])), 400, "invalid_request",
                 "only data: URLs")
    expect_error("not an image", post(chat(urls=[data_url(b"hello, this is text")])), 400, "invalid_image",
                 "not a PNG or JPEG")
    expect_error("a corrupt PNG (the decoder's message)", post(chat(urls=[data_url(image_bytes()[:3000])])), 400,
                 "invalid_image", "corrupt PNG")
    expect_error("an image over --max-image-pixels", post(chat(urls=[data_url(png(1300, 1300))])), 413,
                 "image_too_large", "1300x1300 = 1690000 pixels")
    expect_error("a body over --max-body-mb", post(b"x" * (2 << 20)), 413, "body_too_large")
    expect_error("a 100 MB body", post(b" " * (100 << 20)), 413, "body_too_large")
    expect_error("a chunked body over --max-body-mb", post(iter([b" " * (256 << 10)] * 6),
                                                          {"Transfer-Encoding": "chunked"}), 413, "body_too_large")
    expect_error("a gzip body that inflates over --max-body-mb",
                 post(gzip.compress(b" " * (8 << 20)), {"Content-Encoding": "gzip"}), 413, "body_too_large")
    expect_error("an unknown model", post(dict(good, model="gpt-4o")), 404,
                 "model_not_found", "'gpt-4o' does not exist")
    expect_error("max_tokens 0", post(dict(good, max_tokens=0)), 400, "invalid_request", "max_tokens")
    expect_error("an assistant turn", post(dict(good, messages=good["messages"] + [
        {"role": "assistant", "content": "x"}])), 400, "invalid_request", "role 'assistant'")
    h = expect_error("no API key", post(good, auth=False), 401, "invalid_api_key")
    check("no API key: WWW-Authenticate: Bearer", h.get("www-authenticate") == "Bearer", str(h))
    expect_error("a wrong API key", post(good, {"Authorization": "Bearer nope"}, auth=False), 401, "invalid_api_key")
    expect_error("models without the API key", request("GET", "/v1/models", auth=False), 401, "invalid_api_key")
    expect_error("an unknown route", request("GET", "/v1/nothing"), 404, "not_found", "unknown route GET /v1/nothing")
    expect_error("an unknown POST route", request("POST", "/v2/x", b"{}", {"Content-Type": "application/json"}), 404,
                 "not_found")
    h = expect_error("GET on the chat route", request("GET", "/v1/chat/completions"), 405, "method_not_allowed")
    check("405: Allow: POST", h.get("allow") == "POST", str(h))
    status, _, body = request("GET", "/v1/models/" + ARGS.model)
    check("GET /v1/models/ID", status == 200 and json.loads(body)["id"] == ARGS.model, f"{status} {body!r}")
    status, _, body = request("GET", "/health", auth=False)
    check("/health needs no API key: 200 {\"status\": \"ok\", ...}",
          status == 200 and json.loads(body)["status"] == "ok", f"{status} {body!r}")


def scenario_main():
    want = json.load(open(ARGS.expect))["text"]
    status, _, body = post(chat())
    answer = json.loads(body) if status == 200 else {}
    check("raw HTTP: one request answers dsocr ocr's text",
          status == 200 and answer["choices"][0]["message"]["content"] == want, f"{status} {body[:300]!r}")
    openai = openai_client()
    if openai:
        with_openai(openai, want)
    refusals()


# ------------------------------------------------------------------ limits: queue and timeout
def in_thread(fn):
    box = {}
    t = threading.Thread(target=lambda: box.update(result=fn(), done=time.time()))
    t.start()
    return t, box


def scenario_limits():
    t0 = time.time()
    a, ra = in_thread(lambda: post(chat(max_tokens=4000)))
    wait_for("the long request runs", lambda h: h.get("running") == 1)
    b, rb = in_thread(lambda: post(chat(max_tokens=4000)))
    wait_for("the second request waits", lambda h: h.get("queued") == 1)
    h = expect_error("a full queue (--max-queue 1)", post(chat()), 503, "queue_full")
    check("503: Retry-After in seconds", h.get("retry-after", "").isdigit() and int(h["retry-after"]) >= 1, str(h))
    a.join()
    b.join()
    expect_error("the running request past --timeout-s 2", ra["result"], 504, "timeout", "generation stopped")
    took = ra["done"] - t0
    check(f"it stopped at the timeout ({took:.1f} s), not after its 4000 tokens", 1.9 <= took <= 12, f"{took}")
    expect_error("the waiting request past --timeout-s 2", rb["result"], 504, "timeout")
    status, _, body = post(chat())
    check("a short request afterwards is answered", status == 200, f"{status} {body[:200]!r}")
    status, headers, body = post(chat(max_tokens=4000, stream=True))
    events = sse_events(body)
    chunks = events[:-1]
    check("a stream past the timeout: 200, text/event-stream, chunks, then an error event and [DONE]",
          status == 200 and headers.get("content-type") == "text/event-stream" and len(chunks) >= 3
          and chunks[1]["object"] == "chat.completion.chunk" and chunks[-1].get("error", {}).get("code") == "timeout"
          and events[-1] == "[DONE]", f"{status} {headers} {events[:2]} ... {events[-2:]}")


# ------------------------------------------------------------------ shutdown
def sse_events(body):
    """The data of each server-sent event, [DONE] as it is, the others parsed."""
    events = [e[len("data: "):] for e in body.decode().split("\n\n") if e.startswith("data: ")]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


def scenario_shutdown():
    a, ra = in_thread(lambda: post(chat(max_tokens=150, stream=True, stream_options={"include_usage": True})))
    wait_for("a streamed request runs", lambda h: h.get("running") == 1)
    b, rb = in_thread(lambda: post(chat(max_tokens=8)))
    # batched (the main server: --max-batch 8) it runs beside the first; one at a time it waits
    wait_for("a second request runs or waits", lambda h: h.get("queued") == 1 or h.get("running") == 2)
    os.kill(ARGS.pid, signal.SIGTERM)
    time.sleep(0.3)
    try:
        request("GET", "/health", auth=False, timeout=5)
        check("after SIGTERM new connections are refused", False, "/health answered")
    except ConnectionRefusedError:
        check("after SIGTERM new connections are refused", True)
    a.join()
    b.join()
    status, _, body = ra["result"]
    events = sse_events(body) if status == 200 else []
    usage = [e["usage"] for e in events if isinstance(e, dict) and e.get("usage")]
    check("SIGTERM: the running stream is answered in full (150 tokens, then [DONE])",
          usage and usage[0]["completion_tokens"] == 150 and events[-1] == "[DONE]", f"{status} {events[-3:]}")
    status, _, body = rb["result"]
    check("SIGTERM: the second request is answered in full (8 tokens)",
          status == 200 and json.loads(body)["usage"]["completion_tokens"] == 8, f"{status} {body[:200]!r}")


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["main", "limits", "shutdown"])
    p.add_argument("--url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--api-key", default="")
    p.add_argument("--expect")
    p.add_argument("--pid", type=int)
    ARGS = p.parse_args()
    try:
        {"main": scenario_main, "limits": scenario_limits, "shutdown": scenario_shutdown}[ARGS.scenario]()
    except Exception as e:  # a crash of the checks is a failure, reported as one
        import traceback
        traceback.print_exc()
        check(f"{ARGS.scenario}: ran to the end", False, repr(e))
    print(f"{RESULTS['pass']} passed, {RESULTS['fail']} failed")
    return 1 if RESULTS["fail"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
