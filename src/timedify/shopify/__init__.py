"""The half of the app that faces Shopify: tokens, the Admin API, billing and the embedded page.

`contracts` holds the interfaces and errors the other modules of this package share, so the web
pages, the worker and the CLI depend on what a piece does, not on how it is built.
"""
