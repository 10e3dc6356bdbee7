#!/usr/bin/env python3
"""An example cogo-edge worker: screenshots web pages with headless Chromium.

It claims `browser.screenshot` jobs (payload `{url, width?, height?}`) with a
long poll, keeps the lease alive and reports progress while Chromium runs,
uploads the PNG as the job's artifact, and reports the result, taking the
next job in the same call. On SIGTERM or Ctrl-C it stops claiming: idle, it
exits at once; with a job, it finishes it, or gives it back to the queue if
that takes longer than the grace period.

Python 3.8+ and its standard library only; the settings come from the
environment (README.md lists them).
"""

import contextlib
import http.client
import json
import logging
import os
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

JOB_TYPE = "browser.screenshot"
ARTIFACT_NAME = "screenshot.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The longest long poll task.claim allows.
CLAIM_WAIT_SECONDS = 20
# Bounds on the viewport, in pixels: a huge one would take Chromium's memory.
SIDES = (100, 4096)
# Answers meaning the job is not ours any more: another worker holds it, or
# it has finished. Nothing more may be reported for it.
LEASE_GONE = {"lease_lost", "not_running", "job_not_found"}

log = logging.getLogger("browser-worker")


class Settings:
    """The environment, checked once at start."""

    def __init__(self, env):
        self.url = self.required(env, "COGO_URL").rstrip("/")
        self.token = self.required(env, "COGO_TOKEN")
        self.executor = env.get("COGO_EXECUTOR") or "browser"
        self.worker_id = env.get("COGO_WORKER_ID") or f"{socket.gethostname()}-{os.getpid()}"
        self.lease_seconds = self.number(env, "COGO_LEASE_SECONDS", 60, 15, 600)
        # At least two beats per lease, so one lost beat does not lose the job.
        half = self.lease_seconds // 2
        self.heartbeat_seconds = self.number(env, "COGO_HEARTBEAT_SECONDS", 15, 1, half)
        self.grace_seconds = self.number(env, "COGO_GRACE_SECONDS", 30, 0, 3600)
        self.chromium_timeout = self.number(env, "CHROMIUM_TIMEOUT_SECONDS", 60, 1, 600)
        chromium = env.get("CHROMIUM") or "chromium"
        self.chromium = shutil.which(chromium)
        if self.chromium is None:
            sys.exit(f"browser-worker: Chromium not found: {chromium!r} (set CHROMIUM to its path)")

    @staticmethod
    def required(env, name):
        value = env.get(name)
        if not value:
            sys.exit(f"browser-worker: set {name} (see examples/browser-worker/README.md)")
        return value

    @staticmethod
    def number(env, name, default, low, high):
        text = env.get(name) or str(default)
        if not (text.isascii() and text.isdigit() and low <= int(text) <= high):
            sys.exit(f"browser-worker: {name} must be a number in {low}..{high}, got {text!r}")
        return int(text)


class ApiError(Exception):
    """An error answer of the API (`status` 0: no answer at all)."""

    def __init__(self, status, code, message, retry_after=None):
        super().__init__(f"{status} {code}: {message}" if status else message)
        self.status, self.code, self.retry_after = status, code, retry_after

    @property
    def transient(self):
        """Worth sending again: no answer, rate limited, the same request
        still in flight, or the platform's own trouble (5xx)."""
        in_flight = self.code == "idempotency_key_in_flight"
        return self.status in (0, 429) or self.status >= 500 or in_flight


class JobFailed(Exception):
    """The job cannot be done: reported as a failure with this code."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class Cancelled(Exception):
    """The job's owner cancelled it."""


class LeaseLost(Exception):
    """The job is not ours any more: report nothing for it."""


class Stopping(Exception):
    """The grace period after a stop signal ended before the job did."""


class Shutdown(Exception):
    """A stop signal arrived while the worker was idle."""


