#!/usr/bin/env python3
"""A WebSub hub for tests/websub.rs: PyPI's Flask-WebSub 0.4.1, run as one
unprivileged process on a loopback port with its state in a folder.

    python tests/websub_hub.py --port 0 --dir /tmp/hub

Prints "READY http://127.0.0.1:PORT/" once it listens; exits when its
standard input closes (the test that started it ended, however it ended) or
on SIGTERM. The hub is `POST /`: `hub.mode=subscribe` verifies the
subscriber's intent before it answers 202; `hub.mode=publish` with
`hub.topic` fetches the topic and delivers it to every subscriber before it
answers 202.

Celery, which Flask-WebSub runs its work on, runs eagerly (in the request):
no broker and no worker. Two things are changed at run time, not in the
package:
  * of the topic's response headers only Content-Type, Link, ETag and
    Last-Modified are passed on to subscribers (the package passes on all
    of them, Content-Encoding and Content-Length included, so a topic
    served compressed reached subscribers with headers that no longer fit
    its body);
  * its HTTP requests ignore proxy variables, have a timeout and are logged.
The package still refuses to deliver a topic that is not served with Link
headers naming the hub and itself: that is the publisher's part, tested.
"""
import argparse
import logging
import os
import signal
import sys
import threading

import requests
from celery import Celery
from flask import Flask

import flask_websub.hub.tasks as hub_tasks
import flask_websub.utils as websub_utils
from flask_websub.hub import Hub, SQLite3HubStorage
from werkzeug.serving import make_server

log = logging.getLogger("websub_hub")

PASSED_ON = ("Content-Type", "Link", "ETag", "Last-Modified")
TIMEOUT = 5.0


def request_url(config, method, url, **kwargs):
    kwargs.pop("stream", None)
    kwargs["timeout"] = TIMEOUT
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.request(method, url, **kwargs)
        except requests.exceptions.RequestException as e:
            log.warning("%s %s -> %s", method, url, e)
            raise
    log.info("%s %s -> %s", method, response.url, response.status_code)
    return response


def passing_on_only_what_fits(get_new_content):
    def patched(config, topic_url):
        body, updated = get_new_content(config, topic_url)
        headers = updated["headers"]
        updated["headers"] = {n: headers[n] for n in PASSED_ON if headers.get(n)}
        return body, updated

    return patched


def app_for(state_dir):
    websub_utils.request_url = request_url
    hub_tasks.request_url = request_url
    hub_tasks.get_new_content = passing_on_only_what_fits(hub_tasks.get_new_content)
    celery = Celery("websub_hub", broker="memory://localhost/")
    celery.conf.update(task_always_eager=True, task_eager_propagates=False)
    storage = SQLite3HubStorage(os.path.join(os.path.abspath(state_dir), "hub.sqlite3"))
    hub = Hub(storage, celery, MAX_ATTEMPTS=2, REQUEST_TIMEOUT=TIMEOUT)
    app = Flask("websub_hub")
    app.config.update(PUBLISH_SUPPORTED=True)
    app.register_blueprint(hub.build_blueprint(url_prefix="/"))
    return app


def exit_when_stdin_closes():
    sys.stdin.buffer.read()
    os._exit(0)


def main():
    parser = argparse.ArgumentParser(description="a WebSub hub for tests")
    parser.add_argument("--port", type=int, required=True, help="0 picks a free one")
    parser.add_argument("--dir", required=True, help="where the hub keeps its state")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    os.makedirs(args.dir, exist_ok=True)
    server = make_server("127.0.0.1", args.port, app_for(args.dir), threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    print("READY http://127.0.0.1:%d/" % server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
