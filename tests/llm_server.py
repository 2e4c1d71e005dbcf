"""A scripted chat-completions server for the LLM labeler's tests (tests/test_llm_label.py, docs/LLM_LABEL.md).

It speaks the subset of POST /v1/chat/completions that `musae label --labeler llm` and `musae score` use, binds
127.0.0.1 on an ephemeral port, answers at most `max_requests` requests and stops itself after `max_seconds`.
Every request is checked: valid JSON, the model name, the Authorization header, and each input_audio part a
plain base64 (no data: prefix) mono 16-bit WAV at the expected rate and duration. The clips are the tones of
`musae synth_acts --audio` (clip c is a sine at 100 + 10·c Hz), so each part is decoded back to its clip number.
A request that fails a check is answered 400 and its reason kept in `errors`.

Label requests (no "Feature description:" in the text) are grouped by the set of clips they carry: each new set
gets the next scenario of `label_script` (then "good"), and the number of the set, S, names its label,
"concept S<S>". Scenarios:
  good                  a valid answer
  malformed_then_good   prose first; the retry (a request holding the assistant's answer) gets a valid answer
  malformed             prose, also to the retry
  bad_field             confidence 2 (out of [0, 1]), also to the retry
  429_then_good         429 with Retry-After: 1, then a valid answer
  500                   500 every time
  hang_then_good        no answer for `hang_s` (the client's timeout is shorter), then a valid answer
  reset_then_good       the connection reset (RST), then a valid answer
  reset                 reset every time
Detection requests (the text names "Feature description: concept S<S>...") get, per clip c, P(1) =
((37·c + 11) mod 100 + 0.5) / 100 and the answer 1 when P(1) > 0.5, with log-probs when asked; a batch whose
sorted clips sum to 0 mod 7 gets a list one too short. Everything is logged in `log` for the test to recompute.
"""
import base64
import binascii
import hashlib
import io
import json
import math
import os
import re
import signal
import socket
import struct
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LABEL_RETRY_MARK = "That answer cannot be used"


def clip_of(samples, rate):
    """The clip number of a synth_acts tone from its rising zero crossings."""
    n = len(samples)
    rising = sum(1 for i in range(1, n) if samples[i - 1] < 0 <= samples[i])
    hz = rising * rate / n
    return round((hz - 100) / 10)