class Api:
    """JSON over HTTP to cogo-edge, every call with a timeout."""

    def __init__(self, base_url, token):
        self.base_url, self.token = base_url, token

    def post(self, path, body, timeout=30, retries=0, key=None):
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        data = json.dumps(body).encode()
        return self.send("POST", self.base_url + path, data, headers, timeout, retries)

    def put(self, url, data, headers, retries=3):
        # No Authorization header: the signed link is the credential, and it
        # may point at another host (Supabase Storage).
        return self.send("PUT", url, data, dict(headers), 60, retries)

    def send(self, method, url, data, headers, timeout, retries):
        headers["User-Agent"] = "cogo-browser-worker/1"
        for attempt in range(retries + 1):
            try:
                request = urllib.request.Request(url, data=data, headers=headers, method=method)
                with urllib.request.urlopen(request, timeout=timeout) as reply:
                    return json.load(reply)
            except urllib.error.HTTPError as e:
                error = self.error_of(e)
            except (OSError, http.client.HTTPException, ValueError) as e:
                # Refused, cut off, timed out, or not JSON.
                error = ApiError(0, "unreachable", f"{method} {url}: {e}")
            if not error.transient or attempt == retries:
                raise error
            delay = error.retry_after or 2**attempt
            log.warning("%s %s: %s; again in %ss", method, url.split("?")[0], error, delay)
            time.sleep(delay)

    @staticmethod
    def error_of(e):
        """The API's error shape, `{"error": {"code", "message"}}`, as an ApiError."""
        try:
            error = json.load(e)["error"]
            code, message = error["code"], error["message"]
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", e.reason
        retry_after = e.headers.get("Retry-After", "")
        return ApiError(e.code, code, message, int(retry_after) if retry_after.isdigit() else None)


class Stop:
    """SIGTERM and SIGINT: stop claiming. While idle (waiting for a job), stop
    at once; a job gets the grace period (see `check_grace`)."""

    def __init__(self, grace_seconds):
        self.grace_seconds = grace_seconds
        self.since = None
        self.idle = False
        self.announced = False
        signal.signal(signal.SIGTERM, self.handle)
        signal.signal(signal.SIGINT, self.handle)

    @property
    def requested(self):
        return self.since is not None

    def handle(self, signum, frame):
        if self.since is None:
            self.since = time.monotonic()
        if self.idle:
            # Ends the long poll at once. A job the server claimed for us at
            # that very moment is not lost: its lease runs out and the reaper
            # puts it back in the queue.
            raise Shutdown()

    @contextlib.contextmanager
    def interruptible(self):
        """Marks a wait that a stop signal may cut short (with Shutdown)."""
        if self.requested:
            raise Shutdown()
        self.idle = True
        try:
            yield
        finally:
            self.idle = False

    def check_grace(self):
        """During a job: says once that a stop was asked for (here, not in the
        handler, which may run in the middle of another log line), and raises
        Stopping once the grace period is over."""
        if not self.requested:
            return
        if not self.announced:
            self.announced = True
            log.info("stopping: the current job has %ss to finish", self.grace_seconds)
        if time.monotonic() - self.since > self.grace_seconds:
            raise Stopping()


class Lease:
    """A claimed job's lease: heartbeats keep it alive, and their answers
    (and progress reports') say when the owner has cancelled the job."""

    def __init__(self, api, settings, job):
        self.api, self.settings, self.job = api, settings, job
        self.next_beat = time.monotonic() + settings.heartbeat_seconds

    def progress(self, pct, step):
        self.report("/api/collab/task.progress", {"progress": pct, "step": step})

    def beat_if_due(self):
        if time.monotonic() >= self.next_beat:
            self.next_beat = time.monotonic() + self.settings.heartbeat_seconds
            self.report("/api/collab/task.heartbeat", {"leaseSeconds": self.settings.lease_seconds})

    def report(self, path, fields):
        body = {"jobId": self.job["id"], "leaseToken": self.job["leaseToken"], **fields}
        try:
            answer = self.api.post(path, body, timeout=10)
        except ApiError as e:
            if e.code in LEASE_GONE:
                raise LeaseLost(str(e)) from e
            # One missed report is not fatal: the lease outlasts a few.
            log.warning("job %s: %s failed: %s", self.job["id"], path.rsplit("/", 1)[1], e)
            return
        if answer.get("cancelRequested"):
            raise Cancelled()


