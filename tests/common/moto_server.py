"""moto server with DynamoDB requests run one at a time, and no model kept after its use.

moto's threaded server runs concurrent DynamoDB requests in parallel without locking: an update
can be lost, and a cancelled TransactWriteItems restores a snapshot of the table taken before it
ran, wiping writes that other requests made meanwhile. Real DynamoDB makes each request atomic;
serialising DynamoDB requests restores that. Everything else (S3, SQS) stays concurrent.

moto also keeps a reference to every model object it ever creates (for its dashboard), and every
TransactWriteItems deep-copies its table for that snapshot: a long run (the chaos run's 100,000
tasks) kept every copy and grew by ~330 MB a minute until the machine ran out of memory.
Objects are no longer tracked, so what moto no longer holds is freed.

The copy of the whole table also made every transaction as slow as the table is large (126 ms
at 3,000 items, against 5 ms on an empty table), and DynamoDB requests run one at a time here:
a job's commits slowed down as its table filled. A transaction now saves only the items it
touches and puts them back if it is cancelled, which is the same outcome.

Every request is also written down (method, host, path and query; at most the last 500,000), so
that a test can count what reached the server: `GET /_batchops/requests?contains=TEXT` answers
the lines that contain TEXT, one per line (a test names its own bucket, unique to it), and
`DELETE /_batchops/requests` forgets them (the executor benchmark counts one run at a time). An
SQS or DynamoDB request's line also has its operation and its size each way
(`target=DynamoDB_20120810.PutItem in=312 out=2 items=1`), from which the benchmark prices it.

Usage: python moto_server.py [-H HOST] [-p PORT]
"""

import argparse
import collections
import io
import json
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


def log_requests(app):
    seen = collections.deque(maxlen=500_000)

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        if path == "/_batchops/requests":
            from urllib.parse import parse_qs

            if environ.get("REQUEST_METHOD") == "DELETE":
                seen.clear()
                start_response("204 No Content", [])
                return []
            text = parse_qs(query).get("contains", [""])[0]
            body = "".join(line + "\n" for line in list(seen) if text in line).encode()
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        line = f"{environ.get('REQUEST_METHOD', '')} {environ.get('HTTP_HOST', '')}{path}"
        line = f"{line}?{query}" if query else line
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target:
            seen.append(line)
            return app(environ, start_response)
        # SQS and DynamoDB (JSON protocols): the operation and the bytes each way, which is
        # what they bill by (SQS per 64 KiB of payload, DynamoDB per KB of item).
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        items = transact_items(target, body)
        answer = list(app(environ, start_response))
        out = sum(len(part) for part in answer)
        seen.append(f"{line} target={target} in={len(body)} out={out} items={items}")
        return answer

    return wrapped


def transact_items(target, body):
    """The actions of a DynamoDB transaction or batch (each billed on its own); 1 otherwise."""
    if not target.startswith("DynamoDB") or not target.endswith(("TransactWriteItems", "TransactGetItems", "BatchWriteItem", "BatchGetItem")):
        return 1
    try:
        request = json.loads(body)
    except ValueError:
        return 1
    if "TransactItems" in request:
        return len(request["TransactItems"])
    tables = request.get("RequestItems", {}).values()
    return sum(len(t["Keys"]) if isinstance(t, dict) else len(t) for t in tables) or 1


def untrack_models():
    """moto's BaseModel appends each new instance to its class's list, forever."""
    from moto.core.common_models import BaseModel

    def new(cls, *args, **kwargs):
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(new)


def item_level_transactions():
    """TransactWriteItems saves and restores the items it names, not a copy of each table."""
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    class TablesNotCopied:
        """The `copy` module as moto's DynamoDB backend sees it: a table is not copied (the only
        table it copies is a transaction's snapshot, which the wrapper below replaces)."""

        def __getattr__(self, name):
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = TablesNotCopied()
    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        saved = []
        for entry in transact_items:
            for op in entry.values():
                table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                if table is None:
                    continue
                try:
                    hash_key, range_key = self.get_keys_value(table, op.get("Key") or op.get("Item") or {})
                except Exception:
                    continue
                item = table.get_item(hash_key, range_key)
                saved.append((table, hash_key, range_key, copy.deepcopy(item)))
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is not None and range_key is not None:
                    table.items[hash_key][range_key] = item
                elif item is not None:
                    table.items[hash_key] = item
                elif range_key is not None and hash_key in table.items:
                    table.items[hash_key].pop(range_key, None)
                else:
                    table.items.pop(hash_key, None)
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    # moto builds some URLs (e.g. SQS queue URLs) with this port, as its own moto_server does.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    untrack_models()
    item_level_transactions()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        log_requests(serialise_dynamodb(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
