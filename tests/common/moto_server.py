"""moto server with DynamoDB requests run one at a time, and no model kept after its use.

moto's threaded server runs concurrent DynamoDB requests in parallel without locking: an update
can be lost, and a cancelled TransactWriteItems restores a snapshot of the table taken before it
ran, wiping writes that other requests made meanwhile. Real DynamoDB makes each request atomic;
serialising DynamoDB requests restores that. Everything else (S3, SQS) stays concurrent.

moto also keeps a reference to every model object it ever creates (for its dashboard), and every
TransactWriteItems deep-copies its table for that snapshot: a long run (the chaos run's 100,000
tasks) kept every copy and grew by ~330 MB a minute until the machine ran out of memory.
Objects are no longer tracked, so what moto no longer holds is freed.

Usage: python moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def serialise_dynamodb(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            with lock:
                # Run the whole request, body included, inside the lock.
                return list(app(environ, start_response))
        return app(environ, start_response)

    return wrapped


def untrack_models():
    """moto's BaseModel appends each new instance to its class's list, forever."""
    from moto.core.common_models import BaseModel

    def new(cls, *args, **kwargs):
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(new)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    # moto builds some URLs (e.g. SQS queue URLs) with this port, as its own moto_server does.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    untrack_models()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        serialise_dynamodb(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