def parse_payload(payload):
    """(url, width, height) from `{url, width?, height?}`, or JobFailed saying what is wrong."""
    if not isinstance(payload, dict):
        raise JobFailed("invalid_payload", "the payload must be an object {url, width?, height?}")
    url = payload.get("url")
    try:
        parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        host = parts and parts.hostname
    except ValueError:
        host = None
    # Web pages only: a file:, data:, chrome: or javascript: URL would show
    # the worker's own files or browser, not a page.
    web = host and parts.scheme in ("http", "https")
    if not web or len(url) > 2048 or any(c.isspace() for c in url):
        raise JobFailed("invalid_url", f"payload.url must be an http or https URL, got {url!r}")
    sides = []
    for name, default in (("width", 1280), ("height", 800)):
        value = payload.get(name, default)
        if type(value) is not int or not SIDES[0] <= value <= SIDES[1]:
            expected = f"a whole number in {SIDES[0]}..{SIDES[1]}"
            raise JobFailed("invalid_payload", f"payload.{name} must be {expected}, got {value!r}")
        sides.append(value)
    return url, sides[0], sides[1]


def screenshot(settings, stop, lease, url, width, height, folder):
    """The PNG of `url` in a width x height viewport, from a Chromium of its
    own (profile in `folder`), heartbeating the lease while it runs."""
    out = os.path.join(folder, ARTIFACT_NAME)
    args = [
        settings.chromium, "--headless", "--disable-gpu", "--hide-scrollbars",
        "--force-device-scale-factor=1", f"--window-size={width},{height}",
        f"--user-data-dir={os.path.join(folder, 'profile')}", f"--screenshot={out}", url,
    ]
    if os.geteuid() == 0:
        # Chromium's sandbox refuses to start as root: run the worker as an
        # ordinary user to keep it, since the pages are the job owners' choice.
        args.insert(1, "--no-sandbox")
    deadline = time.monotonic() + settings.chromium_timeout
    with open(os.path.join(folder, "chromium.log"), "w+b") as output:
        # A process group of its own, so one kill takes its helper processes
        # too, and Ctrl-C in a terminal reaches the worker alone.
        chromium = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True
        )
        try:
            while True:
                try:
                    chromium.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if time.monotonic() > deadline:
                    limit = settings.chromium_timeout
                    raise JobFailed("timeout", f"the page did not load within {limit}s")
                stop.check_grace()
                lease.beat_if_due()
        finally:
            if chromium.poll() is None:
                os.killpg(chromium.pid, signal.SIGKILL)
                chromium.wait()
        output.seek(0)
        lines = output.read().decode(errors="replace").splitlines()
    try:
        with open(out, "rb") as f:
            png = f.read()
    except FileNotFoundError:
        png = b""
    if not png.startswith(PNG_SIGNATURE):
        # Chromium exits 0 when the page fails to load, and writes no file;
        # its log says why ("Page load failed: net::ERR_NAME_NOT_RESOLVED").
        last = lines[-1] if lines else "no output"
        reason = next((line for line in lines if "Page load failed" in line), last)
        raise JobFailed("page_load_failed", f"no screenshot of {url}: {reason.split('] ')[-1]}")
    return png


def upload(api, job, png):
    """Stores the PNG as the job's artifact; answers its record (bucket, path, size, sha256)."""
    request = {
        "jobId": job["id"], "leaseToken": job["leaseToken"], "name": ARTIFACT_NAME,
        "mime": "image/png", "size": len(png),
    }
    try:
        link = api.post("/functions/v1/artifact-upload-url", request, retries=3)
        # Safe to send again: a second upload to the same name replaces the first.
        return api.put(link["url"], png, link.get("headers", {}))["artifact"]
    except ApiError as e:
        if e.code in LEASE_GONE:
            raise LeaseLost(str(e)) from e
        raise JobFailed("upload_failed", f"storing the screenshot failed: {e}") from e


def finish(api, settings, job, outcome, take_next):
    """Reports the outcome; answers the server's reply, with the next job
    when `take_next` asked for one."""
    body = {"jobId": job["id"], "type": job["type"], "leaseToken": job["leaseToken"], **outcome}
    if take_next:
        body["next"] = {"typePrefix": JOB_TYPE, "leaseSeconds": settings.lease_seconds}
    # With a key, a retry after a lost answer replays that answer (and the
    # next job it claimed) instead of a 409 for a job already finished.
    key = f"result:{job['id']}:{job['leaseToken']}"
    try:
        return api.post("/api/collab/task.result", body, retries=3, key=key)
    except ApiError as e:
        # Unreported, the lease runs out and the reaper requeues the job.
        return {"status": f"not recorded ({e})"}


