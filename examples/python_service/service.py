#!/usr/bin/env python3
"""Example host: the store-authorization HTTP service of ``shopauth.host``.

Everything lives in the package (``python -m shopauth.host serve``): the
batches persisted by changes in SQLite before they are acted on, the urllib3
workers, the timer, the seed 000 API and the OAuth callbacks. This script
only keeps the example's command line::

    python3 service.py --config service.json --port 8800 --db shopauth.db

which is ``python -m shopauth.host serve --config service.json
--listen 127.0.0.1:8800 --db shopauth.db``. The configuration file::

    {
      "engine": { ... the shopauth engine configuration ... },
      "clients": {"<client_id>": "<API token of that business party>"},
      "callback_wait_s": 10,
      "http_workers": 4
    }
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from shopauth.host import serve


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description="shopauth example HTTP service (shopauth.host)")
    ap.add_argument("--config", required=True, help="JSON file: {engine, clients, callback_wait_s, http_workers}")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s service %(threadName)s %(message)s")
    serve(args.config, "%s:%d" % (args.host, args.port), args.db)


if __name__ == "__main__":
    main()
