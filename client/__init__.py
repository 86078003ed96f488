"""Parley clients: the call page (``client/static``) and a headless Python client (``python -m client``)."""