def work(api, settings, stop, job):
    """Does one job and reports it; answers the next job, if the report brought one."""
    started = time.monotonic()
    lease = Lease(api, settings, job)
    try:
        url, width, height = parse_payload(job.get("payload"))
        lease.progress(10, "loading")
        with tempfile.TemporaryDirectory(prefix="cogo-browser-") as folder:
            png = screenshot(settings, stop, lease, url, width, height, folder)
        lease.progress(70, "uploading")
        artifact = upload(api, job, png)
        outcome = {
            "ok": True,
            "result": {
                "url": url, "width": width, "height": height, "bucket": artifact["bucket"],
                "path": artifact["path"], "size": artifact["size"], "sha256": artifact["sha256"],
            },
            "artifact": {"name": ARTIFACT_NAME, "size": len(png)},
        }
        summary = f"{url} -> {artifact['bucket']}/{artifact['path']} ({len(png)} bytes)"
    except JobFailed as e:
        outcome, summary = failure(e.code, e.message), f"{e.code}: {e.message}"
    except Cancelled:
        # Reporting a failure is how a worker acknowledges a cancel: the job
        # ends `cancelled`, and is not retried.
        outcome, summary = failure("cancelled", "cancelled by its owner"), "cancel acknowledged"
    except Stopping:
        # A failed attempt puts the job back in the queue for another worker.
        grace = settings.grace_seconds
        outcome = failure("worker_stopping", f"the worker stopped; job given back after {grace}s")
        summary = "given back: the worker is stopping"
    except LeaseLost as e:
        log.warning("job %s dropped: %s", job["id"], e)
        return None
    except Exception as e:  # a bug here must not take the worker down
        log.exception("job %s", job["id"])
        outcome, summary = failure("worker_error", f"{type(e).__name__}: {e}"), "worker error"
    answer = finish(api, settings, job, outcome, take_next=not stop.requested)
    status = answer.get("status")
    log.info("job %s %s in %.1fs: %s", job["id"], status, time.monotonic() - started, summary)
    return answer.get("job")


def failure(code, message):
    return {"ok": False, "error": {"code": code, "message": message}}


def wait_for_job(api, settings):
    """Claims the next job, long-polling until one comes; retries what is
    worth retrying, and exits on what only a person can fix."""
    body = {
        "executorId": settings.executor, "workerId": settings.worker_id, "typePrefix": JOB_TYPE,
        "leaseSeconds": settings.lease_seconds, "waitSeconds": CLAIM_WAIT_SECONDS,
    }
    delay = 1
    while True:
        try:
            answer = api.post("/api/collab/task.claim", body, timeout=CLAIM_WAIT_SECONDS + 15)
        except ApiError as e:
            if not e.transient:
                sys.exit(f"browser-worker: claiming refused: {e}")
            log.warning("claim failed: %s; again in %ss", e, e.retry_after or delay)
            time.sleep(e.retry_after or delay)
            delay = min(delay * 2, 30)
            continue
        delay = 1
        if answer.get("job"):
            return answer["job"]


def main():
    # One line per event on stdout, where a service manager collects it.
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    settings = Settings(os.environ)
    api = Api(settings.url, settings.token)
    stop = Stop(settings.grace_seconds)
    log.info(
        "worker %s takes %s jobs of executor %s from %s",
        settings.worker_id, JOB_TYPE, settings.executor, settings.url,
    )
    job = None
    while not stop.requested:
        if job is None:
            try:
                with stop.interruptible():
                    job = wait_for_job(api, settings)
            except Shutdown:
                break
        else:
            job = work(api, settings, stop, job)
    if job is not None:
        # It came with the last result, as the stop signal arrived.
        outcome = failure("worker_stopping", "the worker stopped before starting the job")
        answer = finish(api, settings, job, outcome, take_next=False)
        log.info("job %s %s: given back, the worker is stopping", job["id"], answer.get("status"))
    log.info("stopped")


if __name__ == "__main__":
    main()
