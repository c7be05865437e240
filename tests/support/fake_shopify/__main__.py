"""`python -m tests.support.fake_shopify [PORT]`: a fake Shopify for trying the app by hand."""

from __future__ import annotations

import sys
import threading

from tests.support.fake_shopify.server import running


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    with running(port=port) as fake:
        print(f"fake Shopify on {fake.origin} (SHOPIFY_API_ORIGIN={fake.origin})", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