def p_one(c):
    return ((37 * c + 11) % 100 + 0.5) / 100


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model, key, audio_rate, clip_seconds, label_script=(), hang_s=20, max_requests=3000,
                 max_seconds=500, one_audio_gap=0.5):
        super().__init__(("127.0.0.1", 0), Handler)
        self.model, self.key, self.audio_rate, self.clip_seconds = model, key, audio_rate, clip_seconds
        self.label_script, self.hang_s, self.max_requests, self.gap = list(label_script), hang_s, max_requests, one_audio_gap
        self.lock = threading.Lock()
        self.sets = {}          # frozenset of clips -> set number
        self.scenario = {}      # set number -> scenario
        self.attempts = {}      # (set number, is_retry) -> requests seen
        self.log, self.errors = [], []
        self.answered = set()   # sha256 of request bodies answered 200
        self.answered_log = []  # the same, in the order answered
        self.received = []      # sha256 of every request body, in order
        self.n_requests = 0
        self.kill = None        # (n, box, ready): SIGKILL box[0] when the n-th label request arrives (once ready is
                                # set: the test fills box after starting the process), and answer nothing
        self.stopping = threading.Event()
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.timer = threading.Timer(max_seconds, self.stop)
        self.timer.daemon = True
        self.timer.start()

    def stop(self):
        self.stopping.set()
        threading.Thread(target=self.shutdown, daemon=True).start()

    def close(self):
        self.timer.cancel()
        self.stopping.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, code, obj=None, headers=()):
        data = json.dumps(obj if obj is not None else {"error": {"message": "scripted"}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        return code

    def reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def bad(self, why):
        with self.server.lock:
            self.server.errors.append(why)
        self.reply(400, {"error": {"message": why}})

    def audio_parts(self, content, one_audio):
        """The clips of a request's audio parts, checked; None after answering 400."""
        s = self.server
        clips = []
        for part in content:
            if part.get("type") != "input_audio":
                continue
            ia = part.get("input_audio", {})
            data = ia.get("data", "")
            if ia.get("format") != "wav" or data.startswith("data:"):
                return self.bad("input_audio: format must be wav and data plain base64")
            try:
                raw = base64.b64decode(data, validate=True)
                w = wave.open(io.BytesIO(raw))
                rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
                pcm = w.readframes(n)
            except (binascii.Error, wave.Error, EOFError) as e:
                return self.bad(f"input_audio: not a WAV file: {e}")
            if rate != s.audio_rate or ch != 1 or width != 2:
                return self.bad(f"input_audio: {rate} Hz, {ch} channels, {width} bytes; expected {s.audio_rate} mono 16-bit")
            x = struct.unpack(f"<{n}h", pcm)
            seg = round(s.clip_seconds * rate)
            if s.clip_seconds <= 0:  # standalone use on real clips: any duration, one clip per part
                clips.append(clip_of(x, rate))
            elif not one_audio:
                if abs(n - seg) > 1:
                    return self.bad(f"input_audio: {n} samples, expected {seg} ({s.clip_seconds} s)")
                clips.append(clip_of(x, rate))
            else:
                gap = round(s.gap * rate)
                k = round((n + gap) / (seg + gap))
                if k < 1 or abs(n - (k * seg + (k - 1) * gap)) > k + 1:
                    return self.bad(f"input_audio: {n} samples is not whole clips of {seg} with gaps of {gap}")
                for i in range(k):
                    a = i * (seg + gap)
                    clips.append(clip_of(x[a + 2:a + seg - 2], rate))
        if not clips:
            return self.bad("no input_audio part")
        return clips

    def do_POST(self):
        s = self.server
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        sha = hashlib.sha256(body).hexdigest()
        with s.lock:
            s.n_requests += 1
            s.received.append(sha)
            over = s.n_requests > s.max_requests
        if over:
            s.stop()
            return self.bad("more requests than the test allows")
        if self.path != "/v1/chat/completions":
            return self.bad(f"path {self.path}")
        if s.key and self.headers.get("Authorization") != f"Bearer {s.key}":
            return self.bad("Authorization header missing or wrong")
        try:
            req = json.loads(body)
        except ValueError:
            return self.bad("body is not JSON")
        if req.get("model") != s.model:
            return self.bad(f"model {req.get('model')!r}")
        if req.get("temperature") != 0:
            return self.bad("temperature is not 0")
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs or msgs[0].get("role") != "user":
            return self.bad("messages[0] is not a user turn")
        content = msgs[0].get("content")
        if not isinstance(content, list) or content[0].get("type") != "text":
            return self.bad("messages[0].content does not start with a text part")
        text = content[0]["text"]
        m = re.search(r"Feature description: concept S(\d+)", text)
        if m:
            return self.detect(req, content, int(m.group(1)), sha)
        return self.label(req, msgs, content, text, sha)

    def label(self, req, msgs, content, text, sha):
        s = self.server
        one_audio = "concatenated into one recording" in text
        clips = self.audio_parts(content, one_audio)
        if clips is None:
            return
        retry = len(msgs) == 3 and msgs[1].get("role") == "assistant" and LABEL_RETRY_MARK in msgs[2].get("content", "")
        if len(msgs) != 1 and not retry:
            return self.bad("a label request has 1 message, or 3 for the retry")
        if "response_format" not in req:
            return self.bad("a label request asks for a JSON schema")
        with s.lock:
            key = frozenset(clips)
            if key not in s.sets:
                sid = len(s.sets)
                s.sets[key] = sid
                s.scenario[sid] = s.label_script[sid] if sid < len(s.label_script) else "good"
            sid = s.sets[key]
            scen = s.scenario[sid]
            a = s.attempts[(sid, retry)] = s.attempts.get((sid, retry), 0) + 1
            n_label = sum(1 for e in s.log if e["kind"] == "label") + 1
            kill = s.kill if s.kill and s.kill[0] == n_label else None
            s.log.append({"kind": "label", "set": sid, "clips": sorted(clips), "retry": retry, "attempt": a,
                          "scenario": scen, "sha": sha, "one_audio": one_audio})
        if kill:
            kill[2].wait(60)
            os.kill(kill[1][0], signal.SIGKILL)
            return self.reset()
        good = {"label": f"concept S{sid}", "confidence": round(0.5 + 0.03 * sid, 4),
                "description": f"The tones of set {sid}.", "concepts": ["sine tone", f"set {sid}"]}
        answer = json.dumps(good)
        if scen == "malformed_then_good" and not retry or scen == "malformed":
            answer = f"These excerpts are sine tones (set {sid})."
        elif scen == "bad_field":
            answer = json.dumps(dict(good, confidence=2))
        elif scen == "429_then_good" and a == 1 and not retry:
            return self.reply(429, headers=[("Retry-After", "1")])
        elif scen == "500":
            return self.reply(500)
        elif scen == "hang_then_good" and a == 1 and not retry:
            s.stopping.wait(s.hang_s)
            return self.reset()
        elif scen == "reset_then_good" and a == 1 and not retry or scen == "reset":
            return self.reset()
        self.answer(answer, sha, prompt_tokens=100 + 10 * len(clips), completion_tokens=20)

    def answer(self, text, sha, prompt_tokens, completion_tokens, logprobs=None):
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if logprobs is not None:
            choice["logprobs"] = {"content": logprobs}
        obj = {"id": "x", "object": "chat.completion", "model": self.server.model, "choices": [choice],
               "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}}
        if self.reply(200, obj) == 200:
            with self.server.lock:
                self.server.answered.add(sha)
                self.server.answered_log.append(sha)

    def detect(self, req, content, sid, sha):
        s = self.server
        clips = self.audio_parts(content, False)
        if clips is None:
            return
        want_lp = req.get("logprobs") is True
        if want_lp and req.get("top_logprobs") != 5:
            return self.bad("logprobs asked without top_logprobs 5")
        ps = [p_one(c) for c in clips]
        ans = [1 if p > 0.5 else 0 for p in ps]
        short = sum(clips) % 7 == 0
        if short:
            ans = ans[:-1]
        toks = [{"token": "[", "logprob": 0.0, "top_logprobs": [{"token": "[", "logprob": 0.0}]}]
        for i, (a, p) in enumerate(zip(ans, ps)):
            if i:
                toks.append({"token": ",", "logprob": 0.0, "top_logprobs": [{"token": ",", "logprob": 0.0}]})
            toks.append({"token": str(a), "logprob": math.log(p if a else 1 - p),
                         "top_logprobs": [{"token": "1", "logprob": math.log(p)}, {"token": "0", "logprob": math.log(1 - p)}]})
        toks.append({"token": "]", "logprob": 0.0, "top_logprobs": [{"token": "]", "logprob": 0.0}]})
        with s.lock:
            s.log.append({"kind": "detect", "set": sid, "clips": clips, "answers": ans, "probs": ps, "short": short,
                          "logprobs": want_lp, "sha": sha})
        self.answer(json.dumps(ans), sha, prompt_tokens=50 + 10 * len(clips), completion_tokens=2 * len(clips) + 1,
                    logprobs=toks if want_lp else None)


if __name__ == "__main__":
    # A standalone server for trying `musae label --labeler llm` by hand and in scripts/demo.sh (docs/LLM_LABEL.md):
    # prints its port, serves for --seconds, then prints the count of requests and the checks that failed.
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="test-audio-lm")
    ap.add_argument("--key", default="")
    ap.add_argument("--audio-rate", type=int, default=16000)
    ap.add_argument("--clip-seconds", type=float, default=0, help="check each part lasts this long (0: any)")
    ap.add_argument("--seconds", type=float, default=300)
    a = ap.parse_args()
    srv = Server(a.model, a.key, a.audio_rate, a.clip_seconds, max_seconds=a.seconds)
    print(srv.port, flush=True)
    srv.stopping.wait(a.seconds)
    time.sleep(0.5)
    print(json.dumps({"requests": srv.n_requests, "errors": srv.errors}), flush=True)
